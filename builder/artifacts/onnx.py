"""ONNX reader: a ``.onnx`` file -> ``builder.ir.Graph`` with constants and shape arithmetic folded.

Runs at build time only (needs the ``onnx`` package; ``native_predict`` needs onnxruntime).
What ships is the folded graph: a straight list of numeric ops over the single feature input,
weights as numpy arrays.

Folding: every node whose inputs are all constants is evaluated here with ``onnx.reference``
(the ONNX project's own reference semantics). The Shape -> Gather -> Unsqueeze -> Concat
chains that ``torch.onnx.export`` emits for a dynamic batch size are folded symbolically: the
batch dimension is a symbol, and a Reshape whose target contains it gets ``-1`` in its place.
Classifier graphs keep only the probability tensor: ZipMap (a sequence of maps, which numpy
predictions have no use for) and the label output are dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from builder import ir
from builder.artifacts import Support
from builder.errors import ArtifactError, NmrError, NotSupportedYet

FORMAT = "onnx"
SUFFIXES = (".onnx",)

SUPPORT = (
    Support(
        "ONNX",
        "torch exports and skl2onnx graphs; the op table in docs/onnx.md",
        "numpy graph evaluator",
        # float32 graphs: numpy and onnxruntime may sum and round in another order
        # (tests/test_onnx_*.py measure it against onnxruntime)
        1e-5,
    ),
)

# ops whose outputs differ between runs or that carry subgraphs are never folded
_NEVER_FOLD = {
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}
_SUBGRAPH_OPS = {"If", "Loop", "Scan", "SequenceMap"}
_CLASSIFIER_OPS = {"TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier"}


def input_files(path: Path) -> tuple[Path, ...]:
    """The files ``read`` opens: the ``.onnx`` file, then every external-data file its tensors
    name. ArtifactError naming the file when one is missing."""
    path = Path(path)
    return (path, *_external_files(_load_proto(path), path))


def read(path: Path, feature_names=None) -> ir.Graph:
    """Read and fold an ONNX model; ``feature_names`` (model column order) binds the input."""
    path = Path(path)
    model = _load(path)
    opsets = {(imp.domain or ""): int(imp.version) for imp in model.opset_import}
    if "ai.onnx" in opsets:
        opsets.setdefault("", opsets.pop("ai.onnx"))
    graph = model.graph
    initializers = {t.name: _to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise NotSupportedYet(
            f"ONNX graphs with {len(inputs)} inputs ({names}) in {path.name}; nmr feeds one "
            "feature matrix"
        )
    graph_input = inputs[0]
    input_dtype, input_width = _input_signature(graph_input, path)
    if feature_names is not None and input_width is not None and input_width != len(feature_names):
        raise NmrError(
            f"{path.name}: the ONNX input {graph_input.name!r} is {input_width} features wide "
            f"but the model's feature list has {len(feature_names)} names"
        )
    if input_width is None and feature_names is not None:
        input_width = len(feature_names)

    output_name, classifier = _choose_output(graph, path)
    static_shapes = _static_shapes(model, graph_input.name)
    nodes, constants = _fold(graph, initializers, graph_input.name, static_shapes, opsets, path)
    nodes = _prune(nodes, output_name)
    used = {name for node in nodes for name in node.inputs}
    constants = {name: value for name, value in constants.items() if name in used}
    if output_name in constants or not nodes:
        raise NmrError(f"{path.name}: the output {output_name!r} does not depend on the input")
    n_outputs = _declared_width(graph, output_name, static_shapes)
    task = "regression"
    if classifier:  # compile_graph settles an undeclared width by running the graph
        task = "binary" if n_outputs == 2 else "multiclass"
    return ir.Graph(
        input_name=graph_input.name,
        input_width=input_width,
        output_names=(output_name,),
        nodes=tuple(nodes),
        initializers=constants,
        opsets=opsets,
        feature_names=tuple(feature_names) if feature_names is not None else (),
        task=task,
        meta={
            "input_dtype": input_dtype,
            "n_outputs": n_outputs,
            "classifier": classifier,
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "ir_version": int(model.ir_version),
            "source": path.name,
        },
    )


def native_predict(path: Path, X: np.ndarray, feature_names=None) -> np.ndarray:
    """onnxruntime's output (the tensor ``read`` chose) as float64 (n_rows, n_outputs).

    One thread, as the benchmark measures it. When the chosen tensor is not a graph output
    (a classifier's probabilities feeding ZipMap) it is declared one on an in-memory copy.
    """
    import onnx
    import onnxruntime as ort

    path = Path(path)
    graph = read(path, feature_names)
    output_name = graph.output_names[0]
    # exports traced without a dynamic batch axis declare batch 1; onnxruntime would refuse
    # other row counts, while the folded graph treats the first dimension as the batch
    model = _with_symbolic_batch(_load_with_external_data(path), graph.input_name)
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            dims[0].dim_param = _BATCH_PARAM
    if output_name not in {o.name for o in model.graph.output}:
        dtype = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(np.float32))
        model.graph.output.append(onnx.helper.make_tensor_value_info(output_name, dtype, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    X = np.ascontiguousarray(X, dtype=graph.meta["input_dtype"])
    (y,) = session.run([output_name], {graph.input_name: X})
    return np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)


# ---------------------------------------------------------------------------------------------
# loading and signatures


def _load(path: Path):
    model = _load_with_external_data(path)
    if not model.graph.node:
        raise ArtifactError(f"{path.name}: the ONNX graph has no nodes")
    if model.functions:
        from onnx import inliner

        model = inliner.inline_local_functions(model)
    return model


def _load_with_external_data(path: Path):
    """The model with its external tensors read from exactly the files ``input_files`` names."""
    from onnx import external_data_helper

    model = _load_proto(path)
    _external_files(model, path)  # a missing file is named before onnx reports it
    try:
        external_data_helper.load_external_data_for_model(model, str(path.parent))
    except Exception as error:  # a location escaping the folder, a file shorter than offset+length
        raise ArtifactError(f"{path.name}: its external data cannot be read ({error})") from None
    return model


def _load_proto(path: Path):
    """The ModelProto as stored in the file, external tensors not yet read."""
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise NmrError(f"{path}: no such ONNX file") from None
    except Exception as error:  # protobuf DecodeError and friends
        raise ArtifactError(f"{path.name}: not a readable ONNX model ({error})") from None


def _external_files(model, path: Path) -> list[Path]:
    """The files the model's external tensors live in, in first-use order.

    ONNX's external data format: a tensor with ``data_location = EXTERNAL`` keeps its bytes in
    the file its ``external_data`` entry ``location`` names, relative to the model file's folder
    (onnx/external_data_helper.py). torch.onnx.export writes ``<name>.onnx.data`` this way for
    large models. Tensors sit in initializers, sparse initializers, Constant-like node
    attributes and the subgraphs of If/Loop/Scan, in the main graph and in local functions.
    """
    from onnx import TensorProto
    from onnx.external_data_helper import ExternalDataInfo

    files: dict[Path, None] = {}
    for tensor in _all_tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        location = ExternalDataInfo(tensor).location
        file = path.parent / location
        # onnx itself refuses to read outside the model's folder; say so before hashing anything
        if not file.resolve().is_relative_to(path.parent.resolve()):
            raise ArtifactError(
                f"{path.name}: tensor {tensor.name!r} names external data {location!r} outside "
                "the model's folder; keep the data files next to the .onnx file"
            )
        if not file.is_file():
            raise ArtifactError(
                f"{path.name}: the external data file {location!r} (of tensor {tensor.name!r}) "
                f"does not exist next to it, in {path.parent}"
            )
        files.setdefault(file, None)
    return list(files)


def _all_tensors(model):
    def graph_tensors(graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        yield from node_tensors(graph.node)

    def node_tensors(nodes):
        for node in nodes:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                if attribute.HasField("sparse_tensor"):
                    yield attribute.sparse_tensor.values
                    yield attribute.sparse_tensor.indices
                if attribute.HasField("g"):
                    yield from graph_tensors(attribute.g)
                for subgraph in attribute.graphs:
                    yield from graph_tensors(subgraph)

    yield from graph_tensors(model.graph)
    for function in model.functions:
        yield from node_tensors(function.node)


def _input_signature(value_info, path: Path) -> tuple[str, int | None]:
    from onnx import helper

    tensor_type = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type"):
        raise NotSupportedYet(f"ONNX input {value_info.name!r} that is not a tensor ({path.name})")
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    if dtype.kind not in "fiu":
        raise NotSupportedYet(f"ONNX input {value_info.name!r} of type {dtype} ({path.name})")
    if tensor_type.HasField("shape"):
        dims = tensor_type.shape.dim
        if len(dims) != 2:
            raise NotSupportedYet(
                f"ONNX input {value_info.name!r} of rank {len(dims)} ({path.name}); nmr feeds "
                "a 2-D (rows, features) matrix"
            )
        if dims[1].HasField("dim_value"):
            return dtype.name, int(dims[1].dim_value)
    return dtype.name, None


def _choose_output(graph, path: Path) -> tuple[str, bool]:
    """The output tensor to predict with, and whether the graph is a classifier."""
    from onnx import TensorProto

    producers = {out: node for node in graph.node for out in node.output}
    classifier = any(node.op_type in _CLASSIFIER_OPS for node in graph.node)
    candidates = []
    for output in graph.output:
        node = producers.get(output.name)
        if node is not None and node.op_type == "ZipMap":
            classifier = True
            candidates.append(node.input[0])  # ZipMap's input is the probability tensor
            continue
        if not output.type.HasField("tensor_type"):
            continue
        elem = output.type.tensor_type.elem_type
        if elem in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
            candidates.append(output.name)
        elif elem in (TensorProto.INT64, TensorProto.STRING) and len(graph.output) > 1:
            classifier = True  # the label output of a classifier; predictions use the scores
    if not candidates:
        raise NotSupportedYet(f"ONNX graphs without a float output tensor ({path.name})")
    if len(candidates) > 1 and not classifier:
        names = ", ".join(candidates)
        raise NotSupportedYet(f"ONNX graphs with several float outputs ({names}) in {path.name}")
    return (candidates[-1] if classifier else candidates[0]), classifier


def _static_shapes(model, input_name: str) -> dict:
    """name -> tuple of dims (int, _BATCH, or None) from onnx shape inference."""
    from onnx import shape_inference

    model = _with_symbolic_batch(model, input_name)
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # shape inference is a help for folding, never a requirement
        inferred = model
    graph = inferred.graph
    batch_param = _BATCH_PARAM
    shapes = {}
    for info in list(graph.value_info) + list(graph.input) + list(graph.output):
        if not info.type.HasField("tensor_type") or not info.type.tensor_type.HasField("shape"):
            continue
        dims = []
        for dim in info.type.tensor_type.shape.dim:
            if dim.HasField("dim_value"):
                dims.append(int(dim.dim_value))
            elif dim.dim_param == batch_param:
                dims.append(_BATCH)
            else:
                dims.append(None)
        shapes[info.name] = tuple(dims)
    return shapes


def _with_symbolic_batch(model, input_name: str):
    """A copy whose input's first dimension is the symbol nmr treats as the batch size."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    for value_info in model.graph.input:
        if value_info.name == input_name and value_info.type.tensor_type.HasField("shape"):
            dims = value_info.type.tensor_type.shape.dim
            if dims:
                dims[0].ClearField("dim_value")
                dims[0].dim_param = _BATCH_PARAM
    return model


def _declared_width(graph, output_name: str, shapes: dict) -> int | None:
    dims = shapes.get(output_name)
    if dims is None:
        return None
    if len(dims) == 1:
        return 1
    if len(dims) == 2 and isinstance(dims[1], int) and not isinstance(dims[1], _Batch):
        return dims[1]
    return None


# ---------------------------------------------------------------------------------------------
# folding


class _Batch(int):
    """The symbolic batch dimension inside folded shape vectors (an int so numpy can hold it)."""

    def __repr__(self) -> str:
        return "N"


_BATCH_PARAM = "nmr_batch"
_BATCH = _Batch(-(2**62))  # a sentinel no real dimension takes


def _fold(graph, initializers: dict, input_name: str, shapes: dict, opsets: dict, path: Path):
    """Fold constant and shape-only nodes; returns (runtime GraphNodes, constants)."""
    constants: dict = dict(initializers)
    symbolic: dict = {}  # name -> object array holding ints and _BATCH (shape vectors)
    symbolic_producer: dict = {}  # name -> the node that makes it, to rebuild it at run time
    runtime_nodes: list = []
    materialized: set = set()

    def materialize(name: str) -> None:
        # a runtime node needs a symbolic vector as a tensor: keep the nodes that compute it
        if name in materialized or name not in symbolic:
            return
        node = symbolic_producer[name]
        for inp in node.inputs:
            materialize(inp)
        materialized.add(name)
        runtime_nodes.append(node)

    for proto in graph.node:
        node = _graph_node(proto)
        if node.op in _SUBGRAPH_OPS:
            raise NotSupportedYet(
                f"ONNX op {node.op} (node {node.name!r}, opset {opsets.get(node.domain, '?')}) "
                f"with a subgraph in {path.name}"
            )
        present = [name for name in node.inputs if name]
        if node.op == "Constant":
            constants[node.outputs[0]] = _constant_value(node)
            continue
        if node.op not in _NEVER_FOLD and all(name in constants for name in present):
            values = _evaluate(proto, constants, opsets)
            constants.update((n, v) for n, v in zip(node.outputs, values, strict=False) if n)
            continue
        if node.op == "Shape" and present[0] not in constants:
            vector = _symbolic_shape(node, shapes.get(present[0]))
            if vector is not None:
                symbolic[node.outputs[0]] = vector
                symbolic_producer[node.outputs[0]] = node
                continue
        if (
            node.op in _SYMBOLIC_OPS
            and any(n in symbolic for n in present)
            and all(n in symbolic or n in constants for n in present)
        ):
            vector = _symbolic_eval(node, symbolic, constants, opsets)
            if vector is not None:
                vector = np.asarray(vector, dtype=object)
                if all(not isinstance(v, _Batch) for v in vector.reshape(-1)):
                    constants[node.outputs[0]] = vector.astype(np.int64)
                else:
                    symbolic[node.outputs[0]] = vector
                    symbolic_producer[node.outputs[0]] = node
                continue
        if node.op == "Reshape" and len(present) > 1 and present[1] in symbolic:
            target = _resolve_reshape_target(symbolic[present[1]], shapes.get(present[0]))
            if target is not None:
                name = f"{node.outputs[0]}__nmr_shape"
                constants[name] = target
                node = ir.GraphNode(
                    node.op,
                    node.domain,
                    (node.inputs[0], name),
                    node.outputs,
                    node.attrs,
                    node.name,
                )
        if node.op == "Reshape" and len(node.inputs) > 1 and node.inputs[1] in constants:
            dims = _reshaped_dims(shapes.get(node.inputs[0]), constants[node.inputs[1]])
            if dims is not None and any(d is None for d in shapes.get(node.outputs[0], (None,))):
                shapes[node.outputs[0]] = dims  # shape inference cannot see that -1 is N
        for name in node.inputs:
            if name in symbolic:
                materialize(name)
        runtime_nodes.append(node)
    del input_name  # never a constant: the loop above cannot fold what depends on it
    return runtime_nodes, constants


_SYMBOLIC_OPS = {"Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Cast", "Identity", "Reshape"}


def _symbolic_shape(node, dims) -> np.ndarray | None:
    if dims is None or any(d is None for d in dims):
        return None
    start = node.attrs.get("start", 0)
    end = node.attrs.get("end", None)
    vector = np.array(list(dims), dtype=object)[start:end]
    return vector


def _symbolic_eval(node, symbolic: dict, constants: dict, opsets: dict) -> np.ndarray | None:
    def value(name):
        if not name:
            return None
        return symbolic[name] if name in symbolic else constants[name]

    args = [value(name) for name in node.inputs]
    op = node.op
    try:
        if op in ("Identity", "Cast"):
            return args[0]
        if op == "Gather":
            return np.take(
                args[0], np.asarray(args[1], dtype=np.int64), axis=node.attrs.get("axis", 0)
            )
        if op == "Concat":
            return np.concatenate([np.asarray(a, dtype=object) for a in args if a is not None])
        if op in ("Unsqueeze", "Squeeze"):
            axes = node.attrs.get("axes")
            if axes is None and len(args) > 1 and args[1] is not None:
                axes = [int(a) for a in args[1]]
            x = np.asarray(args[0], dtype=object)
            if op == "Unsqueeze":
                for a in sorted(int(a) % (x.ndim + len(axes)) for a in axes):
                    x = np.expand_dims(x, a)
                return x
            return np.squeeze(
                x, axis=None if axes is None else tuple(int(a) % x.ndim for a in axes)
            )
        if op == "Slice":
            starts = node.attrs.get("starts", args[1] if len(args) > 1 else None)
            ends = node.attrs.get("ends", args[2] if len(args) > 2 else None)
            x = np.asarray(args[0], dtype=object)
            if x.ndim != 1:
                return None
            steps = args[4] if len(args) > 4 and args[4] is not None else [1] * len(starts)
            return x[int(starts[0]) : int(ends[0]) : int(steps[0])]
        if op == "Reshape":
            return np.asarray(args[0], dtype=object).reshape([int(d) for d in args[1]])
    except (IndexError, ValueError, TypeError, KeyError):
        return None
    return None


def _resolve_reshape_target(vector: np.ndarray, data_dims) -> np.ndarray | None:
    """A concrete Reshape target for a shape vector holding the batch symbol, or None."""
    entries = list(vector.reshape(-1))
    batch_positions = [i for i, v in enumerate(entries) if isinstance(v, _Batch)]
    if len(batch_positions) != 1:
        return None
    if -1 in entries:
        # [N, -1]: the other entries are fixed, so -1 is computable from the data's static
        # per-row size; the batch entry then becomes the one -1
        if data_dims is None or any(d is None for d in data_dims[1:]) or data_dims[0] != _BATCH:
            return None
        per_row = int(np.prod([int(d) for d in data_dims[1:]], dtype=np.int64))
        known = int(
            np.prod(
                [int(v) for v in entries if not isinstance(v, _Batch) and v != -1], dtype=np.int64
            )
        )
        if known == 0 or per_row % known:
            return None
        entries = [per_row // known if v == -1 else v for v in entries]
    entries = [-1 if isinstance(v, _Batch) else int(v) for v in entries]
    return np.array(entries, dtype=np.int64)


def _reshaped_dims(data_dims, target: np.ndarray):
    """(N, d1, ...) for a Reshape of an (N, ...) tensor to [-1, d1, ...] keeping rows, or None."""
    target = [int(d) for d in np.asarray(target).reshape(-1)]
    if not data_dims or data_dims[0] != _BATCH or any(d is None for d in data_dims[1:]):
        return None
    if not target or target[0] != -1 or any(d <= 0 for d in target[1:]):
        return None
    per_row = int(np.prod([int(d) for d in data_dims[1:]], dtype=np.int64))
    if per_row != int(np.prod(target[1:], dtype=np.int64)):
        return None
    return (_BATCH, *target[1:])


def _evaluate(proto, constants: dict, opsets: dict) -> list:
    """Evaluate a node whose inputs are all constants (build time) with ``onnx.reference``."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    input_names = list(dict.fromkeys(name for name in proto.input if name))
    output_names = [name for name in proto.output if name]
    model = helper.make_model(
        helper.make_graph(
            [proto],
            "fold",
            [helper.make_empty_tensor_value_info(name) for name in input_names],
            [helper.make_empty_tensor_value_info(name) for name in output_names],
        ),
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
    )
    try:
        results = ReferenceEvaluator(model).run(None, {n: constants[n] for n in input_names})
    except Exception as error:
        raise NmrError(
            f"cannot fold the constant ONNX node {proto.name!r} ({proto.op_type}): {error}"
        ) from None
    values = dict(zip(output_names, results, strict=False))
    return [np.asarray(values[name]) if name else None for name in proto.output]


def _constant_value(node) -> np.ndarray:
    attrs = node.attrs
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = attrs[key]
            if key.endswith("float") or key.endswith("floats"):
                return np.asarray(value, dtype=np.float32)
            if key.endswith("int") or key.endswith("ints"):
                return np.asarray(value, dtype=np.int64)
            return np.asarray(value)
    raise NotSupportedYet(f"ONNX Constant node {node.name!r} with attributes {sorted(attrs)}")


def _graph_node(proto) -> ir.GraphNode:
    from onnx import helper

    attrs = {}
    for attribute in proto.attribute:
        value = helper.get_attribute_value(attribute)
        attrs[attribute.name] = _plain(value)
    return ir.GraphNode(
        op=proto.op_type,
        domain=proto.domain if proto.domain != "ai.onnx" else "",
        inputs=tuple(proto.input),
        outputs=tuple(proto.output),
        attrs=attrs,
        name=proto.name,
    )


def _plain(value):
    """An onnx attribute value as plain Python / numpy (bytes -> str, tensors -> arrays)."""
    from onnx import TensorProto

    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, TensorProto):
        return _to_array(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _to_array(tensor) -> np.ndarray:
    from onnx import numpy_helper

    return np.asarray(numpy_helper.to_array(tensor))


def _prune(nodes: list, output_name: str) -> list:
    """Only the nodes the chosen output depends on, in their original order."""
    needed = {output_name}
    kept = []
    for node in reversed(nodes):
        if any(out in needed for out in node.outputs):
            kept.append(node)
            needed.update(name for name in node.inputs if name)
    return kept[::-1]
