"""Train this recipe's model: a scikit-learn Pipeline saved with joblib, compiled by nmr.

    python train.py          # writes data/ and artifacts/pipeline_medium.joblib next to this file

The Pipeline holds its own preprocessing (SimpleImputer for the missing values, StandardScaler,
PCA), then a Ridge regression. nmr reads the fitted pipeline and compiles it into numpy code
inside the pickle: the numerai_predict container needs no scikit-learn, and the version there
does not matter. The pipeline is fitted on a DataFrame, so it records its column names.

Same seed, same file: BLAS is limited to one thread before numpy loads, because threaded matrix
products sum in a varying order and would change the fitted arrays in the last bits.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import joblib  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from builder.datasets import SMALL, synthesize  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 5
FEATURE_SET = "medium"


def main() -> None:
    # 2% of the feature values missing, as in Numerai's older eras
    data = synthesize(HERE / "data", seed=SEED, sizes=SMALL, nan_fraction=0.02)
    features_json = json.loads(data["paths"]["features_json"].read_text(encoding="utf-8"))
    features = features_json["feature_sets"][FEATURE_SET]
    train = pd.read_parquet(data["paths"]["train"], columns=[*features, "target"])

    model = make_pipeline(
        SimpleImputer(strategy="median"),  # NaN -> the column's training median
        StandardScaler(),
        PCA(n_components=12, svd_solver="full"),
        Ridge(alpha=10.0),
    )
    model.fit(train[features].astype("float64"), train["target"].to_numpy())

    out = HERE / "artifacts" / "pipeline_medium.joblib"
    out.parent.mkdir(exist_ok=True)
    joblib.dump(model, out)
    print(f"trained Pipeline on {len(train):,} rows x {len(features)} features -> {out.name}")


if __name__ == "__main__":
    main()
