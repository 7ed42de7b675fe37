"""Fidelity: does the pickle's compiled model say what the native library says?

The pickle is loaded by the runtime's own Python (``model_child.py fidelity``) and predicts
the live frame through its own call, as numerai-predict calls it, so each member's evaluator
runs on the array the shipped pickle hands it (int8 when the bundle keeps Numerai's integer
features). The child returns each member's raw output (before postprocessing) and the live
values as float64 after preprocessing; the builder asks the native library
(``builder.artifacts.reader(fmt).native_predict``) for its predictions on those values and
reports the largest absolute difference. A member handed other values than the live ones
(a broken dtype conversion) fails even when its output happens to agree.

Tolerances are the compilers' stated promises (docs/design/architecture.md, invariant 4), stated
as data in each reader's ``SUPPORT`` rows (builder/artifacts/__init__.py ``Support``): tree
ensembles reproduce the native library bit for bit (0.0); ONNX graphs match onnxruntime to
1e-5 relative (absolute for outputs below 1 in magnitude).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from builder.errors import NmrError, NotSupportedYet

_CHILD = Path(__file__).with_name("model_child.py")


@dataclass
class MemberFidelity:
    artifact: str
    format: str
    rows: int
    max_abs_diff: float | None  # None when skipped
    tolerance: float
    ok: bool
    skipped: str | None = None  # why the comparison did not run
    input_dtype: str | None = None  # the dtype the pickle handed the member (e.g. int8)
    input_differs: bool = False  # the pickle handed the member other values than the live ones


@dataclass
class FidelityReport:
    members: list[MemberFidelity] = field(default_factory=list)
    skipped: str | None = None  # the whole check did not run (not an nmr pickle, ...)

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.members)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "skipped": self.skipped,
            "members": [asdict(m) for m in self.members],
        }


def check_fidelity(pickle_path, python, live_path, model_config, max_rows: int = 5000):
    """Compare every member of an nmr pickle with its native model on the live sample."""
    with tempfile.TemporaryDirectory(prefix="nmr-fidelity-") as tmp:
        out = str(Path(tmp) / "members.npz")
        done = subprocess.run(
            [
                str(python),
                str(_CHILD),
                "fidelity",
                str(pickle_path),
                str(live_path),
                out,
                str(max_rows),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise NmrError(f"fidelity check could not evaluate {pickle_path}: {last}")
        meta = json.loads(Path(out + ".json").read_text())
        if meta["kind"] != "nmr":
            return FidelityReport(skipped="not an nmr-built pickle")
        arrays = dict(np.load(out))
    members = list(model_config.members)
    if meta["members"] != len(members):
        raise NmrError(
            f"the pickle has {meta['members']} model(s) but numerai.yaml configures "
            f"{len(members)} for {model_config.slot}: rebuild it"
        )
    report = FidelityReport()
    for i, member in enumerate(members):
        result = compare_member(member, arrays[f"X{i}"], arrays[f"raw{i}"])
        result.input_dtype = meta["dtypes"][i]
        if not meta["same_input"][i]:
            result.input_differs = True
            result.ok = False
        report.members.append(result)
    return report


def compare_member(member, X: np.ndarray, raw: np.ndarray) -> MemberFidelity:
    """Native predictions of one configured member vs the pickle's raw output on ``X``."""
    from builder.artifacts import reader

    # the reader's stated tolerance (its SUPPORT rows; the strictest when it has several)
    tolerance = min(row.tolerance for row in reader(member.format).SUPPORT)
    # a reader whose models differ in promise (scikit-learn: exact trees, BLAS-summed linear
    # models, MLPs and Pipelines) states the tolerance per artifact
    tolerance_of = getattr(reader(member.format), "fidelity_tolerance", None)
    if tolerance_of is not None:
        try:
            tolerance = tolerance_of(member.artifact)
        except ImportError:
            pass  # reported as "not installed" just below
    base = dict(
        artifact=str(member.artifact), format=member.format, rows=len(X), tolerance=tolerance
    )
    try:
        native = reader(member.format).native_predict(member.artifact, X, list(member.features))
    except ImportError as error:
        name = getattr(error, "name", None) or member.format
        return MemberFidelity(**base, max_abs_diff=None, ok=True, skipped=f"{name} not installed")
    except NotSupportedYet as error:
        # the artifact builds, but its library cannot load this form to compare against (e.g.
        # LightGBM's Booster has no loader for dump_model JSON): nothing to compare, not a fault
        return MemberFidelity(**base, max_abs_diff=None, ok=True, skipped=str(error))
    native = np.asarray(native, dtype=np.float64).reshape(len(X), -1)
    raw = np.asarray(raw, dtype=np.float64).reshape(len(X), -1)
    if native.shape != raw.shape:
        return MemberFidelity(
            **base,
            max_abs_diff=float("inf"),
            ok=False,
            skipped=f"shape {raw.shape} vs native {native.shape}",
        )
    diff = np.abs(raw - native)
    same_nan = np.isnan(raw) & np.isnan(native)
    diff[same_nan] = 0.0
    diff[np.isnan(diff)] = np.inf
    max_diff = float(diff.max()) if diff.size else 0.0
    allowed = tolerance * np.maximum(np.abs(native), 1.0)
    allowed[np.isnan(allowed)] = 0.0
    ok = bool(np.all(diff <= allowed))
    return MemberFidelity(**base, max_abs_diff=max_diff, ok=ok)
