"""New projects: `nmr init` (a commented numerai.yaml + .gitignore) and `nmr init --example`
(a complete demo: synthetic data, LightGBM models trained on it, a numerai.yaml that validates).
"""

from __future__ import annotations

from pathlib import Path

from builder.config.loader import CONFIG_NAME
from builder.errors import NmrError

GITIGNORE_LINES = [
    "# nmr build outputs and caches",
    "build/",
    ".nmr/",
    "__pycache__/",
    ".venv/",
]

INIT_TEMPLATE = """\
# numerai.yaml: what nmr builds and deploys (reference: numerai.yaml.example, docs/config.md).
# Check it with `nmr validate`.
version: 1

# numerai_predict image every model targets unless it says otherwise (`nmr runtimes` lists them).
runtime: {runtime}

data:
  dir: data                 # features.json and the parquet files (`nmr data synth data` makes a synthetic set)
  version: v5.2             # Numerai data version; also the data version of uploads
  # train: train.parquet    # default: data/train.parquet when it exists (needed for fitted preprocessing)
  # live: live.parquet      # default: data/live.parquet when it exists (else nmr test synthesizes live data)

models:
  my_model:                 # your Numerai model slot name (lowercase letters, digits, underscores)
    artifact: artifacts/model.txt   # the trained model file: LightGBM .txt, XGBoost .json/.ubj, sklearn .pkl, .onnx
    features: medium        # a feature set from features.json, or a list of column names
    # preprocessing:        # optional, applied in order to the feature columns
    #   - fill_missing: {{value: 2}}
    # postprocessing:       # omitted: [rank_per_era: {{}}]; [] ships the raw model output
    #   - neutralize: {{features: small, proportion: 0.5}}
    #   - rank_per_era: {{}}
    deploy:
      create: false         # create the slot on Numerai if it does not exist
      trigger: false        # run the uploaded pickle once after assigning it
"""

EXAMPLE_TEMPLATE = """\
# Demo project made by `nmr init --example`: synthetic Numerai-shaped data in data/ and two
# LightGBM models trained on it in artifacts/. Try `nmr validate`.
version: 1
runtime: {runtime}

data:
  dir: data
  version: v5.2

models:
  example_model:
    artifact: artifacts/lgbm_medium.txt
    features: medium
    # no postprocessing given: predictions are ranked per era (rank_per_era)

  example_ensemble:
    ensemble:               # members are ranked per era, then blended by weight
      - {{artifact: artifacts/lgbm_medium.txt, weight: 0.6}}
      - {{artifact: artifacts/lgbm_small.txt, features: small, weight: 0.4}}
    features: medium        # members that name no features use these
    postprocessing:
      - neutralize: {{features: small, proportion: 0.5}}
      - rank_per_era: {{}}
"""


def init_project(directory: Path, *, force: bool = False) -> list[Path]:
    """Write a commented numerai.yaml and a .gitignore into ``directory``; returns what changed."""
    from builder import runtimes

    directory = Path(directory)
    config = _claim(directory, force)
    config.write_text(INIT_TEMPLATE.format(runtime=runtimes.default_tag()), encoding="utf-8")
    written = [config]
    if _update_gitignore(directory):
        written.append(directory / ".gitignore")
    return written


def example_project(directory: Path, *, seed: int = 0, force: bool = False) -> dict:
    """Create a complete demo project in ``directory`` (small synthetic data, two LightGBM
    models, numerai.yaml). Needs the ``lightgbm`` extra."""
    from builder import runtimes
    from builder.datasets import SMALL, synthesize

    try:
        import lightgbm  # noqa: F401
    except ImportError:
        raise NmrError(
            "nmr init --example trains a LightGBM model and needs the lightgbm extra: "
            "pip install 'nmr[lightgbm]'"
        ) from None
    directory = Path(directory)
    config = _claim(directory, force)
    data = synthesize(directory / "data", seed=seed, sizes=SMALL)
    artifacts = directory / "artifacts"
    artifacts.mkdir(exist_ok=True)
    feature_sets = _read_sets(data["paths"]["features_json"])
    models = {
        "lgbm_medium.txt": feature_sets["medium"],
        "lgbm_small.txt": feature_sets["small"],
    }
    for name, features in models.items():
        _train_lightgbm(data["paths"]["train"], features, artifacts / name, seed)
    config.write_text(EXAMPLE_TEMPLATE.format(runtime=runtimes.default_tag()), encoding="utf-8")
    _update_gitignore(directory)
    return {
        "config": config,
        "data": data,
        "artifacts": [artifacts / name for name in models],
    }


def _claim(directory: Path, force: bool) -> Path:
    if directory.exists() and not directory.is_dir():
        raise NmrError(f"{directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / CONFIG_NAME
    if config.exists() and not force:
        raise NmrError(f"{config} already exists; pass --force to overwrite it")
    return config


def _update_gitignore(directory: Path) -> bool:
    """Add nmr's lines to .gitignore, keeping what is there; True when the file changed."""
    path = directory / ".gitignore"
    existing = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    missing = [line for line in GITIGNORE_LINES if line not in existing]
    if not any(not line.startswith("#") for line in missing):
        return False
    prefix = "\n" if existing and existing[-1].strip() else ""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(prefix + "\n".join(missing) + "\n")
    return True


def _read_sets(features_json: Path) -> dict[str, list[str]]:
    import json

    return json.loads(features_json.read_text(encoding="utf-8"))["feature_sets"]


def _train_lightgbm(train_parquet: Path, features: list[str], out: Path, seed: int) -> None:
    import lightgbm as lgb
    import pandas as pd

    train = pd.read_parquet(train_parquet, columns=[*features, "target"])
    params = {
        "objective": "regression",
        "learning_rate": 0.05,
        "num_leaves": 16,
        "min_data_in_leaf": 20,
        "colsample_bytree": 0.8,
        "seed": seed,
        # one thread and deterministic=True: the same seed gives the same model file
        "num_threads": 1,
        "deterministic": True,
        "verbose": -1,
    }
    dataset = lgb.Dataset(train[features], label=train["target"], free_raw_data=True)
    booster = lgb.train(params, dataset, num_boost_round=60)
    booster.save_model(str(out))
