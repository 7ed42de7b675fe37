"""Benchmark: the compiled ONNX evaluator vs onnxruntime on Numerai-sized MLPs, one thread.

    .venv/bin/python bench/onnx.py            # writes bench/results/onnx.md

Models are built with onnx.helper (seeded random weights): Gemm + activation layers, float32.
Input: 6,720 rows (a live era) of Numerai-like integer bins scaled to [0, 1]. Both sides run
single-threaded: OpenBLAS/OMP threads 1 for numpy, intra_op_num_threads=1 for onnxruntime.
Calls alternate between the two engines so background load hits both alike; the table reports
medians over REPEATS calls each after a warm-up.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads its BLAS

import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

# run as a script, this file's folder is sys.path[0] and this file would shadow the onnx package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from builder.artifacts import onnx as onnx_reader  # noqa: E402
from builder.compile.onnx import compile_graph  # noqa: E402

ROWS = 6_720
REPEATS = 21
TARGET_RATIO = 1.25
MODELS = [
    ("MLP 780-512-256-1, ReLU", (780, 512, 256, 1), "Relu"),
    ("MLP 2748-1024-256-1, ReLU", (2748, 1024, 256, 1), "Relu"),
    ("MLP 780-512-256-1, GELU (erf)", (780, 512, 256, 1), "GeluErf"),
]
RESULTS = Path(__file__).parent / "results" / "onnx.md"
README_SECTION = Path(__file__).parents[1] / "docs" / "readme" / "onnx.md"
BENCH_BEGIN, BENCH_END = "<!-- onnx-bench:begin -->", "<!-- onnx-bench:end -->"


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, sizes, activation in MODELS:
            path = Path(tmp) / "model.onnx"
            onnx.save(mlp(sizes, activation), str(path))
            X = live_like(sizes[0])
            ours_ms, ort_ms, rel = measure(path, X)
            rows.append((label, ours_ms, ort_ms, ours_ms / ort_ms, rel))
            print(
                f"{label}: ours {ours_ms:.1f} ms, onnxruntime {ort_ms:.1f} ms, ratio {ours_ms / ort_ms:.2f}"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(render(rows))
    print(f"wrote {RESULTS}")
    if README_SECTION.exists():  # the README section quotes the measured table verbatim
        text = README_SECTION.read_text()
        head, _, rest = text.partition(BENCH_BEGIN)
        _, _, tail = rest.partition(BENCH_END)
        table = "\n".join(line for line in render(rows).splitlines() if line.startswith("|"))
        README_SECTION.write_text(f"{head}{BENCH_BEGIN}\n{table}\n{BENCH_END}{tail}")


def mlp(sizes, activation: str, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "x"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        w = (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = (rng.normal(size=n_out) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [f"h{i}"], transB=1))
        prev = f"h{i}"
        if i < len(sizes) - 2:
            nodes += activation_nodes(activation, prev, f"a{i}", inits, i)
            prev = f"a{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", sizes[0]])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", sizes[-1]])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def activation_nodes(kind: str, src: str, dst: str, inits: list, i: int) -> list:
    if kind != "GeluErf":
        return [helper.make_node(kind, [src], [dst])]
    # the decomposition torch.onnx.export emits below opset 20: x * 0.5 * (1 + erf(x / sqrt 2))
    for name, value in (("sqrt2", np.sqrt(2.0)), ("one", 1.0), ("half", 0.5)):
        if not any(t.name == name for t in inits):
            inits.append(numpy_helper.from_array(np.array(value, np.float32), name))
    return [
        helper.make_node("Div", [src, "sqrt2"], [f"d{i}"]),
        helper.make_node("Erf", [f"d{i}"], [f"e{i}"]),
        helper.make_node("Add", [f"e{i}", "one"], [f"p{i}"]),
        helper.make_node("Mul", [src, f"p{i}"], [f"m{i}"]),
        helper.make_node("Mul", [f"m{i}", "half"], [dst]),
    ]


def live_like(n_features: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.integers(0, 5, size=(ROWS, n_features)) / 4).astype(np.float32)


def measure(path: Path, X: np.ndarray) -> tuple[float, float, float]:
    evaluator = compile_graph(onnx_reader.read(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ours = evaluator.predict(X)
    (reference,) = session.run(None, {"x": X})
    rms = float(np.sqrt(np.mean(np.square(reference)))) or 1.0
    rel = float(np.max(np.abs(ours - reference) / np.maximum(np.abs(reference), rms)))
    ours_times, ort_times = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        evaluator.predict(X)
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        session.run(None, {"x": X})
        ort_times.append(time.perf_counter() - start)
    return 1000 * float(np.median(ours_times)), 1000 * float(np.median(ort_times)), rel


def render(rows) -> str:
    lines = [
        "# ONNX evaluator vs onnxruntime (one thread)",
        "",
        f"Generated by `bench/onnx.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{ROWS:,} rows, median of {REPEATS} alternating calls; target ratio <= {TARGET_RATIO}.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs shared with other jobs "
        f"(load average {os.getloadavg()[0]:.1f} at the end: absolute times scale with it, "
        "the alternating calls keep the ratios comparable); "
        f"Python {platform.python_version()}, numpy {np.__version__} "
        f"({blas_name()}), onnxruntime {ort.__version__}.",
        "",
        "| model | ours (ms) | onnxruntime (ms) | ratio | max rel. diff |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, ours_ms, ort_ms, ratio, rel in rows:
        lines.append(f"| {label} | {ours_ms:.1f} | {ort_ms:.1f} | {ratio:.2f} | {rel:.1e} |")
    lines += [
        "",
        "max rel. diff: max |ours - ort| / max(|ort|, rms(ort)) over all rows.",
        "",
    ]
    return "\n".join(lines)


def blas_name() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy without mode="dicts"
        return "BLAS unknown"


if __name__ == "__main__":
    main()
