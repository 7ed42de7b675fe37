"""The HTML report ``build/<slot>/report.html``: one self-contained file, openable offline.

Plots are inline SVG drawn here (no plotting library, no scripts, no network fetches).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, PAD = 760, 240, 40


def write_report(path: Path, slot: str, run=None, fidelity=None, validation=None) -> Path:
    """Write the report for one slot; any section may be None (then it says so)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>nmr test - {html.escape(slot)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:820px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#f4f4f4}.ok{color:#1a7f37}.bad{color:#cf222e}pre{background:#f6f8fa;padding:1em;"
        "overflow:auto;font-size:12px}</style></head><body>",
        f"<h1>nmr test: {html.escape(slot)}</h1>",
    ]
    parts += _run_section(run)
    parts += _fidelity_section(fidelity)
    parts += _validation_section(validation)
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def line_chart_svg(values, title: str) -> str:
    """An SVG polyline of ``values`` (e.g. cumulative corr), with a zero line."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return "<p>no data</p>"
    low, high = _bounds(values)
    xs = _x_positions(len(values))
    points = " ".join(f"{x:.1f},{_y(v, low, high):.1f}" for x, v in zip(xs, values, strict=True))
    return _svg(
        title,
        low,
        high,
        f"<polyline fill='none' stroke='#0969da' stroke-width='2' points='{points}'/>",
    )


def bar_chart_svg(values, labels, title: str) -> str:
    """An SVG bar per value (e.g. per-era corr), green above zero, red below."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return "<p>no data</p>"
    low, high = _bounds(values)
    step = (WIDTH - 2 * PAD) / len(values)
    zero = _y(0.0, low, high)
    bars = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        if not math.isfinite(value):
            continue
        y = _y(value, low, high)
        colour = "#1a7f37" if value >= 0 else "#cf222e"
        bars.append(
            f"<rect x='{PAD + i * step:.1f}' y='{min(y, zero):.1f}' width='{max(step * 0.8, 0.5):.1f}' "
            f"height='{abs(zero - y):.1f}' fill='{colour}'><title>era {html.escape(str(label))}: "
            f"{value:.4f}</title></rect>"
        )
    return _svg(title, low, high, "".join(bars))


# --- sections --------------------------------------------------------------------------------


def _run_section(run) -> list[str]:
    if run is None:
        return ["<h2>Run</h2><p>not run</p>"]
    css = "ok" if run.ok else "bad"
    rows = [
        ("status", " &rarr; ".join(run.statuses)),
        ("reason", html.escape(run.reason or "")),
        ("exit code", run.exit_code),
        ("wall time", f"{run.wall_time_s:.2f} s"),
        ("peak RSS", f"{run.peak_rss_mb:.0f} MB" if run.peak_rss_mb else "-"),
        ("rows", run.rows if run.rows is not None else "-"),
        ("network", run.network_isolation),
    ]
    out = [f"<h2>Run: <span class='{css}'>{run.status}</span></h2>", "<table>"]
    out += [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows]
    out.append("</table>")
    # notes carry the synthetic-data labels of the test stage (builder/testing.py)
    out += [f"<p class='note'>note: {html.escape(note)}</p>" for note in run.notes]
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
        "<tr><th>artifact</th><th>format</th><th>rows</th><th>max abs diff</th><th>tolerance</th><th></th></tr>"
    )
    for m in fidelity.members:
        verdict = "skipped: " + m.skipped if m.skipped else ("ok" if m.ok else "FAIL")
        css = "ok" if m.ok else "bad"
        diff = "-" if m.max_abs_diff is None else f"{m.max_abs_diff:.3g}"
        out.append(
            f"<tr><td>{html.escape(Path(m.artifact).name)}</td><td>{m.format}</td><td>{m.rows}</td>"
            f"<td>{diff}</td><td>{m.tolerance:g}</td><td class='{css}'>{html.escape(verdict)}</td></tr>"
        )
    out.append("</table>")
    return out


def _validation_section(validation) -> list[str]:
    if validation is None:
        return ["<h2>Validation</h2><p>no data.validation configured</p>"]
    s = validation.summary
    rows = [
        ("eras", s["eras"]),
        ("mean corr", _fmt(s["corr_mean"])),
        ("std", _fmt(s["corr_std"])),
        ("Sharpe", _fmt(s["sharpe"])),
        ("max drawdown", _fmt(s["max_drawdown"])),
        ("max feature exposure", _fmt(s["max_feature_exposure"])),
    ]
    rows += [(f"corr with {c}", _fmt(v)) for c, v in s["benchmark_corr"].items()]
    out = ["<h2>Validation (numerai_corr vs target)</h2><table>"]
    out += [f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows]
    out.append("</table>")
    corr = validation.per_era["corr"].astype(float).to_numpy()
    out.append(line_chart_svg(np.nancumsum(corr), "cumulative corr"))
    out.append(bar_chart_svg(corr, list(validation.per_era.index), "corr per era"))
    return out


# --- helpers ---------------------------------------------------------------------------------


def _svg(title: str, low: float, high: float, body: str) -> str:
    zero = _y(0.0, low, high)
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
        f"role='img' aria-label='{html.escape(title)}'>"
        f"<text x='{PAD}' y='16' font-size='13'>{html.escape(title)}</text>"
        f"<line x1='{PAD}' x2='{WIDTH - PAD}' y1='{zero:.1f}' y2='{zero:.1f}' stroke='#999'/>"
        f"<text x='2' y='{PAD:.0f}' font-size='10'>{high:.3g}</text>"
        f"<text x='2' y='{HEIGHT - PAD + 10:.0f}' font-size='10'>{low:.3g}</text>"
        f"{body}</svg>"
    )


def _bounds(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    high = max(0.0, float(finite.max())) if finite.size else 1.0
    if high == low:
        high = low + 1.0
    return low, high


def _x_positions(n: int) -> list[float]:
    if n == 1:
        return [WIDTH / 2]
    return [PAD + i * (WIDTH - 2 * PAD) / (n - 1) for i in range(n)]


def _y(value: float, low: float, high: float) -> float:
    return PAD + (high - value) / (high - low) * (HEIGHT - 2 * PAD)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4f}"
