"""The bundled model against the issue's targets: beats every baseline; holds up on unseen customers, history or not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.training.data import generated_data
from model.training.frames import with_behaviour
from model.training.report import MODEL_CARD_NAME, PLOT_NAMES, PLOTS_DIR, model_card
from shared.contract import schema as contract
from shared.scoring import encoding as features
from shared.scoring.model import METADATA_NAME, load_model

pytestmark = pytest.mark.unit

MODEL_DIR = Path(__file__).resolve().parents[2] / "model"
FRESH_SEED = 314_159
"""Not the training seed (42): none of these events, nor any split of them, was ever trained or tuned on."""
FRESH_EVENTS = 100_000
"""About 90,000 legitimate events allow 900 false alarms at 1% FPR, so the cut is not a matter of a few rows."""
MAX_FPR = 0.01


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    """The bundled model's metadata as committed."""
    loaded: dict[str, Any] = json.loads((MODEL_DIR / METADATA_NAME).read_text(encoding="utf-8"))
    return loaded


def test_baselines_recorded_on_the_same_test_split(metadata: dict[str, Any]) -> None:
    """The metadata holds both baselines, measured on the same test rows as our model."""
    assert set(metadata["baselines"]) == {"static_xgboost", "gradient_boosting", "logistic_regression"}
    ours = metadata["metrics"]["test"]
    for baseline in metadata["baselines"].values():
        test = baseline["metrics"]["test"]
        assert (test["n"], test["fraud_rate"]) == (ours["n"], ours["fraud_rate"])
    gbc = metadata["baselines"]["gradient_boosting"]
    assert gbc["estimator"] == "sklearn.ensemble.GradientBoostingClassifier"
    assert gbc["params"]["n_estimators"] == 100


@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc"])
def test_ours_beats_both_baselines(metadata: dict[str, Any], metric: str) -> None:
    """Our model's test ROC-AUC and PR-AUC are strictly above every baseline's."""
    ours = metadata["metrics"]["test"][metric]
    for name, baseline in metadata["baselines"].items():
        assert ours > baseline["metrics"]["test"][metric], name


def recall_at(proba: np.ndarray, label: np.ndarray, max_fpr: float) -> float:
    legit = np.sort(proba[~label])
    allowed = int(np.floor(max_fpr * legit.size))
    # Flag scores strictly above the (allowed + 1)-th highest legitimate score: at most `allowed`
    # legitimate events lie above it (fewer if scores tie), so the false-positive rate is <= max_fpr.
    cut = legit[legit.size - allowed - 1]
    assert float((legit > cut).mean()) <= max_fpr
    return float((proba[label] > cut).mean())


def test_fresh_customers_with_and_without_history() -> None:
    """On a population it never saw: recall at 1% FPR >= 70% from replayed history, and history helps.

    70%, not the 80% of the generator without merchants: a quarter of fraud payments now come from
    compromised merchants, whose first days are invisible to any model until labels arrive (the
    merchant risk is delayed by 7 days, as a bank's labels are); the model card's per-typology table
    has the figures.

    The same payments scored with history unknown (as the scoring path does until it holds state)
    still catch more than half of the fraud at 1% FPR.
    """
    columns = with_behaviour(generated_data(FRESH_EVENTS, seed=FRESH_SEED).columns)
    model = load_model(MODEL_DIR)
    label = columns["is_fraud"].astype(bool)
    with_history = model.predict_proba(features.encode(columns, model.spec)).astype(np.float64)
    static = {name: columns[name] for name in contract.FEATURE_FIELDS}
    unknown = model.predict_proba(features.encode(static, model.spec)).astype(np.float64)
    known = recall_at(with_history, label, MAX_FPR)
    blind = recall_at(unknown, label, MAX_FPR)
    assert known >= 0.70, f"recall {known:.4f} with history"
    assert blind >= 0.50, f"recall {blind:.4f} with history unknown"
    assert known > blind


def test_model_card_and_plots_match_the_artifact(metadata: dict[str, Any]) -> None:
    """The committed model card describes the committed artifact, and every plot it links is there."""
    card = (MODEL_DIR / MODEL_CARD_NAME).read_text(encoding="utf-8")
    assert f"`{metadata['version']}`" in card
    assert metadata["artifact"]["sha256"] in card
    for name in PLOT_NAMES:
        assert f"({PLOTS_DIR}/{name})" in card
        assert (MODEL_DIR / PLOTS_DIR / name).is_file()


def test_model_card_is_what_the_metadata_generates(metadata: dict[str, Any]) -> None:
    """The committed model card is byte for byte what `report.model_card` makes of the committed metadata."""
    card = (MODEL_DIR / MODEL_CARD_NAME).read_text(encoding="utf-8")
    assert card == model_card(metadata)
