"""What nmr supports, read from the code's own registries (no list is kept here by hand).

``supported()`` gathers, as plain data: the artifact formats and what each promises (every
reader's ``SUPPORT`` rows and suffixes, builder/artifacts/), the scikit-learn estimators
(``supported_estimators``), the LightGBM and XGBoost objectives the readers map (``OBJECTIVES``),
the CatBoost losses refused, the ONNX ops (``builder.compile.onnx.SUPPORTED_OPS``), the
preprocessing and postprocessing steps with their parameters (builder/steps.py) and the
runtimes (builder/runtimes/). ``nmr supported`` prints it (``--json`` as it is), and
scripts/make_readme.py renders the README's "What nmr supports" section from ``markdown()``.
"""

from __future__ import annotations

import re

# Slot kinds that are not artifact formats: what they accept and what nmr does with them.
OTHER_SLOTS = (
    {
        "slot": "source",
        "inputs": "a `source:` Python file (torch, custom code)",
        "evaluator": "packed by the runtime's own Python",
        "difference": "the code itself",
    },
    {
        "slot": "pickle",
        "inputs": "a finished pickle (`pickle:`)",
        "evaluator": "shipped as it is, after the import scan and the emulation",
        "difference": "-",
    },
)


def supported() -> dict:
    """Everything nmr compiles, runs and ships, as JSON-ready data."""
    from builder import artifacts, runtimes, steps
    from builder.artifacts import catboost, lightgbm, sklearn, sklearn_models, xgboost
    from builder.compile import onnx

    suffixes: dict[str, list[str]] = {}
    for suffix, fmt in artifacts.SUFFIXES.items():
        suffixes.setdefault(fmt, []).append(suffix)
    return {
        "formats": [
            {
                "format": fmt,
                "family": row.family,
                "inputs": row.inputs,
                "evaluator": row.evaluator,
                "tolerance": row.tolerance,
                "against": row.against,
                "suffixes": suffixes.get(fmt, []),
            }
            for fmt, row in artifacts.support()
        ],
        "other_slots": list(OTHER_SLOTS),
        "sklearn_estimators": {
            "trees": list(sklearn.SUPPORTED),
            **{
                family: list(names)
                for family, names in sklearn_models.supported_estimators().items()
            },
        },
        "lightgbm_objectives": sorted(lightgbm.OBJECTIVES),
        "xgboost_objectives": sorted(xgboost.OBJECTIVES),
        "catboost_refused_losses": list(catboost.CLASSIFIER_LOSSES + catboost.EXPONENT_LOSSES),
        "onnx_ops": [
            {
                "op": s.op,
                "domain": s.domain_label,
                "min_opset": s.min_opset,
                "max_opset": s.max_opset,
                "notes": s.notes,
            }
            for s in sorted(onnx.SUPPORTED_OPS, key=lambda s: (s.domain, s.op))
        ],
        "steps": [
            {
                "name": spec.name,
                "stage": "preprocessing" if spec.stage == "pre" else "postprocessing",
                "summary": spec.summary,
                "parameters": [
                    {
                        "name": p.name,
                        "type": p.type,
                        "required": p.required,
                        "default": p.default,
                        "minimum": p.minimum,
                        "maximum": p.maximum,
                        "choices": list(p.choices),
                    }
                    for p in spec.params
                ],
                "exactly_one_of": list(spec.exactly_one_of),
                "at_least_one_of": list(spec.at_least_one_of),
            }
            for spec in steps.STEPS
        ],
        "runtimes": {"tags": runtimes.known_tags(), "default": runtimes.default_tag()},
    }


def difference(tolerance: float, against: str = "") -> str:
    """The measured-difference cell: what the compiled model promises against the native one."""
    text = (
        "0.0 (bit for bit)"
        if tolerance == 0.0
        else f"at most {tolerance:g} relative".replace("e-0", "e-")
    )
    return f"{text} against {against}" if against else text


def text() -> str:
    """The plain-text listing ``nmr supported`` prints."""
    data = supported()
    lines = ["Artifact formats (format: family - inputs; evaluator; difference from native):"]
    for row in data["formats"]:
        lines.append(
            f"  {row['format']}: {row['family']} - {row['inputs']}; {row['evaluator']}; "
            f"{difference(row['tolerance'], row['against'])}"
        )
    for row in data["other_slots"]:
        lines.append(f"  {row['slot']}: {row['inputs']}; {row['evaluator']}")
    lines.append("scikit-learn estimators:")
    for family, names in data["sklearn_estimators"].items():
        lines.append(f"  {family}: {', '.join(names)}")
    lines.append(f"LightGBM objectives: {', '.join(data['lightgbm_objectives'])}")
    lines.append(f"XGBoost objectives: {', '.join(data['xgboost_objectives'])}")
    lines.append(
        "CatBoost: regression losses whose predict is the raw value; refused: "
        + ", ".join(data["catboost_refused_losses"])
    )
    lines.append(f"ONNX ops ({len(data['onnx_ops'])}; domain, opsets, notes):")
    for op in data["onnx_ops"]:
        notes = f" - {op['notes']}" if op["notes"] else ""
        lines.append(f"  {op['op']} ({op['domain']}, {op['min_opset']}-{op['max_opset']}){notes}")
    lines.append("Steps:")
    for step in data["steps"]:
        lines.append(f"  {step['stage']} {step['name']}: {step['summary']}")
        for param in _param_lines(step):
            lines.append(f"      {param}")
    lines.append(
        f"Runtimes: {', '.join(data['runtimes']['tags'])} (default {data['runtimes']['default']})"
    )
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """The README's "What nmr supports" section (formats, steps, runtimes at a glance)."""
    data = supported()
    lines = [
        "## What nmr supports",
        "",
        "| model | formats | evaluator | measured difference from the native predict |",
        "|---|---|---|---|",
    ]
    for row in data["formats"]:
        # a page the row names becomes a link (the README sits at the repository root)
        inputs = re.sub(r"\bdocs/[\w-]+\.md\b", lambda m: f"[{m[0]}]({m[0]})", row["inputs"])
        lines.append(
            f"| {row['family']} | {inputs} | {row['evaluator']} | "
            f"{difference(row['tolerance'], row['against'])} |"
        )
    for row in data["other_slots"]:
        lines.append(
            f"| {row['slot']} | {row['inputs']} | {row['evaluator']} | {row['difference']} |"
        )
    lines += [
        "",
        "| step | stage | parameters |",
        "|---|---|---|",
    ]
    for step in data["steps"]:
        params = "; ".join(_param_lines(step)) or "none"
        lines.append(f"| `{step['name']}` | {step['stage']} | {params} |")
    runtimes = data["runtimes"]
    lines += [
        "",
        "Preprocessing steps apply per slot or per ensemble member. Runtimes: `nmr runtimes` "
        f"({len(runtimes['tags'])} numerai_predict images; default `{runtimes['default']}`). "
        "Every estimator, objective, ONNX op and step parameter: `nmr supported` (`--json` for "
        "tools).",
    ]
    return "\n".join(lines) + "\n"


# The op table of docs/onnx.md sits between these markers; scripts/make_readme.py rewrites it.
TABLE_BEGIN = "<!-- onnx-op-table:begin (generated by scripts/make_readme.py) -->"
TABLE_END = "<!-- onnx-op-table:end -->"


def op_table_markdown() -> str:
    """The docs/onnx.md table of supported ops, from the op registry."""
    lines = ["| op | domain | opsets | notes |", "|---|---|---|---|"]
    for op in supported()["onnx_ops"]:
        lines.append(
            f"| {op['op']} | {op['domain']} | {op['min_opset']}–{op['max_opset']} | {op['notes']} |"
        )
    return "\n".join(lines) + "\n"


def with_op_table(text: str, source: str = "docs/onnx.md") -> str:
    """``text`` (a markdown page) with the block between TABLE_BEGIN and TABLE_END regenerated."""
    from builder.errors import NmrError

    head, sep, rest = text.partition(TABLE_BEGIN)
    _, sep2, tail = rest.partition(TABLE_END)
    if not sep or not sep2:
        raise NmrError(f"{source}: no generated op-table markers")
    return f"{head}{TABLE_BEGIN}\n{op_table_markdown()}{TABLE_END}{tail}"


def _param_lines(step: dict) -> list[str]:
    from builder.steps import BY_NAME

    spec = BY_NAME[step["name"]]
    lines = [p.describe() for p in spec.params]
    if spec.exactly_one_of:
        lines.append(f"exactly one of {', '.join(spec.exactly_one_of)}")
    if spec.at_least_one_of:
        lines.append(f"at least one of {', '.join(spec.at_least_one_of)}")
    return lines
