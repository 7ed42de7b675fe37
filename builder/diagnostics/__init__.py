"""Diagnostics for ``nmr test``: fidelity against the native model, validation metrics, report.

Public API:
  check_fidelity(pickle_path, python, live_path, model_config, max_rows=5000) -> FidelityReport
  run_validation(pickle_path, python, validation_path, benchmarks_path=None,
                 on_progress=None) -> ValidationReport
  numerai_corr(predictions, target) -> float
  write_report(path, slot, run=None, fidelity=None, validation=None) -> Path
"""

from __future__ import annotations

from builder.diagnostics.fidelity import TOLERANCES, FidelityReport, MemberFidelity, check_fidelity
from builder.diagnostics.report import write_report
from builder.diagnostics.validation import (
    ValidationReport,
    max_drawdown,
    numerai_corr,
    run_validation,
    score,
    tie_kept_rank,
)

__all__ = [
    "TOLERANCES",
    "FidelityReport",
    "MemberFidelity",
    "ValidationReport",
    "check_fidelity",
    "max_drawdown",
    "numerai_corr",
    "run_validation",
    "score",
    "tie_kept_rank",
    "write_report",
]
