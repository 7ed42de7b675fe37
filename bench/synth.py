"""How long `nmr data synth` and `nmr validate` take: synthetic data sizes and config checking.

Usage (from the repository root):
    .venv/bin/python bench/synth.py             # writes bench/results/synth.md
    .venv/bin/python bench/synth.py --runs 5

Each row is the median wall time of --runs runs in this process (the machine is shared, so
single runs drift). `validate` is timed twice: `load()` in-process (what nmr's own code costs)
and `nmr validate` as a fresh process (what a user waits for, including imports of every
command module).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from builder.config import load
from builder.config.scaffold import example_project
from builder.datasets import SMALL, SynthSizes, synthesize

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, sizes in (
            ("--small", SMALL),
            ("--scale 0.25", SynthSizes().scaled(0.25)),
            ("default", SynthSizes()),
        ):
            times = []
            for run in range(args.runs):
                started = time.perf_counter()
                result = synthesize(tmp / f"{label}-{run}", sizes=sizes)
                times.append(time.perf_counter() - started)
            sets, counts = result["feature_sets"], result["rows"]
            size = f"{sets['small']}/{sets['medium']}/{sets['all']} features, " + (
                f"{counts['train']}/{counts['validation']}/{counts['live']} rows"
            )
            rows.append((f"data synth {label}", size, statistics.median(times)))

        project = tmp / "demo"
        example_project(project)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            load(project / "numerai.yaml")
            times.append(time.perf_counter() - started)
        rows.append(("load() of the example", "2 models, in-process", statistics.median(times)))
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", "from builder.cli import main; main()", "validate"],
                cwd=project,
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - started)
        rows.append(
            ("nmr validate (process)", "2 models, fresh interpreter", statistics.median(times))
        )

    lines = [
        "# Synthetic data and validation timings",
        "",
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end (the machine is shared), median of "
        f"{args.runs} runs (`bench/synth.py`).",
        "",
        "| Operation | Size | Median seconds |",
        "|---|---|---|",
        *(f"| {name} | {size} | {seconds:.2f} |" for name, size, seconds in rows),
        "",
    ]
    out = REPO / "bench" / "results" / "synth.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
