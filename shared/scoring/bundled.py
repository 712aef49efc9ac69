"""The process's one model: the artifact in MODEL_DIR, loaded on first use and shared by both scoring functions.

Its own module so that `ScoreTransactions` and `ScoreRequest` share one instance without one
blueprint importing the other. What runs once it has loaded (freezing the garbage collector's view
of everything alive then) is `function_app.py`'s choice, registered with `after_load`.
"""

from __future__ import annotations

from shared.scoring.model import FraudModel, LazyModel, ModelIntegrityError, load_model
from shared.settings import get_settings


def load_bundled_model() -> FraudModel:
    """The model in MODEL_DIR, hash-checked, with FRAUD_THRESHOLD applied if set.

    Its merchant features were trained with one label delay; serving with another would feed it
    values it never saw, so MERCHANT_RISK_DELAY_DAYS must name the model's delay or the model is
    unusable (`model_unavailable`, one clear log line naming both).
    """
    settings = get_settings()
    model = load_model(settings.model_dir, settings.threshold_override)
    if model.merchant_delay_days != settings.merchant_risk_delay_days:
        raise ModelIntegrityError(
            f"the model was trained with a {model.merchant_delay_days}-day label delay but "
            f"MERCHANT_RISK_DELAY_DAYS is {settings.merchant_risk_delay_days}: set it to "
            f"{model.merchant_delay_days} or retrain with --merchant-delay-days {settings.merchant_risk_delay_days}"
        )
    return model


bundled_model = LazyModel(load_bundled_model)
"""Loaded on first use, once per process (a failure is remembered: `ModelIntegrityError` every call)."""
