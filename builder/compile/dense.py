"""Dense scikit-learn IR (LinearModel, MLP, Pipeline, Voting) -> builder.kernels.dense evaluators.

Nothing is transformed here: the kernel repeats scikit-learn's operations on the arrays the
reader took from the fitted estimator. Inner models of a Pipeline or VotingRegressor are
compiled by ``builder.compile.compile_model``, so a Pipeline may end in any model nmr
compiles (trees, LightGBM/XGBoost wrappers, linear, MLP).
"""

from __future__ import annotations

import numpy as np

from builder import ir
from builder.kernels import dense as kd


def compile_dense(model):
    """The kernel evaluator of a LinearModel, MLP, Pipeline or Voting IR."""
    from builder.compile import compile_model

    if isinstance(model, ir.LinearModel):
        return kd.LinearEvaluator(
            estimator=model.estimator,
            feature_names=model.feature_names,
            coef=np.ascontiguousarray(model.coef),
            intercept=np.asarray(model.intercept),
            link=model.link,
        )
    if isinstance(model, ir.MLP):
        return kd.MLPEvaluator(
            estimator=model.estimator,
            feature_names=model.feature_names,
            coefs=[np.ascontiguousarray(w) for w in model.coefs],
            intercepts=[np.ascontiguousarray(b) for b in model.intercepts],
            activation=model.activation,
            out_activation=model.out_activation,
        )
    if isinstance(model, ir.Pipeline):
        steps = [kd.StepEvaluator(step.kind, step.name, step.params) for step in model.steps]
        return kd.PipelineEvaluator(
            feature_names=model.feature_names,
            steps=steps,
            final=compile_model(model.final),
            accepts_nan=ir.accepts_nan(model),
        )
    if isinstance(model, ir.Voting):
        return kd.VotingEvaluator(
            feature_names=model.feature_names,
            members=[compile_model(member) for member in model.members],
            weights=model.weights,
            accepts_nan=ir.accepts_nan(model),
        )
    raise TypeError(f"not a dense scikit-learn model: {type(model).__name__}")
