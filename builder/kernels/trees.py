"""Tree-ensemble evaluators that ship inside the pickle (numpy + standard library only).

``TreeEnsembleEvaluator`` evaluates the flat node arrays of ``builder.ir.TreeEnsemble`` (the
semantics are defined in builder/ir.py) and reproduces the native library bit for bit:

* routing is done per node exactly as the IR says (input cast, NaN -> 0, zero-as-missing,
  ``<=`` / ``<``, categorical bitsets), so every strategy below agrees with the native library;
* leaf values are accumulated per output column in tree order, in the library's precision,
  starting from ``init`` (LightGBM: double; XGBoost: float32). ``np.sum`` over the contiguous
  axis is pairwise and would not match (docs/design/compilers.md §7). The bit-sliced strategy
  adds tree by tree (``acc += leaf values``); the walk lays trees out as rows of a
  (trees, rows) matrix and sums with ``np.add.reduce(axis=0)``, whose outer loop runs over
  trees in order. ``_reduce_is_sequential`` checks that property on the numpy that runs (the
  container's), and a plain loop takes over if it ever fails.

The trees of one output column are cut into chunks of consecutive trees; each chunk has a
strategy that finds the leaf of every (tree, row):

* ``walk``: level-synchronous traversal of (tree, row) pairs, any data, any depth. Exact
  reference for everything else.
* ``bits``: bit-sliced evaluation for inputs whose values are small non-negative integers (or
  NaN), as Numerai's 0..4 features. Each split is turned, at compile time, into the set of
  value codes that go right; at predict time one 64-rows-per-word bitset is built per distinct
  (feature, code set) predicate, and trees padded to complete depth are walked with bitwise
  multiplexers to assemble each row's leaf index from the path bits. The input is checked at
  predict time; anything else falls back to ``walk`` for that block of rows, or, when the
  compile step built them (models trained on non-integer inputs), to the same bit-sliced
  trees on threshold-rank codes (``_rank_bits``).

A compiled evaluator may carry ``steps`` (preprocessing folded into its predicates by
builder.compile.trees.fold_preprocessing): it then reads raw inputs and applies the steps
itself before any float path.
"""

from __future__ import annotations

import numpy as np

from builder.kernels.transforms import apply_transform

# LightGBM kZeroThreshold is the float 1e-35f compared against a double
# (include/LightGBM/meta.h, tree.h IsZero).
ZERO_THRESHOLD = float(np.float32(1e-35))

# Codes of the bit-sliced strategy: value v in 0..MAX_CODE-1 is code v, NaN is code NAN_CODE.
MAX_CODE = 63
NAN_CODE = 63

# Working-set bounds: (tree, row) pairs per step, rows per block.
PAIRS_PER_STEP = 1 << 21
TREES_PER_BITS_STEP = 64
ROWS_PER_BLOCK = 16384
# Predicate bitsets: computed per predicate (_direct_bits) when there are at most this many
# predicates per used feature, else from per-feature bit planes (_plane_bits); measured
# crossover on 2,000-tree models (bench/trees.py), and DIRECT_STEP predicate rows per step.
DIRECT_PREDICATES_PER_FEATURE = 8.0
DIRECT_STEP = 512


class TreeEnsembleEvaluator:
    """A compiled tree ensemble. Built by builder.compile.trees.compile_trees."""

    def __init__(
        self,
        *,
        feature_names,
        task,
        n_raw,
        input_float32,
        compare_lt,
        acc_dtype,
        init,
        average_counts,
        transform,
        transform_params,
        nodes,
        linear,
        classes,
        predicates=None,
        n_outputs=None,
        steps=None,
        ranks=None,
    ):
        self.feature_names = tuple(feature_names)
        self.task = task
        self.n_raw = int(n_raw)
        self.input_float32 = bool(input_float32)
        self.compare_lt = bool(compare_lt)
        self.acc_dtype = np.dtype(acc_dtype)
        self.init = np.asarray(init, dtype=self.acc_dtype)
        self.average_counts = average_counts
        self.transform = transform
        self.transform_params = dict(transform_params or {})
        self.nodes = nodes
        self.linear = linear
        self.classes = classes
        self.predicates = predicates
        # Folded preprocessing (builder.compile.trees.fold_preprocessing): elementwise steps
        # the evaluator applies itself, so the bit-sliced path can read the raw codes.
        self.steps = list(steps) if steps else None
        # Threshold-rank predicates for non-integer inputs (builder.compile.trees._ranks), or
        # None: then such inputs are walked.
        self.ranks = ranks
        if n_outputs is None:
            probe = np.zeros((1, self.n_raw), dtype=self.acc_dtype)
            n_outputs = apply_transform(transform, probe, self.transform_params).shape[1]
        self.n_outputs = int(n_outputs)

    # ------------------------------------------------------------------ public

    def predict(self, X) -> np.ndarray:
        """What the native library's predict / predict_proba returns: float64 (rows, outputs)."""
        raw = self.predict_raw(X)
        return apply_transform(self.transform, raw, self.transform_params)

    def predict_raw(self, X) -> np.ndarray:
        """Raw scores (margins) in the accumulation dtype, (rows, n_raw)."""
        X = self._as_matrix(X)
        n = X.shape[0]
        out = np.empty((n, self.n_raw), dtype=self.acc_dtype)
        sequential = _reduce_is_sequential()
        for start in range(0, n, ROWS_PER_BLOCK):
            block = X[start : start + ROWS_PER_BLOCK]
            out[start : start + len(block)] = self._predict_block(block, sequential)
        if self.average_counts is not None:
            out = out / np.asarray(self.average_counts, dtype=self.acc_dtype)
        return out

    def strategies(self) -> dict:
        """How many trees each strategy evaluates (for reports)."""
        counts: dict = {}
        for chunks in self.classes:
            for chunk in chunks:
                counts[chunk["kind"]] = counts.get(chunk["kind"], 0) + len(chunk["trees"])
        return counts

    # ------------------------------------------------------------------ blocks

    def _as_matrix(self, X) -> np.ndarray:
        if hasattr(X, "columns"):
            X = X[list(self.feature_names)].to_numpy()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected a 2-D array with {len(self.feature_names)} feature columns, "
                f"got shape {X.shape}"
            )
        return X

    def _predict_block(self, X: np.ndarray, sequential: bool) -> np.ndarray:
        n = X.shape[0]
        xf = None
        bits = None
        key = "node_pred"
        if self.predicates is not None:
            bits = _predicate_bits(X, self.predicates)
        ranks = getattr(self, "ranks", None)
        if bits is None and ranks is not None:
            # not small codes (e.g. non-integer floats): the same trees on threshold ranks
            xf = self._float_input(X)
            bits, key = _rank_bits(xf, ranks), "rank_node_pred"
        raw = np.empty((n, self.n_raw), dtype=self.acc_dtype)
        for k, chunks in enumerate(self.classes):
            acc = np.full(n, self.init[k], dtype=self.acc_dtype)
            for chunk in chunks:
                if chunk["kind"] == "bits" and bits is not None:
                    acc = _bits_accumulate(chunk, bits, acc, n, key)
                    continue
                if xf is None:
                    xf = self._float_input(X)
                acc = self._walk_chunk(chunk, xf, acc, sequential)
            raw[:, k] = acc
        return raw

    def _float_input(self, X: np.ndarray) -> np.ndarray:
        if self.steps:
            # what the bundle would have handed over: float64, then the steps in order
            X = np.asarray(X, dtype=np.float64)
            for step in self.steps:
                X = step.apply(X)
        if self.input_float32:
            X = X.astype(np.float32, copy=False)
        return np.ascontiguousarray(X, dtype=np.float64)

    def _walk_chunk(self, chunk, xf, acc, sequential):
        trees = chunk["trees"]
        n = xf.shape[0]
        step = max(1, PAIRS_PER_STEP // max(n, 1))
        for a in range(0, len(trees), step):
            leaves = self._walk(xf, trees[a : a + step], chunk["depth"])
            vals = self.nodes["value"][leaves]
            if self.linear is not None:
                vals = self._linear_values(xf, leaves, vals)
            acc = _sum_in_order(acc, vals, sequential)
        return acc

    # ------------------------------------------------------------------ walk strategy

    def _walk(self, xf: np.ndarray, roots: np.ndarray, depth: int) -> np.ndarray:
        """Leaf node index of every (tree, row): int (len(roots), rows)."""
        nd = self.nodes
        n, width = xf.shape
        node = np.repeat(roots.astype(np.intp)[:, None], n, axis=1)
        rowbase = np.arange(n, dtype=np.intp) * width
        flat = xf.ravel()
        feature = np.maximum(nd["feature"], 0).astype(np.intp)  # leaves read column 0
        # children side by side: child[2*node + go_right] is one gather instead of two
        child = np.stack([nd["left"], nd["right"]], axis=1).ravel().astype(np.intp)
        # without NaN, zero-as-missing or categorical nodes a split is just the compare
        plain = (
            not nd["any_zero_as_missing"]
            and nd["is_categorical"] is None
            and not np.isnan(xf).any()
        )
        thr = nd["threshold"]
        for _ in range(depth):
            x = flat[rowbase + feature[node]]
            if plain:
                go_right = (x >= thr[node]) if self.compare_lt else (x > thr[node])
            else:
                go_right = ~self._decide(node, x)
            node = child[2 * node + go_right]
        return node

    def _decide(self, node: np.ndarray, x: np.ndarray) -> np.ndarray:
        """IR routing of value x at node (vectorized): True where the row goes left."""
        nd = self.nodes
        isnan = np.isnan(x)
        if isnan.any():
            to_zero = isnan & nd["nan_as_zero"][node]
            x = np.where(to_zero, 0.0, x)
            isnan = isnan & ~to_zero
        missing = isnan
        if nd["any_zero_as_missing"]:
            missing = missing | (nd["zero_as_missing"][node] & (np.abs(x) <= ZERO_THRESHOLD))
        thr = nd["threshold"][node]
        left = (x < thr) if self.compare_lt else (x <= thr)
        if nd["is_categorical"] is not None:
            cat = nd["is_categorical"][node]
            if cat.any():
                left[cat] = _in_category_set(nd, node[cat], x[cat])
        return np.where(missing, nd["default_left"][node], left)

    def _linear_values(self, xf, leaves, vals):
        """LightGBM linear trees (Tree::Predict): const + sum coeff_i * x_i in order; a NaN in
        any of the leaf's features gives the plain leaf value instead."""
        lin = self.linear
        has = lin["is_linear"][leaves]
        if not has.any():
            return vals
        n, width = xf.shape
        ti, ri = np.nonzero(has)
        node = leaves[ti, ri]
        out = lin["const"][node].copy()
        nan_found = np.zeros(len(node), dtype=bool)
        start = lin["offsets"][node]
        count = lin["offsets"][node + 1] - start
        for i in range(int(count.max()) if len(count) else 0):
            use = count > i
            j = start[use] + i
            x = xf[ri[use], lin["features"][j]]
            nan_found[use] |= np.isnan(x)
            out[use] = out[use] + lin["coeff"][j] * x
        vals = vals.copy()
        vals[ti, ri] = np.where(nan_found, vals[ti, ri], out)
        return vals


# ---------------------------------------------------------------------- bit-sliced strategy


def _predicate_bits(X: np.ndarray, pred: dict) -> np.ndarray | None:
    """Row bitsets (n_predicates, words) uint64 of every predicate: bit r of word w set when
    row 64*w + r goes right. None when the block's values are not all small codes."""
    xt = _transposed(X) if X.flags.c_contiguous else X.T  # F-ordered input is free
    found = _small_codes(xt[pred["features"]])  # (used features, rows)
    if found is None:
        return None
    codes, top, has_nan = found
    n = codes.shape[1]
    words = (n + 63) // 64
    present = list(range(top + 1)) + ([NAN_CODE] if has_nan else [])
    masks = pred["masks"]  # uint64 per predicate: bit c set when code c goes right
    slot = pred["feature_slot"]  # predicate -> row of codes
    width = codes.shape[0]
    if width == 0:  # no splits at all: only the "always left" predicate
        return np.zeros((len(masks), words), dtype=np.uint64)
    # Most predicates are numeric splits "value > cut", i.e. a suffix k..top of the present
    # codes (k_of >= 0); the rest (zero-as-missing, categorical sets) are OR-ed code by code.
    # NaN rows are in no suffix: a suffix that also sends NaN right (a folded fill_missing,
    # default_left=False) adds the NaN rows.
    present_mask = np.uint64(sum(1 << c for c in present))
    suffix = {sum(1 << c for c in range(k, top + 1)): k for k in range(top + 2)}
    effective = masks & present_mask
    nan_bit = np.uint64(1) << np.uint64(NAN_CODE)
    kinds, inverse = np.unique(effective & ~nan_bit, return_inverse=True)
    k_of = np.array([suffix.get(int(m), -1) for m in kinds], dtype=np.int64)[inverse.ravel()]
    if len(masks) <= DIRECT_PREDICATES_PER_FEATURE * width:
        return _direct_bits(codes, slot, k_of, effective, has_nan, present, words)
    return _plane_bits(codes, top, has_nan, present, slot, k_of, effective, words)


def _direct_bits(codes, slot, k_of, effective, has_nan, present, words) -> np.ndarray:
    """Predicate bitsets computed one predicate row at a time: a compare of the feature's codes
    with the predicate's cut, packed 8 rows per byte. Cheaper than the per-feature planes when
    features outnumber predicates (wide inputs: 2,748 features, about one predicate each)."""
    n = codes.shape[1]
    nbytes = (n + 7) // 8
    bits = np.zeros((len(slot), words), dtype=np.uint64)
    out = bits.view(np.uint8)
    simple = np.nonzero(k_of >= 0)[0]
    cut = k_of.astype(codes.dtype)  # k <= top + 1 <= MAX_CODE: fits the codes' dtype
    for a in range(0, len(simple), DIRECT_STEP):
        sel = simple[a : a + DIRECT_STEP]
        go = codes[slot[sel]] >= cut[sel, None]
        out[sel, :nbytes] = np.packbits(go, axis=1, bitorder="little")
    nan_bit = np.uint64(1) << np.uint64(NAN_CODE)
    if has_nan:
        # codes >= k also took the NaN rows (code NAN_CODE): drop them where NaN goes left
        nan_bits = _packed(codes == NAN_CODE, words)
        drop = simple[(effective[simple] & nan_bit) == 0]
        bits[drop] &= ~nan_bits[slot[drop]]
    rest = np.nonzero(k_of < 0)[0]
    for c in present:
        sel = rest[((effective[rest] >> np.uint64(c)) & np.uint64(1)).astype(bool)]
        for a in range(0, len(sel), DIRECT_STEP):
            part = sel[a : a + DIRECT_STEP]
            bits[part] |= _packed(codes[slot[part]] == c, words)
    return bits


def _packed(flags: np.ndarray, words: int) -> np.ndarray:
    """(k, n) bool -> (k, words) uint64, row r of word w at bit r, padding bits 0."""
    out = np.zeros((flags.shape[0], words), dtype=np.uint64)
    packed = np.packbits(flags, axis=1, bitorder="little")
    out.view(np.uint8)[:, : packed.shape[1]] = packed
    return out


def _plane_bits(codes, top, has_nan, present, slot, k_of, effective, words) -> np.ndarray:
    """Predicate bitsets from per-feature bit planes: each feature's codes are sliced into
    bit planes once, the planes combined into one bitset per code value and per suffix
    (ge[k]: code >= k), and each predicate gathers its feature's bitset. Cheaper than
    _direct_bits when there are several predicates per feature (narrow inputs)."""
    n = codes.shape[1]
    width = codes.shape[0]
    # (features, padded rows) codes; padding rows read as code 0 and are never used
    if n % 64 == 0 and codes.flags.c_contiguous:
        ct = codes
    else:
        ct = np.zeros((codes.shape[0], words * 64), dtype=np.uint8)
        ct[:, :n] = codes
    nan = ct == NAN_CODE if has_nan else None
    if nan is not None:
        ct[nan] = 0
    n_planes = top.bit_length()
    planes = [_bit_plane(ct, j) for j in range(n_planes)]
    nan_bits = _pack_rows(nan) if nan is not None else None
    eq = {}
    for c in present:
        if c == NAN_CODE:
            eq[c] = nan_bits
            continue
        e = None
        for j, plane in enumerate(planes):
            term = plane if (c >> j) & 1 else ~plane
            e = term if e is None else e & term
        if e is None:  # only code 0 present
            e = np.full((width, words), ~np.uint64(0), dtype=np.uint64)
        eq[c] = e & ~nan_bits if nan_bits is not None else e
    ge = np.zeros((top + 2, width, words), dtype=np.uint64)
    for k in range(top, -1, -1):
        ge[k] = ge[k + 1] | eq[k]
    bits = np.empty((len(slot), words), dtype=np.uint64)
    simple = k_of >= 0
    bits[simple] = ge.reshape(-1, words)[k_of[simple] * width + slot[simple]]
    if has_nan:
        nan_bit = np.uint64(1) << np.uint64(NAN_CODE)
        with_nan = np.nonzero(simple & ((effective & nan_bit) != 0))[0]
        bits[with_nan] |= nan_bits[slot[with_nan]]
    rest = np.nonzero(~simple)[0]
    bits[rest] = 0
    for c in present:
        sel = rest[((effective[rest] >> np.uint64(c)) & np.uint64(1)).astype(bool)]
        if len(sel):
            bits[sel] |= eq[c][slot[sel]]
    return bits


def _rank_bits(xf: np.ndarray, ranks: dict) -> np.ndarray:
    """Predicate bitsets of the threshold-rank strategy, for any float input.

    A feature's code is the rank of the value among the feature's sorted distinct split
    thresholds T (searchsorted, the same compare as the split: with ``<=`` splits the code is
    the number of thresholds < x, so x <= T[j] exactly when code <= j); a split at T[j] sends
    the row right when code >= j + 1. NaN rows go to the side the compile step read off the
    kernel's own routing of NaN for that predicate."""
    feats = ranks["features"]
    n = xf.shape[0]
    words = (n + 63) // 64
    nbytes = (n + 7) // 8
    xs = np.ascontiguousarray(xf[:, feats].T)  # (used features, rows)
    offsets = ranks["offsets"]
    thresholds = ranks["thresholds"]
    side = ranks["side"]
    # predicates sorted by feature (compile): feature j owns predicates first[j]:first[j+1]
    first = ranks["first"]
    cut = ranks["cut"]
    bits = np.zeros((len(cut), words), dtype=np.uint64)
    out = bits.view(np.uint8)
    codes_dtype = np.uint8 if np.diff(offsets).max() < 255 else np.uint16
    for j in range(len(feats)):
        lo, hi = first[j], first[j + 1]
        if lo == hi:
            continue
        codes = np.searchsorted(thresholds[offsets[j] : offsets[j + 1]], xs[j], side=side)
        codes = codes.astype(codes_dtype)
        go = codes[None, :] >= cut[lo:hi, None].astype(codes_dtype)
        out[lo:hi, :nbytes] = np.packbits(go, axis=1, bitorder="little")
    nan = np.isnan(xs)
    if nan.any():
        slot, nan_right = ranks["slot"], ranks["nan_right"]
        nan_bits = _packed(nan, words)[slot]  # (predicates, words)
        bits &= ~nan_bits
        bits[nan_right] |= nan_bits[nan_right]
    return bits


def _transposed(X: np.ndarray) -> np.ndarray:
    """C-ordered copy of X.T, in 256 x 256 tiles: a plain strided copy of a wide int8 matrix
    is cache-hostile (about 4x slower for 6,720 x 2,748)."""
    n, width = X.shape
    out = np.empty((width, n), dtype=X.dtype)
    for c in range(0, width, 256):
        for r in range(0, n, 256):
            out[c : c + 256, r : r + 256] = X[r : r + 256, c : c + 256].T
    return out


def _bit_plane(ct: np.ndarray, j: int) -> np.ndarray:
    """Bit j of every code, packed: (features, 64*words) uint8 -> (features, words) uint64.

    Works on 8 codes per uint64 (SWAR): isolate bit j of each byte, then one multiply by
    0x0102040810204080 moves byte i's bit to bit 56+i, so the top byte holds the 8 rows'
    bits in row order (the partial products never collide, so nothing carries into it)."""
    v = ct.view(np.uint64)
    p = (v >> np.uint64(j)) & np.uint64(0x0101010101010101)
    p *= np.uint64(0x0102040810204080)
    p >>= np.uint64(56)
    return p.astype(np.uint8).view(np.uint64)


def _pack_rows(flags: np.ndarray) -> np.ndarray:
    """(features, 64*words) 0/1 -> (features, words) uint64, row r of word w at bit r."""
    packed = np.packbits(
        flags.view(np.bool_) if flags.dtype == np.bool_ else flags != 0, axis=1, bitorder="little"
    )
    return packed.view(np.uint64)


def _small_codes(xs: np.ndarray) -> tuple[np.ndarray, int, bool] | None:
    """(uint8 codes, largest non-NaN code, any NaN) of a block whose values are integers in
    0..MAX_CODE-1 or NaN; None otherwise."""
    if xs.size == 0:
        return np.zeros(xs.shape, dtype=np.uint8), 0, False
    if xs.dtype.kind in "iub":
        lo, hi = int(xs.min()), int(xs.max())
        if lo < 0 or hi >= MAX_CODE:
            return None
        # a fancy-indexed copy already: 1-byte integers compare as they are
        return (xs if xs.dtype.itemsize == 1 else xs.astype(np.uint8)), hi, False
    if xs.dtype.kind != "f":
        return None
    # cast first (out-of-range floats and NaN cast to arbitrary bytes, caught by the equality
    # test); integral data then costs three passes instead of a NaN / min / max scan each
    with np.errstate(invalid="ignore", over="ignore"):
        codes = xs.astype(np.uint8)
    exact = codes == xs
    has_nan = False
    if not exact.all():
        nan = np.isnan(xs)
        if not (exact | nan).all():
            return None  # fractions, negatives, large values or infinities
        has_nan = bool(nan.any())
        codes[nan] = 0
    top = int(codes.max())
    if top >= MAX_CODE:
        return None
    if has_nan:
        codes[nan] = NAN_CODE
    return codes, top, has_nan


def _bits_accumulate(
    chunk: dict, bits: np.ndarray, acc: np.ndarray, n: int, key: str = "node_pred"
) -> np.ndarray:
    """acc + the leaf values of the chunk's trees, in tree order, from the predicate bitsets.

    Trees go in steps small enough for the step's working set to stay in cache; within a
    step the path bits are computed for all trees at once, then each tree's leaf values are
    gathered from its small table and added (a per-tree loop: order-preserving and faster
    than one large gather)."""
    depth = chunk["depth"]
    node_pred = chunk[key]  # (trees, 2**depth - 1) predicate per heap slot
    tables = chunk["leaf_values"]  # (trees, 2**depth) in the accumulation dtype
    words = bits.shape[1]
    step = max(1, min(TREES_PER_BITS_STEP, (1 << 22) // max(words * 64 * 8, 1)))
    for a in range(0, len(node_pred), step):
        preds = node_pred[a : a + step]
        t = preds.shape[0]
        path = np.empty((depth, t, words), dtype=np.uint64)
        slots = bits[preds]  # (t, 2**depth - 1, words): every node's row bits
        for d in range(depth):
            level = slots[:, (1 << d) - 1 : (1 << (d + 1)) - 1]
            # Multiplex the level's 2**d node bits down to the one each row reached. Slots
            # are stored in bit-reversed order (compile), so the selector path[j] always
            # picks between the two contiguous halves: contiguous slices are several times
            # faster than the strided sibling pairs of heap order.
            for j in range(d - 1, -1, -1):
                half = level.shape[1] // 2
                lo = level[:, :half]
                mixed = level[:, half:] ^ lo
                mixed &= path[j][:, None, :]
                mixed ^= lo
                level = mixed
            path[d] = level[:, 0]
        # leaf index per (tree, row): _SPREAD maps a byte of path bits (8 rows) to 8 bytes
        planes = path.view(np.uint8)  # (depth, t, words*8): byte b holds rows 8b..8b+7
        leaf = np.zeros((t, words * 8), dtype=np.uint64)
        for d in range(depth):
            spread = np.take(_SPREAD, planes[d])
            if depth - 1 - d:
                spread <<= np.uint64(depth - 1 - d)
            leaf |= spread
        leaf_idx = leaf.view(np.uint8)  # little-endian: byte r of word b is row 8b + r
        for i in range(t):
            acc += tables[a + i].take(leaf_idx[i, :n])
    return acc


def _spread_table() -> np.ndarray:
    """byte -> uint64 whose byte r is bit r of the input byte."""
    table = np.zeros(256, dtype=np.uint64)
    for v in range(256):
        table[v] = sum(((v >> r) & 1) << (8 * r) for r in range(8))
    return table


_SPREAD = _spread_table()


# ---------------------------------------------------------------------- shared helpers


def _in_category_set(nd, node, x):
    """v = int(x) (C truncation) in the node's bitset -> True (left); negative, out of range,
    unset -> False."""
    v = np.trunc(np.where(np.isnan(x), -1.0, x))
    v = np.clip(v, -1.0, 2.0**31).astype(np.int64)
    word = v >> 5
    start = nd["cat_offsets"][node]
    n_words = nd["cat_offsets"][node + 1] - start
    ok = (v >= 0) & (word < n_words)
    idx = np.where(ok, start + word, 0)
    cw = nd["cat_words"]
    if len(cw) == 0:
        return np.zeros(len(x), dtype=bool)
    bit = (cw[idx].astype(np.int64) >> (v & 31)) & 1
    return ok & (bit == 1)


def _sum_in_order(acc: np.ndarray, vals: np.ndarray, sequential: bool) -> np.ndarray:
    """acc + vals[0] + vals[1] + ... left to right (vals is (trees, rows))."""
    if sequential:
        # (acc + v0) + v1 + ... : fold acc into the first row, then reduce over trees
        vals = np.array(vals, dtype=acc.dtype, copy=True)
        vals[0] += acc
        return np.add.reduce(vals, axis=0)
    acc = acc.copy()
    for row in vals.astype(acc.dtype, copy=False):
        acc += row
    return acc


_SEQUENTIAL = []


def _reduce_is_sequential() -> bool:
    """Whether np.add.reduce over axis 0 of a C-ordered (trees, rows) matrix adds the trees
    strictly in order on this numpy (checked once against a plain loop)."""
    if not _SEQUENTIAL:
        rng = np.random.default_rng(12345)
        ok = True
        for dtype in (np.float64, np.float32):
            vals = rng.standard_normal((301, 67)) * 10.0 ** rng.integers(-9, 9, size=(301, 67))
            vals = vals.astype(dtype)
            expected = vals[0].copy()
            for row in vals[1:]:
                expected += row
            ok = ok and np.array_equal(np.add.reduce(vals, axis=0), expected)
        _SEQUENTIAL.append(bool(ok))
    return _SEQUENTIAL[0]
