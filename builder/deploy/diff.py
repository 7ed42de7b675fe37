"""Attribute-level diff of two build manifests (builder.manifest), for `nmr plan`.

``diff(before, after)`` returns a list of entries ``{"op", "path", "before", "after"}`` with ``op``
``~`` (changed), ``+`` (added) or ``-`` (removed), in the order a reviewer reads a slot: runtime
and data, features, steps, models. Steps are aligned by name the way ``difflib`` aligns lines,
so inserting a step at the front shows one ``+`` rather than every later step as changed.
``describe(entry)`` renders one entry as the line Terraform would print
(``~ postprocessing[0].neutralize.proportion: 0.5 -> 0.7``); the text and markdown renderers of
the plan both use it.
"""

from __future__ import annotations

import difflib
import json

# Fields compared as plain values: (path shown, how to read it from a manifest).
_SCALARS = (
    ("runtime", lambda m: (m.get("runtime") or {}).get("tag")),
    ("data_version", lambda m: m.get("data_version")),
    ("ensemble", lambda m: m["config"].get("ensemble")),
    ("raw_output", lambda m: m["config"].get("raw_output")),
    ("legacy_signature", lambda m: m["config"].get("legacy_signature")),
)
FEATURE_NAMES_SHOWN = 5  # names listed inline per added/removed side; JSON carries all of them


def diff(before: dict, after: dict) -> list[dict]:
    """What changed from the manifest ``before`` to the manifest ``after``."""
    entries: list[dict] = []
    for path, read in _SCALARS:
        old, new = read(before), read(after)
        if old != new:
            entries.append(_entry("~", path, old, new))
    entries += _features(before["config"].get("features"), after["config"].get("features"))
    for stage in ("preprocessing", "postprocessing"):
        entries += _steps(stage, before["config"].get(stage, []), after["config"].get(stage, []))
    entries += _members(before, after)
    if before.get("kernels_sha256") != after.get("kernels_sha256"):
        entries.append(
            _entry(
                "~",
                "nmr kernels",
                _short(before.get("kernels_sha256")),
                _short(after.get("kernels_sha256")),
            )
        )
    if before.get("nmr") != after.get("nmr"):
        entries.append(_entry("~", "nmr", before.get("nmr"), after.get("nmr")))
    return entries


def describe(entry: dict) -> str:
    """One entry as a plan line (without indentation)."""
    op, path, old, new = entry["op"], entry["path"], entry.get("before"), entry.get("after")
    if path.startswith("artifact "):
        return f"{op} {path}: {_artifact_text(op, old, new)}"
    if path == "features":
        return f"{op} {path}: {_features_text(entry)}"
    if op == "+":
        return f"{op} {path}: {_value(new)}"
    if op == "-":
        return f"{op} {path}: {_value(old)}"
    return f"{op} {path}: {_value(old)} -> {_value(new)}"


# --- parts ----------------------------------------------------------------------------------


def _entry(op: str, path: str, before, after, **extra) -> dict:
    return {"op": op, "path": path, "before": before, "after": after, **extra}


def _features(old: dict | None, new: dict | None) -> list[dict]:
    old_names = list((old or {}).get("names") or [])
    new_names = list((new or {}).get("names") or [])
    if old_names == new_names:
        return []
    added = [name for name in new_names if name not in set(old_names)]
    removed = [name for name in old_names if name not in set(new_names)]
    return [
        _entry(
            "~",
            "features",
            len(old_names),
            len(new_names),
            added=added,
            removed=removed,
            reordered=not added and not removed,
        )
    ]


def _align(old_keys: list, new_keys: list):
    """Yield ("=", i, j) for matched items, ("-", i, None) and ("+", None, j) for the rest,
    aligned like difflib aligns lines (so one insertion does not shift every later item)."""
    matcher = difflib.SequenceMatcher(a=old_keys, b=new_keys, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                yield "=", i, j
            continue
        for i in range(i1, i2):
            yield "-", i, None
        for j in range(j1, j2):
            yield "+", None, j


def _steps(stage: str, old: list[dict], new: list[dict]) -> list[dict]:
    entries: list[dict] = []
    for op, i, j in _align([s["name"] for s in old], [s["name"] for s in new]):
        if op == "=":
            entries += _step_fields(f"{stage}[{j}].{new[j]['name']}", old[i], new[j])
        elif op == "-":
            entries.append(_entry("-", f"{stage}[{i}]", _step_value(old[i]), None))
        else:
            entries.append(_entry("+", f"{stage}[{j}]", None, _step_value(new[j])))
    return entries


def _step_fields(prefix: str, old: dict, new: dict) -> list[dict]:
    entries = []
    old_params, new_params = old.get("params") or {}, new.get("params") or {}
    for key in sorted(set(old_params) | set(new_params)):
        if key not in new_params:
            entries.append(_entry("-", f"{prefix}.{key}", old_params[key], None))
        elif key not in old_params:
            entries.append(_entry("+", f"{prefix}.{key}", None, new_params[key]))
        elif old_params[key] != new_params[key]:
            entries.append(_entry("~", f"{prefix}.{key}", old_params[key], new_params[key]))
    old_columns, new_columns = old.get("feature_columns"), new.get("feature_columns")
    if old_columns != new_columns:
        entries.append(
            _entry(
                "~",
                f"{prefix}.feature_columns",
                len(old_columns or []),
                len(new_columns or []),
            )
        )
    return entries


def _members(before: dict, after: dict) -> list[dict]:
    """Model files and ensemble weights, aligned by the artifact's path."""
    old_files = before.get("artifacts") or []
    new_files = after.get("artifacts") or []
    old_members = before["config"].get("members") or []
    new_members = after["config"].get("members") or []
    entries: list[dict] = []
    for op, i, j in _align([a["path"] for a in old_files], [a["path"] for a in new_files]):
        if op == "-":
            entries.append(_entry("-", f"artifact {old_files[i]['path']}", old_files[i], None))
            continue
        if op == "+":
            entries.append(_entry("+", f"artifact {new_files[j]['path']}", None, new_files[j]))
            continue
        old, new = old_files[i], new_files[j]
        if old.get("sha256") != new.get("sha256"):
            entries.append(_entry("~", f"artifact {new['path']}", old, new))
        old_weight, new_weight = _weight(old_members, i), _weight(new_members, j)
        if old_weight != new_weight:
            entries.append(_entry("~", f"ensemble[{j}].weight", old_weight, new_weight))
    return entries


# --- text -----------------------------------------------------------------------------------


def _artifact_text(op: str, old: dict | None, new: dict | None) -> str:
    if op == "+":
        return f"{_artifact_summary(new)} (sha {_short(new.get('sha256'), 6)})"
    if op == "-":
        return f"{_artifact_summary(old)} (sha {_short(old.get('sha256'), 6)})"
    a, b = old.get("summary") or {}, new.get("summary") or {}
    parts = []
    if a.get("format") != b.get("format"):
        parts.append(f"format {a.get('format')} -> {b.get('format')}")
    if a.get("objective") != b.get("objective"):
        parts.append(f"objective {a.get('objective')} -> {b.get('objective')}")
    if a.get("trees") != b.get("trees"):
        parts.append(f"{_count(a.get('trees'))} -> {_count(b.get('trees'))} trees")
    if a.get("features") != b.get("features"):
        parts.append(f"{_count(a.get('features'))} -> {_count(b.get('features'))} features")
    if a.get("ops") != b.get("ops"):
        parts.append(f"ops {_ops(a.get('ops'))} -> {_ops(b.get('ops'))}")
    if (a.get("inputs"), a.get("outputs")) != (b.get("inputs"), b.get("outputs")):
        parts.append(f"shapes {_shapes(a)} -> {_shapes(b)}")
    what = ", ".join(parts) or "contents changed"
    return f"{what} (sha {_short(old.get('sha256'), 6)} -> {_short(new.get('sha256'), 6)})"


def _artifact_summary(artifact: dict) -> str:
    summary = artifact.get("summary") or {}
    parts = [summary.get("format") or artifact.get("format") or "model"]
    if summary.get("objective"):
        parts.append(str(summary["objective"]))
    if summary.get("trees") is not None:
        parts.append(f"{_count(summary['trees'])} trees")
    if summary.get("ops"):
        parts.append(f"ops {_ops(summary['ops'])}")
    if summary.get("inputs") or summary.get("outputs"):
        parts.append(_shapes(summary))
    if summary.get("features") is not None:
        parts.append(f"{_count(summary['features'])} features")
    return ", ".join(parts)


def _features_text(entry: dict) -> str:
    text = f"{_count(entry['before'])} -> {_count(entry['after'])}"
    if entry.get("reordered"):
        return text + " (same names, new order)"
    sides = []
    for sign, key in (("+", "added"), ("-", "removed")):
        names = entry.get(key) or []
        if names:
            shown = ", ".join(names[:FEATURE_NAMES_SHOWN])
            more = f", ... {len(names) - FEATURE_NAMES_SHOWN} more" if len(names) > 5 else ""
            sides.append(f"{sign}{len(names)}: {shown}{more}")
    return f"{text} ({'; '.join(sides)})" if sides else text


def _step_value(step: dict) -> dict:
    value = {"name": step["name"], "params": step.get("params") or {}}
    if step.get("feature_columns"):
        value["feature_columns"] = len(step["feature_columns"])
    return value


def _value(value) -> str:
    if isinstance(value, dict) and "name" in value and "params" in value:
        params = ", ".join(f"{k}: {_value(v)}" for k, v in sorted(value["params"].items()))
        text = f"{value['name']} {{{params}}}"
        if value.get("feature_columns"):
            text += f" on {value['feature_columns']} columns"
        return text
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _weight(members: list[dict], index: int):
    return members[index].get("weight") if index < len(members) else None


def _ops(ops: dict | None) -> str:
    return "{" + ", ".join(f"{op}: {n}" for op, n in sorted((ops or {}).items())) + "}"


def _shapes(summary: dict) -> str:
    def side(shapes):
        return ", ".join(
            f"{name}[{'x'.join(str(d) for d in dims)}]" for name, dims in (shapes or {}).items()
        )

    return f"{side(summary.get('inputs'))} -> {side(summary.get('outputs'))}"


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _short(sha: str | None, chars: int = 12) -> str | None:
    return sha[:chars] if sha else None
