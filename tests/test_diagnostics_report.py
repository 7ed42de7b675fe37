"""The report pages: era-labelled matplotlib charts as inline SVG, summary tables, the index."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from builder.datasets import SynthSizes, synthesize
from builder.diagnostics import evaluate, render_index, render_slot, write_index, write_report

SIZES = SynthSizes(
    n_all=20,
    n_medium=10,
    n_small=5,
    train_eras=2,
    validation_eras=7,
    rows_per_era=100,
    live_rows=50,
)


def validation_result(root, seed: int, strength: float):
    """A real evaluate() result on synthetic data (predictions: target * strength + noise)."""
    data_dir = root / f"data{seed}"
    synthesize(data_dir, seed=seed, sizes=SIZES)
    validation = pd.read_parquet(data_dir / "validation.parquet")
    rng = np.random.default_rng(seed)
    predictions = pd.DataFrame(
        {
            "era": validation["era"],
            "prediction": strength * validation["target"] + rng.normal(size=len(validation)),
        },
        index=validation.index,
    )
    members = pd.DataFrame(
        {"a": predictions["prediction"], "b": rng.random(len(validation))}, index=validation.index
    )
    return evaluate(
        predictions,
        data_dir / "validation.parquet",
        data_dir / "validation_benchmark_models.parquet",
        features=[c for c in validation.columns if c.startswith("feature_")][:5],
        data_version="v5.2",
        member_predictions=members,
        member_weights={"a": 1.0, "b": 0.5},
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    return {"good": validation_result(root, 1, 1.0), "weak": validation_result(root, 2, 0.1)}


def outcome(slot, validation, build_dir):
    run = SimpleNamespace(
        ok=True,
        status="Success",
        statuses=["Pending", "Running", "Validating", "Success"],
        reason=None,
        exit_code=0,
        wall_time_s=1.5,
        peak_rss_mb=120.0,
        rows=50,
        network_isolation="none",
        log="loaded model\n",
    )
    return SimpleNamespace(
        slot=slot,
        run=run,
        fidelity=None,
        validation=validation,
        report=build_dir / slot / "report.html",
    )


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, flags=re.S)


def test_slot_page_has_the_charts_the_issue_lists(results):
    page = render_slot("good_model", validation=results["good"])
    titles = [
        "Cumulative validation CORR and BMC",
        "CORR per era",
        "BMC per era (vs v52_lgbm_ender20)",
        "FNC per era (feature-neutral CORR)",
        "Max feature exposure per era",
        "Mean CORR per target",
    ]
    charts = svgs(page)
    assert len(charts) == len(titles)
    for chart, title in zip(charts, titles, strict=True):
        assert title in chart


def test_per_era_charts_label_the_x_axis_with_era_names(results):
    result = results["good"]
    page = render_slot("good_model", validation=result)
    first, last = result.per_era.index[0], result.per_era.index[-1]
    for chart in svgs(page)[:5]:  # every per-era chart (the 6th is per target)
        assert f">{first}<" in chart and f">{last}<" in chart
        assert ">era<" in chart


def test_slot_page_renders_offline(results):
    page = render_slot("good_model", validation=results["good"])
    assert "<script" not in page
    links = set(re.findall(r"https?://[^\s'\"<>]+", page))
    # only XML namespace identifiers, which browsers never fetch
    assert all(link.startswith("http://www.w3.org/") for link in links), links


def test_slot_page_summary_table_shows_the_computed_numbers(results):
    result = results["good"]
    page = render_slot("good_model", validation=result)
    s = result.summary
    row = re.search(r"CORR \(target\)</th>(.*?)</tr>", page).group(1)
    assert f"{s['corr']['mean']:.4f}" in row and f"{s['corr']['sharpe']:.4f}" in row
    row = re.search(r"BMC \(vs v52_lgbm_ender20\)</th>(.*?)</tr>", page).group(1)
    assert f"{s['bmc']['mean']:.4f}" in row
    row = re.search(r"FNC \(slot features\)</th>(.*?)</tr>", page).group(1)
    assert f"{s['fnc']['mean']:.4f}" in row
    for target in result.targets:
        assert f">{target}</th>" in page
    assert "Ensemble members" in page and ">a</td>" in page and ">b</td>" in page


def test_negative_eras_are_drawn_red_and_positive_ones_green(results):
    result = results["weak"]
    corr = result.per_era["corr"].astype(float)
    assert (corr < 0).any() and (corr > 0).any()
    chart = svgs(render_slot("weak_model", validation=result))[1]  # CORR per era
    assert "#cf222e" in chart and "#1a7f37" in chart


def test_slot_page_says_what_was_not_run():
    page = render_slot("slot")
    assert "no data.validation configured" in page
    assert "not checked" in page and "not run" in page


def test_index_compares_every_slot_and_links_to_each_page(results, tmp_path):
    build = tmp_path / "build"
    outcomes = [
        outcome("good_model", results["good"], build),
        outcome("weak", results["weak"], build),
    ]
    for o in outcomes:
        write_report(o.report, o.slot, o.run, o.fidelity, o.validation)
    index = write_index(build / "report.html", outcomes)
    page = index.read_text()
    assert "href='good_model/report.html'" in page and "href='weak/report.html'" in page
    for o in outcomes:
        row = re.search(rf">{o.slot}</a></td>(.*?)</tr>", page).group(1)
        s = o.validation.summary
        for value in (s["corr"]["mean"], s["corr"]["sharpe"], s["bmc"]["mean"], s["fnc"]["mean"]):
            assert f"{value:.4f}" in row
        assert f"{s['corr']['max_drawdown']:.4f}" in row
        assert "Success" in row and "not checked" in row
    (chart,) = svgs(page)
    assert "good_model" in chart and "weak" in chart  # one cumulative curve per slot


def test_index_without_validation_says_so(tmp_path):
    page = render_index([outcome("solo", None, tmp_path)], tmp_path)
    assert "no slot has validation results" in page
    assert "<svg" not in page
