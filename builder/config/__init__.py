"""numerai.yaml: discovery, parsing with line/column marks, schema validation, resolution.

Public API:
  load(path: Path | None = None) -> Project      path None: -f is the caller's, else NMR_CONFIG,
                                                 else walk up from the working directory
  find_config(start: Path | None = None) -> Path
  ConfigError (an NmrError): .problems, a list of Problem(file, line, col, path, message)
  schema_path() -> Path, load_schema() -> dict   the JSON Schema (single source of truth)
  PREPROCESSING_STEPS, POSTPROCESSING_STEPS      step names the schema allows
  normalized(model, root) -> dict                stable JSON form of a ModelConfig (for the lock)
"""

from __future__ import annotations

from builder.config.loader import (
    CONFIG_NAME,
    DATA_FILES,
    DEFAULT_DATA_VERSION,
    DEFAULT_POSTPROCESSING,
    find_config,
    load,
    load_text,
)
from builder.config.model import (
    DataConfig,
    DeployConfig,
    Mark,
    MemberConfig,
    ModelConfig,
    Project,
    Step,
)
from builder.config.normalize import normalized
from builder.config.problems import ConfigError, Problem
from builder.config.schema import load_schema, schema_path


def _step_names(section: str) -> tuple[str, ...]:
    return tuple(load_schema()["$defs"][f"{section}Step"]["propertyNames"]["enum"])


PREPROCESSING_STEPS = _step_names("preprocessing")
POSTPROCESSING_STEPS = _step_names("postprocessing")

__all__ = [
    "CONFIG_NAME",
    "DATA_FILES",
    "DEFAULT_DATA_VERSION",
    "DEFAULT_POSTPROCESSING",
    "POSTPROCESSING_STEPS",
    "PREPROCESSING_STEPS",
    "ConfigError",
    "DataConfig",
    "DeployConfig",
    "Mark",
    "MemberConfig",
    "ModelConfig",
    "Problem",
    "Project",
    "Step",
    "find_config",
    "load",
    "load_schema",
    "load_text",
    "normalized",
    "schema_path",
]
