"""numerai.schema.json: find it, and turn its validation errors into located, readable problems.

The schema is the single source of truth for the shape of numerai.yaml. It lives at
``<repo>/schema/numerai.schema.json`` in a checkout and is shipped inside the wheel as
``builder/schema/numerai.schema.json`` (pyproject force-include).
"""

from __future__ import annotations

import difflib
import functools
import json
from importlib import resources
from pathlib import Path

from builder.config.problems import Problem, format_path
from builder.config.yamlmarks import Parsed

SCHEMA_NAME = "numerai.schema.json"


def schema_path() -> Path:
    """Where numerai.schema.json is: inside the installed package, else in the checkout."""
    try:
        packaged = resources.files("builder") / "schema" / SCHEMA_NAME
        if packaged.is_file():
            return Path(str(packaged))
    except (ModuleNotFoundError, NotADirectoryError):
        pass
    checkout = Path(__file__).resolve().parents[2] / "schema" / SCHEMA_NAME
    if checkout.is_file():
        return checkout
    raise FileNotFoundError(f"{SCHEMA_NAME} is neither in the builder package nor at {checkout}")


@functools.cache
def load_schema() -> dict:
    return json.loads(schema_path().read_text(encoding="utf-8"))


def schema_problems(parsed: Parsed) -> list[Problem]:
    """Every schema violation in ``parsed.data``, each at its line and column."""
    validator = _validator()
    problems: dict[Problem, None] = {}  # jsonschema yields one `required` error per missing key
    for error in validator.iter_errors(parsed.data):
        problems.update(dict.fromkeys(_to_problems(error, parsed)))
    return list(problems)


def suggest(word: str, choices, *, listing: bool = True) -> str:
    """' (did you mean 'x'?)' when something close exists, else the list of known choices."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if listing and choices:
        return f" (known: {', '.join(choices)})"
    return ""


@functools.cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema())


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "nothing",
}


def _type_of(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _show(value) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_problems(error, parsed: Parsed) -> list[Problem]:
    path = tuple(error.absolute_path)
    schema = error.schema
    keyword = error.validator
    instance = error.instance

    def at(p: tuple, message: str, *, key: bool = False) -> Problem:
        mark = parsed.mark(p, key=key)
        return Problem(mark.file, mark.line, mark.col, format_path(p), message)

    # propertyNames descends into each key without extending the path: the key is the instance.
    if "propertyNames" in error.relative_schema_path:
        key_path = (*path, instance)
        if keyword == "enum":
            kind = _step_kind(path)
            message = f"unknown {kind} {instance!r}{suggest(instance, schema['enum'])}"
            other = {"preprocessing step": "postprocessing", "postprocessing step": "preprocessing"}
            if kind in other and instance in _step_names(other[kind]):
                message += f"; {instance} is a {other[kind]} step"
            return [at(key_path, message, key=True)]
        return [
            at(
                key_path,
                f"{instance!r} {schema.get('errorMessage', 'is not an allowed name')}",
                key=True,
            )
        ]

    if keyword == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extras = [k for k in instance if k not in allowed]
        if not allowed:
            return [
                at((*path, k), "takes no parameters; remove this key", key=True) for k in extras
            ]
        return [at((*path, k), f"unknown key{suggest(k, allowed)}", key=True) for k in extras]
    if keyword == "required":
        missing = [
            k for k in error.validator_value if isinstance(instance, dict) and k not in instance
        ]
        return [at(path, f"missing required key {k!r}", key=True) for k in missing]
    if keyword == "oneOf" and _is_exclusive_choice(error.validator_value):
        if not isinstance(instance, dict):
            return []  # the type error on the same value says it all
        keys = [branch["required"][0] for branch in error.validator_value]
        present = [k for k in keys if k in instance]
        found = f"found both {' and '.join(present)}" if present else "found neither"
        return [at(path, f"needs exactly one of {' / '.join(keys)} ({found})", key=True)]
    if keyword == "type":
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in expected)
        found = _type_of(instance)
        if instance is not None and not isinstance(instance, dict | list):
            found += f" {_show(instance)}"
        return [at(path, f"expected {wanted}, got {found}")]
    if keyword == "const":
        return [at(path, f"must be {_show(error.validator_value)}, got {_show(instance)}")]
    if keyword == "enum":
        options = ", ".join(str(v) for v in error.validator_value)
        hint = suggest(instance, error.validator_value, listing=False)
        return [at(path, f"{_show(instance)} is not one of {options}{hint}")]
    if keyword == "pattern":
        message = schema.get("errorMessage", f"does not match {error.validator_value}")
        return [at(path, f"{_show(instance)} {message}")]
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:  # name the whole range, not the bound crossed
            return [at(path, f"must be between {low} and {high}, got {_show(instance)}")]
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
        return [at(path, f"must be {op[keyword]} {error.validator_value}, got {_show(instance)}")]
    if keyword in ("minItems", "minLength"):
        return [at(path, "must not be empty")]
    if keyword == "minProperties":
        if path == ("models",):
            return [at(path, "lists no models; add at least one model slot", key=True)]
        if _step_kind(path) != "key":
            return [at(path, "a step is a one-key mapping, e.g. `- clip: {min: 0, max: 4}`")]
        if path and path[-1] == "clip":
            return [at(path, "needs min, max or both", key=True)]
        return [at(path, "must not be empty", key=True)]
    if keyword == "maxProperties":
        names = ", ".join(instance)
        return [
            at(
                path,
                f"a step is a one-key mapping but this one has {len(instance)} keys ({names}); "
                "put each step in its own list item",
            )
        ]
    if keyword == "uniqueItems":
        # a list, not a set: the items may be unhashable (lists of lists)
        seen, repeated = [], []
        for item in instance:
            if item in seen and item not in repeated:
                repeated.append(item)
            seen.append(item)
        return [at(path, f"lists {', '.join(map(repr, repeated))} more than once")]
    return [at(path, error.message)]


def _step_names(section: str) -> list[str]:
    """Step names the schema allows in "preprocessing" or "postprocessing"."""
    definition = load_schema()["$defs"][f"{section}Step"]
    return list(definition["propertyNames"]["enum"])


def _is_exclusive_choice(branches) -> bool:
    return all(
        isinstance(b, dict) and list(b) == ["required"] and len(b["required"]) == 1
        for b in branches
    )


def _step_kind(list_item_path: tuple) -> str:
    """ "preprocessing step" for models.x.preprocessing[i], and so on; "key" otherwise."""
    if len(list_item_path) >= 2 and isinstance(list_item_path[-1], int):
        section = list_item_path[-2]
        if section in ("preprocessing", "postprocessing"):
            return f"{section} step"
    return "key"
