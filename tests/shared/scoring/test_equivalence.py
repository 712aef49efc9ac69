"""Serving's scores equal the scikit-learn reference pipeline's `predict_proba` on 100,000 events.

End to end: JSON bodies through `score_batch` (batch validation, NumPy encoding, the booster) on one
side; the same events as a pandas DataFrame through the full reference pipeline on the other.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import orjson
import pandas as pd
import pytest

from model.training.artifact import REFERENCE_PIPELINE_NAME
from shared.behaviour import features as behaviour
from shared.behaviour import merchants
from shared.contract import schema as c
from shared.generation.generator import TransactionGenerator
from shared.scoring import encoding as features
from shared.scoring.batch import score_batch
from shared.scoring.events import EventBatch
from shared.scoring.model import load_model

pytestmark = pytest.mark.unit

MODEL_DIR = Path(__file__).resolve().parents[3] / "model"
N_EVENTS = 100_000
BATCH = 1000
TOLERANCE = 1e-6


def test_scores_equal_reference_pipeline_on_100k_events() -> None:
    """Every probability within 1e-6 of the pipeline's, and every flag the same away from the threshold."""
    records = TransactionGenerator(fraud_rate=0.10, seed=20_261_121).generate(N_EVENTS)
    bodies = [orjson.dumps(r) for r in records]
    model = load_model(MODEL_DIR)
    docs = []
    for start in range(0, N_EVENTS, BATCH):
        result = score_batch(EventBatch.of_bodies(bodies[start : start + BATCH]), model)
        assert result.rejected == []
        docs.extend(result.scored)
    assert [d["id"] for d in docs] == [r["id"] for r in records]

    frame = pd.DataFrame(records)[list(c.FEATURE_FIELDS)]
    frame["month"] = frame["month"].astype(object)  # the pipeline was fitted on months as Python ints
    # The scoring path sends no history yet: the pipeline sees the "history unknown" values encode fills in.
    for name, values in features.behaviour_columns(behaviour.no_history(frame)).items():
        frame[name] = values
    for name in merchants.FEATURES:  # no merchant store given: nothing known of any merchant
        frame[name] = 0.0
    expected = joblib.load(MODEL_DIR / REFERENCE_PIPELINE_NAME).predict_proba(frame)[:, 1]
    actual = np.array([d["fraud_probability"] for d in docs])
    np.testing.assert_allclose(actual, expected, rtol=0.0, atol=TOLERANCE)

    flagged = np.array([d["is_flagged"] for d in docs])
    clear = np.abs(expected - model.threshold) > TOLERANCE
    assert np.array_equal(flagged[clear], (expected >= model.threshold)[clear])
