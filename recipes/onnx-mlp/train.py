"""Train this recipe's model: a scikit-learn MLP, exported to ONNX with skl2onnx.

    python train.py          # writes data/ and artifacts/mlp_medium.onnx next to this file

The exported graph holds the whole pipeline (StandardScaler, then the MLPRegressor), so
numerai.yaml needs no preprocessing. nmr compiles the graph into numpy code inside the pickle:
the container needs neither scikit-learn nor onnxruntime. Any exporter works the same way
(`torch.onnx.export`, tf2onnx): the graph must take one float input of shape (rows, features).

Same seed, same file: BLAS is limited to one thread before numpy loads, because threaded matrix
products sum in a varying order and would change the trained weights in the last bits.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from skl2onnx.common.data_types import FloatTensorType  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from builder.datasets import SMALL, synthesize  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 3
FEATURE_SET = "medium"


def main() -> None:
    data = synthesize(HERE / "data", seed=SEED, sizes=SMALL)
    features_json = json.loads(data["paths"]["features_json"].read_text(encoding="utf-8"))
    features = features_json["feature_sets"][FEATURE_SET]
    train = pd.read_parquet(data["paths"]["train"], columns=[*features, "target"])
    # float32: the ONNX input type below, so training and serving see the same values
    X = train[features].to_numpy(dtype="float32")

    model = make_pipeline(
        StandardScaler(),
        MLPRegressor(
            hidden_layer_sizes=(32, 16),
            alpha=1e-3,
            learning_rate_init=1e-3,
            max_iter=400,  # stops earlier: when the loss improves < tol for 10 epochs
            random_state=SEED,
        ),
    )
    model.fit(X, train["target"].to_numpy())

    onnx_model = to_onnx(
        model,
        initial_types=[("features", FloatTensorType([None, len(features)]))],
        target_opset=17,
    )
    out = HERE / "artifacts" / "mlp_medium.onnx"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(onnx_model.SerializeToString())
    print(f"trained MLP on {len(train):,} rows x {len(features)} features -> {out.name}")


if __name__ == "__main__":
    main()
