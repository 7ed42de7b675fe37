"""Config problems: each one a place in numerai.yaml plus one sentence about what is wrong."""

from __future__ import annotations

from dataclasses import dataclass

from builder.errors import NmrError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with numerai.yaml, at ``file:line:col`` (1-based)."""

    file: str
    line: int
    col: int
    path: str  # dotted path in the file's own keys, e.g. "models.my_model.features"; "" for root
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": self.path,
            "message": self.message,
        }


class ConfigError(NmrError):
    """numerai.yaml is not valid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col, p.path))
        self.project = None  # the partly resolved Project, when the file could be resolved
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(parts: tuple) -> str:
    """("models", "m", "ensemble", 0, "features") -> "models.m.ensemble[0].features"."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
