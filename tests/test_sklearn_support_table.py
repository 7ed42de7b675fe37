"""The README's scikit-learn support table names every estimator and step the reader compiles,
and nothing the reader refuses is listed as compiled."""

from __future__ import annotations

from pathlib import Path

from builder.artifacts.sklearn_models import supported_estimators

PAGE = Path(__file__).resolve().parents[1] / "docs" / "sklearn-models.md"


def test_every_compiled_estimator_and_step_is_named_in_the_docs():
    text = PAGE.read_text(encoding="utf-8")
    names = [name for family in supported_estimators().values() for name in family]
    missing = [name for name in names if f"`{name}" not in text]
    assert not missing, f"docs/sklearn-models.md does not name {missing}"


def test_docs_state_the_bound_the_tests_assert():
    assert "1e-12 x the largest |prediction|" in PAGE.read_text(encoding="utf-8")
