"""Read YAML into plain Python data while remembering where every key and value sits.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two equal keys in a
mapping (yaml/constructor.py ``construct_mapping`` just assigns). nmr composes the node tree
itself so it can (a) point every error at a line and column and (b) refuse duplicate keys,
naming both places.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from builder.config.model import Mark
from builder.config.problems import Problem, format_path


@dataclass
class Parsed:
    """The document as plain data, plus marks keyed by path tuple (("models", "m", "features"))."""

    file: str = "numerai.yaml"
    data: object = None
    value_marks: dict[tuple, Mark] = field(default_factory=dict)
    key_marks: dict[tuple, Mark] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    empty: bool = False
    # places (path, line, col) of values that could not be read; their schema errors are noise
    broken: set[tuple[str, int, int]] = field(default_factory=set)

    def mark(self, path: tuple, *, key: bool = False) -> Mark:
        """The best known place for ``path``: its key (when asked and known), else its value,
        else the nearest ancestor's."""
        path = tuple(path)
        while True:
            if key and path in self.key_marks:
                return self.key_marks[path]
            if path in self.value_marks:
                return self.value_marks[path]
            if path in self.key_marks:
                return self.key_marks[path]
            if not path:
                return Mark(self.file, 1, 1)
            path = path[:-1]


def parse_yaml(text: str, file: str) -> Parsed:
    """Parse ``text``; syntax errors and duplicate keys become problems instead of exceptions."""
    parsed = Parsed(file=file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = error.problem or "invalid YAML"
        if error.context:
            detail = f"{detail} ({error.context})"
        parsed.problems.append(Problem(file, line, col, "", f"YAML syntax error: {detail}"))
        return parsed
    except yaml.YAMLError as error:
        parsed.problems.append(Problem(file, 1, 1, "", f"YAML syntax error: {error}"))
        return parsed
    except RecursionError:  # PyYAML composes recursively
        parsed.problems.append(Problem(file, 1, 1, "", "YAML error: nested too deeply"))
        return parsed
    if node is None:
        parsed.empty = True
        return parsed
    try:
        parsed.data = _walk(node, (), parsed, loader, file, frozenset())
    except RecursionError:
        parsed.problems.append(Problem(file, 1, 1, "", "YAML error: nested too deeply"))
        parsed.data = None
    finally:
        loader.dispose()
    return parsed


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _mark(node: yaml.Node, file: str) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(node: yaml.Node, path: tuple, parsed: Parsed, loader, file: str, above: frozenset):
    mark = _mark(node, file)
    parsed.value_marks[path] = mark
    if id(node) in above:  # an alias to one of its own ancestors (`a: &x [*x]`)
        parsed.problems.append(
            Problem(file, mark.line, mark.col, format_path(path), "an alias cannot contain itself")
        )
        parsed.broken.add((format_path(path), mark.line, mark.col))
        return None
    above = above | {id(node)}
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
        # `!!python/object {}` and friends: nmr reads data, never objects (safe_load refuses too)
        parsed.problems.append(
            Problem(
                file,
                mark.line,
                mark.col,
                format_path(path),
                f"YAML error: unsupported tag {node.tag!r}",
            )
        )
        parsed.broken.add((format_path(path), mark.line, mark.col))
        return None
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        first_seen: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            key_mark = _mark(key_node, file)
            if not isinstance(key_node, yaml.ScalarNode):
                parsed.problems.append(
                    Problem(
                        file,
                        key_mark.line,
                        key_mark.col,
                        format_path(path),
                        "keys must be plain names, not lists or mappings",
                    )
                )
                continue
            # Keys are names in numerai.yaml (slots, steps, fields); keep the text as written so
            # a slot called 2024 or a key spelled `yes` is not turned into an int or a bool.
            key = key_node.value
            child = (*path, key)
            if key_node.tag == "tag:yaml.org,2002:merge":
                parsed.problems.append(
                    Problem(
                        file,
                        key_mark.line,
                        key_mark.col,
                        format_path(child),
                        "not supported yet: YAML merge keys (<<); write the keys out",
                    )
                )
                continue
            if key in first_seen:
                first = first_seen[key]
                parsed.problems.append(
                    Problem(
                        file,
                        key_mark.line,
                        key_mark.col,
                        format_path(child),
                        f"duplicate key {key!r} (first defined at line {first.line}, "
                        f"column {first.col}); YAML would silently keep only the last one",
                    )
                )
                continue
            first_seen[key] = key_mark
            parsed.key_marks[child] = key_mark
            result[key] = _walk(value_node, child, parsed, loader, file, above)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _walk(item, (*path, i), parsed, loader, file, above)
            for i, item in enumerate(node.value)
        ]
    try:
        return loader.construct_object(node, deep=True)
    except Exception as error:  # unknown tags (`!foo`, `!!python/...`), `!!int abc`, ...
        detail = getattr(error, "problem", None) or str(error)
        parsed.problems.append(
            Problem(file, mark.line, mark.col, format_path(path), f"YAML error: {detail}")
        )
        parsed.broken.add((format_path(path), mark.line, mark.col))
        return None
