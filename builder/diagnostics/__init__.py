"""Diagnostics for ``nmr test``: fidelity against the native model, validation metrics, report.

Public API (stable; `nmr test` and its stage module call only these):
  check_fidelity(pickle_path, python, live_path, model_config, max_rows=5000) -> FidelityReport
  run_validation(pickle_path, python, validation_path, benchmarks_path=None, on_progress=None,
                 *, features=None, bmc_benchmark=None, data_version=None, members=None,
                 out_dir=None) -> ValidationResult
  evaluate(predictions, validation_path, benchmarks=None, ...) -> ValidationResult
  numerai_corr(predictions, target) -> float
  write_report(path, slot, run=None, fidelity=None, validation=None) -> Path
  render_slot(slot, run=None, fidelity=None, validation=None) -> str
  render_index(entries) -> str; write_index(path, entries) -> Path
"""

from __future__ import annotations

from builder.diagnostics.fidelity import FidelityReport, MemberFidelity, check_fidelity
from builder.diagnostics.report import render_index, render_slot, write_index, write_report
from builder.diagnostics.validation import (
    MEMBER_PREDICTIONS_FILE,
    PREDICTIONS_FILE,
    ValidationReport,
    ValidationResult,
    default_bmc_benchmark,
    evaluate,
    max_drawdown,
    numerai_corr,
    run_validation,
    series_stats,
)

__all__ = [
    "MEMBER_PREDICTIONS_FILE",
    "PREDICTIONS_FILE",
    "FidelityReport",
    "MemberFidelity",
    "ValidationReport",
    "ValidationResult",
    "check_fidelity",
    "default_bmc_benchmark",
    "evaluate",
    "max_drawdown",
    "numerai_corr",
    "render_index",
    "render_slot",
    "run_validation",
    "series_stats",
    "write_index",
    "write_report",
]
