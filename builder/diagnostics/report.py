"""The HTML reports of ``nmr test``: ``build/<slot>/report.html`` and ``build/report.html``.

Each page is one self-contained file that renders offline: the charts are matplotlib figures
saved as inline SVG (text kept as ``<text>`` so era labels stay searchable), no scripts, no
network fetches. matplotlib because it is the plotting library Numerai's own notebooks use, it
draws without a browser or a JavaScript bundle, and its SVG output needs nothing at view time.

Public API:
  render_slot(slot, run=None, fidelity=None, validation=None) -> str
  write_report(path, slot, run=None, fidelity=None, validation=None) -> Path
  render_index(outcomes, base_dir) -> str      (outcomes: objects with slot, run, fidelity,
  write_index(path, outcomes) -> Path           validation and report attributes)
"""

from __future__ import annotations

import html
import io
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

GREEN, RED, BLUE, ORANGE, GREY = "#1a7f37", "#cf222e", "#0969da", "#bc4c00", "#6e7781"
MAX_ERA_TICKS = 14

CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px;color:#1f2328}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:right}"
    "th{background:#f6f8fa}td.l,th.l{text-align:left}.ok{color:#1a7f37}.bad{color:#cf222e}"
    "pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:12px}"
    "figure{margin:0.5em 0 1.5em}figure svg{max-width:100%;height:auto}"
    ".note{color:#6e7781}"
)


def render_slot(slot: str, run=None, fidelity=None, validation=None) -> str:
    """The report page of one slot; any section may be None (then it says so)."""
    parts = [
        _head(f"nmr test - {slot}"),
        f"<h1>nmr test: {html.escape(slot)}</h1>",
        "<p><a href='../report.html'>all slots</a></p>",
    ]
    parts += _validation_section(validation)
    parts += _fidelity_section(fidelity)
    parts += _run_section(run)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, slot: str, run=None, fidelity=None, validation=None) -> Path:
    """Write ``render_slot`` to ``path`` (e.g. build/<slot>/report.html)."""
    return _write(Path(path), render_slot(slot, run, fidelity, validation))


def render_index(outcomes, base_dir: Path) -> str:
    """One page comparing every slot side by side, linking to each slot's page."""
    outcomes = list(outcomes)
    parts = [_head("nmr test - all slots"), "<h1>nmr test: all slots</h1>"]
    header = (
        "<tr><th class='l'>slot</th><th>CORR mean</th><th>CORR Sharpe</th><th>BMC mean</th>"
        "<th>FNC mean</th><th>max drawdown</th><th>max exposure</th><th>eras</th>"
        "<th class='l'>fidelity</th><th class='l'>run</th></tr>"
    )
    rows = []
    curves = {}
    for outcome in outcomes:
        v = outcome.validation
        s = v.summary if v is not None else {}
        link = html.escape(outcome.slot)
        # the slot's report.html (its last diagnostics) when this run wrote it, else this run's own
        page = getattr(outcome, "diagnostics_report", None) or getattr(outcome, "report", None)
        if page:
            href = os.path.relpath(page, base_dir)
            link = f"<a href='{html.escape(href)}'>{link}</a>"
        rows.append(
            f"<tr><td class='l'>{link}</td>"
            f"<td>{_fmt(_get(s, 'corr', 'mean'))}</td><td>{_fmt(_get(s, 'corr', 'sharpe'))}</td>"
            f"<td>{_fmt(_get(s, 'bmc', 'mean'))}</td><td>{_fmt(_get(s, 'fnc', 'mean'))}</td>"
            f"<td>{_fmt(_get(s, 'corr', 'max_drawdown'))}</td>"
            f"<td>{_fmt(s.get('max_feature_exposure'))}</td><td>{s.get('eras', '-')}</td>"
            f"<td class='l'>{_fidelity_verdict(outcome.fidelity)}</td>"
            f"<td class='l'>{_run_verdict(outcome.run)}</td></tr>"
        )
        if v is not None and "corr" in v.per_era.columns and len(v.per_era):
            curves[outcome.slot] = v.per_era["corr"].astype(float)
    parts += ["<table>", header, *rows, "</table>"]
    if curves:
        parts.append(_figure(_cumulative_chart(curves, "Cumulative validation CORR by slot")))
    else:
        parts.append("<p class='note'>no slot has validation results</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_index(path: Path, outcomes) -> Path:
    """Write ``render_index`` to ``path`` (e.g. build/report.html)."""
    path = Path(path)
    return _write(path, render_index(outcomes, path.parent))


# --- sections --------------------------------------------------------------------------------


def _validation_section(validation) -> list[str]:
    if validation is None:
        return ["<h2>Validation</h2><p>no data.validation configured</p>"]
    s = validation.summary
    per_era = validation.per_era
    out = [f"<h2>Validation ({s.get('eras', 0)} eras)</h2>"]
    bmc_name = validation.bmc_benchmark or "-"
    out += [f"<p class='note'>{html.escape(n)}</p>" for n in validation.notes]
    out.append(
        "<table><tr><th class='l'>metric</th><th>mean</th><th>std</th><th>Sharpe</th>"
        "<th>max drawdown</th><th>eras</th></tr>"
    )
    out.append(_stats_row("CORR (target)", s.get("corr")))
    out.append(_stats_row(f"BMC (vs {bmc_name})", s.get("bmc")))
    out.append(_stats_row("FNC (slot features)", s.get("fnc")))
    out.append("</table>")
    out.append(
        "<table>"
        f"<tr><th class='l'>max feature exposure</th><td>{_fmt(s.get('max_feature_exposure'))}</td></tr>"
        f"<tr><th class='l'>mean feature exposure</th><td>{_fmt(s.get('mean_feature_exposure'))}</td></tr>"
        "</table>"
    )
    if len(per_era) == 0:
        return [*out, "<p>no era was scored</p>"]
    eras = [str(e) for e in per_era.index]
    series = {"CORR": per_era["corr"].astype(float)}
    if per_era["bmc"].notna().any():
        series[f"BMC vs {bmc_name}"] = per_era["bmc"].astype(float)
    out.append(_figure(_cumulative_chart(series, "Cumulative validation CORR and BMC")))
    out.append(_figure(_era_bars(eras, per_era["corr"], "CORR per era")))
    if per_era["bmc"].notna().any():
        out.append(_figure(_era_bars(eras, per_era["bmc"], f"BMC per era (vs {bmc_name})")))
    out.append(_figure(_era_bars(eras, per_era["fnc"], "FNC per era (feature-neutral CORR)")))
    out.append(
        _figure(_era_bars(eras, per_era["exposure"], "Max feature exposure per era", colour=ORANGE))
    )
    targets = s.get("targets") or {}
    if targets:
        out.append("<h3>CORR per target</h3>")
        out.append(_figure(_target_bars(targets)))
        out.append(
            "<table><tr><th class='l'>target</th><th>mean</th><th>std</th><th>Sharpe</th>"
            "<th>max drawdown</th><th>eras</th></tr>"
        )
        out += [_stats_row(name, stats) for name, stats in targets.items()]
        out.append("</table>")
    if s.get("benchmark_corr"):
        out.append("<h3>Correlation with benchmark models</h3><table>")
        out += [
            f"<tr><th class='l'>{html.escape(c)}</th><td>{_fmt(v)}</td></tr>"
            for c, v in s["benchmark_corr"].items()
        ]
        out.append("</table>")
    if s.get("members"):
        out.append(
            "<h3>Ensemble members</h3><p class='note'>contribution: numerai-tools' "
            "correlation_contribution of the member with the blend as the meta model</p>"
            "<table><tr><th class='l'>member</th><th>weight</th><th>CORR mean</th>"
            "<th>CORR Sharpe</th><th>contribution mean</th><th>contribution Sharpe</th></tr>"
        )
        for m in s["members"]:
            out.append(
                f"<tr><td class='l'>{html.escape(m['name'])}</td><td>{m['weight']:g}</td>"
                f"<td>{_fmt(m['corr']['mean'])}</td><td>{_fmt(m['corr']['sharpe'])}</td>"
                f"<td>{_fmt(m['contribution']['mean'])}</td>"
                f"<td>{_fmt(m['contribution']['sharpe'])}</td></tr>"
            )
        out.append("</table>")
    out.append(_per_era_table(per_era))
    if validation.predictions_path:
        out.append(
            f"<p class='note'>predictions: {html.escape(str(validation.predictions_path))}</p>"
        )
    return out


def _run_section(run) -> list[str]:
    if run is None:
        return ["<h2>Run</h2><p>not run</p>"]
    css = "ok" if run.ok else "bad"
    rows = [
        ("status", " &rarr; ".join(html.escape(s) for s in run.statuses)),
        ("reason", html.escape(run.reason or "")),
        ("exit code", run.exit_code),
        ("wall time", f"{run.wall_time_s:.2f} s"),
        ("peak RSS", f"{run.peak_rss_mb:.0f} MB" if run.peak_rss_mb else "-"),
        ("rows", run.rows if run.rows is not None else "-"),
        ("network", html.escape(str(run.network_isolation))),
    ]
    out = [f"<h2>Run: <span class='{css}'>{html.escape(run.status)}</span></h2>", "<table>"]
    out += [f"<tr><th class='l'>{k}</th><td class='l'>{v}</td></tr>" for k, v in rows]
    out.append("</table>")
    # notes carry the synthetic-data labels of the test stage (builder/testing.py)
    notes = getattr(run, "notes", ())  # a run result without notes (a test double) has none
    out += [f"<p class='note'>note: {html.escape(note)}</p>" for note in notes]
    out.append(
        f"<details><summary>predict.py log</summary><pre>{html.escape(run.log)}</pre></details>"
    )
    return out


def _fidelity_section(fidelity) -> list[str]:
    if fidelity is None:
        return ["<h2>Fidelity</h2><p>not checked</p>"]
    if fidelity.skipped:
        return [f"<h2>Fidelity</h2><p>skipped: {html.escape(fidelity.skipped)}</p>"]
    out = ["<h2>Fidelity (pickle vs native library, before postprocessing)</h2><table>"]
    out.append(
        "<tr><th class='l'>artifact</th><th>format</th><th>rows</th><th>max abs diff</th>"
        "<th>tolerance</th><th></th></tr>"
    )
    for m in fidelity.members:
        verdict = "skipped: " + m.skipped if m.skipped else ("ok" if m.ok else "FAIL")
        css = "ok" if m.ok else "bad"
        diff = "-" if m.max_abs_diff is None else f"{m.max_abs_diff:.3g}"
        out.append(
            f"<tr><td class='l'>{html.escape(Path(m.artifact).name)}</td><td>{m.format}</td>"
            f"<td>{m.rows}</td><td>{diff}</td><td>{m.tolerance:g}</td>"
            f"<td class='{css}'>{html.escape(verdict)}</td></tr>"
        )
    out.append("</table>")
    return out


def _per_era_table(per_era: pd.DataFrame) -> str:
    columns = ["corr", "bmc", "fnc", "exposure", "exposure_feature"]
    columns += [c for c in per_era.columns if c.startswith("corr_with_")]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for era, row in per_era.iterrows():
        cells = "".join(
            f"<td>{html.escape(str(row[c])) if c == 'exposure_feature' else _fmt(row[c])}</td>"
            for c in columns
            if c in per_era.columns
        )
        body.append(f"<tr><th class='l'>{html.escape(str(era))}</th>{cells}</tr>")
    return (
        "<details><summary>per-era table</summary><table>"
        f"<tr><th class='l'>era</th>{head}</tr>{''.join(body)}</table></details>"
    )


# --- charts (matplotlib, inline SVG) ----------------------------------------------------------


def _cumulative_chart(series: dict[str, pd.Series], title: str) -> str:
    fig, ax = _figure_axes()
    colours = [BLUE, ORANGE, GREEN, RED, GREY, "#8250df", "#1b7c83", "#953800"]
    eras: list[str] = []
    for i, (label, values) in enumerate(series.items()):
        values = values.astype(float)
        labels = [str(e) for e in values.index]
        if len(labels) > len(eras):
            eras = labels
        ax.plot(
            range(len(values)),
            np.nancumsum(values.to_numpy()),
            label=label,
            color=colours[i % len(colours)],
            linewidth=1.8,
        )
    ax.axhline(0.0, color=GREY, linewidth=0.8)
    ax.set_title(title)
    ax.set_ylabel("cumulative")
    _era_axis(ax, eras)
    ax.legend(loc="best", fontsize=8)
    return _svg(fig)


def _era_bars(eras: list[str], values, title: str, colour: str | None = None) -> str:
    values = pd.to_numeric(pd.Series(list(values)), errors="coerce").to_numpy(dtype=float)
    fig, ax = _figure_axes()
    colours = colour or [GREEN if v >= 0 else RED for v in np.nan_to_num(values)]
    ax.bar(range(len(values)), np.nan_to_num(values), color=colours, width=0.8)
    ax.axhline(0.0, color=GREY, linewidth=0.8)
    ax.set_title(title)
    _era_axis(ax, eras)
    return _svg(fig)


def _target_bars(targets: dict[str, dict]) -> str:
    names = list(targets)
    means = np.array([targets[n]["mean"] for n in names], dtype=float)
    fig, ax = _figure_axes(height=0.35 * len(names) + 1.2)
    ax.barh(
        range(len(names)),
        np.nan_to_num(means),
        color=[GREEN if m >= 0 else RED for m in np.nan_to_num(means)],
    )
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0.0, color=GREY, linewidth=0.8)
    ax.set_title("Mean CORR per target (eras with the target resolved)")
    return _svg(fig)


def _era_axis(ax, eras: list[str]) -> None:
    """Label the x axis with era names (at most MAX_ERA_TICKS of them, evenly spread)."""
    if not eras:
        return
    step = max(1, math.ceil(len(eras) / MAX_ERA_TICKS))
    ticks = list(range(0, len(eras), step))
    ax.set_xticks(ticks, [eras[i] for i in ticks], rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("era")
    ax.set_xlim(-0.6, len(eras) - 0.4)


def _figure_axes(height: float = 3.2):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(10, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(axis="y", color="#eaeef2", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _svg(fig) -> str:
    import matplotlib

    buffer = io.StringIO()
    # text stays <text> (era labels searchable, smaller files); fixed hash salt and no date
    # so the same results give the same bytes
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "nmr"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # the RDF metadata block (creator URL, licence namespaces) is not needed to draw
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)


def _figure(svg: str) -> str:
    return f"<figure>{svg}</figure>"


# --- helpers ---------------------------------------------------------------------------------


def _head(title: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
    )


def _stats_row(label: str, stats) -> str:
    stats = stats or {}
    cells = "".join(
        f"<td>{_fmt(stats.get(k))}</td>" for k in ("mean", "std", "sharpe", "max_drawdown")
    )
    return (
        f"<tr><th class='l'>{html.escape(label)}</th>{cells}<td>{stats.get('eras', '-')}</td></tr>"
    )


def _fidelity_verdict(fidelity) -> str:
    if fidelity is None:
        return "not checked"
    if fidelity.skipped:
        return f"skipped ({html.escape(fidelity.skipped)})"
    bad = [m for m in fidelity.members if not m.ok]
    if bad:
        return "<span class='bad'>FAIL</span>"
    diffs = [m.max_abs_diff for m in fidelity.members if m.max_abs_diff is not None]
    worst = f" (max abs diff {max(diffs):.3g})" if diffs else ""
    return f"<span class='ok'>ok</span>{worst}"


def _run_verdict(run) -> str:
    if run is None:
        return "not run"
    css = "ok" if run.ok else "bad"
    return f"<span class='{css}'>{html.escape(run.status)}</span>"


def _get(summary: dict, key: str, stat: str):
    return (summary.get(key) or {}).get(stat)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _fmt(value) -> str:
    if value is None:
        return "-"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    return f"{value:.4f}" if math.isfinite(value) else "-"
