"""The process's one model: the artifact in MODEL_DIR, loaded on first use and shared by both scoring functions.

Its own module so that `ScoreTransactions` and `ScoreRequest` share one instance without one
blueprint importing the other. What runs once it has loaded (freezing the garbage collector's view
of everything alive then) is `function_app.py`'s choice, registered with `after_load`.
"""

from __future__ import annotations

from shared.scoring.model import FraudModel, LazyModel, load_model
from shared.settings import get_settings


def load_bundled_model() -> FraudModel:
    """The model in MODEL_DIR, hash-checked, with FRAUD_THRESHOLD applied if set."""
    settings = get_settings()
    return load_model(settings.model_dir, settings.threshold_override)


bundled_model = LazyModel(load_bundled_model)
"""Loaded on first use, once per process (a failure is remembered: `ModelIntegrityError` every call)."""
