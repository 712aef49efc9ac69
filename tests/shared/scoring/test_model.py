"""Tests for shared/scoring/model.py against the bundled artifact: integrity checks, scores and SHAP reasons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
import xgboost

from model.training.artifact import REFERENCE_PIPELINE_NAME
from model.training.frames import raw_frame
from shared.contract import schema as contract
from shared.generation.generator import TransactionGenerator
from shared.scoring import encoding as features
from shared.scoring.documents import reason_lists
from shared.scoring.model import (
    ARTIFACT_NAME,
    FIELDS,
    METADATA_NAME,
    PERSONAL_FIELDS,
    FraudModel,
    ModelIntegrityError,
    load_model,
    sha256_of,
)

pytestmark = pytest.mark.unit

MODEL_DIR = Path(__file__).resolve().parents[3] / "model"
FRESH_SEED = 20_260_101  # differs from the training seed, so these events were never trained on


@pytest.fixture(scope="module")
def model() -> FraudModel:
    """The bundled model, loaded once through the verifying loader."""
    return load_model(MODEL_DIR)


@pytest.fixture(scope="module")
def fresh_columns() -> dict[str, np.ndarray]:
    """10,000 events the model has not seen."""
    return TransactionGenerator(fraud_rate=0.10, seed=FRESH_SEED).columns(10_000)


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A scratch copy of the bundled artifact and metadata to tamper with."""
    for name in (ARTIFACT_NAME, METADATA_NAME):
        shutil.copy(MODEL_DIR / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything reaches joblib.load."""

    def refuse(*_args: object, **_kwargs: object) -> object:
        pytest.fail("joblib.load was called on an unverified artifact")

    monkeypatch.setattr(joblib, "load", refuse)


def test_bundled_artifact_hash_matches_metadata() -> None:
    """The committed artifact is the one its committed metadata vouches for."""
    metadata = json.loads((MODEL_DIR / METADATA_NAME).read_text(encoding="utf-8"))
    assert sha256_of(MODEL_DIR / ARTIFACT_NAME) == metadata["artifact"]["sha256"]
    assert (MODEL_DIR / ARTIFACT_NAME).stat().st_size == metadata["artifact"]["bytes"]
    assert sha256_of(MODEL_DIR / REFERENCE_PIPELINE_NAME) == metadata["reference_pipeline"]["sha256"]
    assert metadata["feature_names"] == features.feature_names()


def test_load_bundled_model(model: FraudModel) -> None:
    """The loader accepts the bundled artifact and takes threshold and version from the metadata."""
    assert 0.0 < model.threshold < 1.0
    assert model.version.startswith("xgb-")
    assert model.version == model.metadata["version"]


def test_threshold_override(model_copy: Path) -> None:
    """An explicit threshold replaces the one in the metadata."""
    assert load_model(model_copy, threshold_override=0.5).threshold == 0.5


@pytest.mark.usefixtures("no_unpickling")
def test_flipped_byte_is_refused(model_copy: Path) -> None:
    """Changing one byte of the artifact fails the hash check before unpickling."""
    path = model_copy / ARTIFACT_NAME
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_model(model_copy)


@pytest.mark.usefixtures("no_unpickling")
def test_truncated_artifact_is_refused(model_copy: Path) -> None:
    """A truncated artifact fails the hash check before unpickling."""
    path = model_copy / ARTIFACT_NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_model(model_copy)


@pytest.mark.usefixtures("no_unpickling")
def test_wrong_metadata_hash_is_refused(model_copy: Path) -> None:
    """Metadata naming a different hash makes the intact artifact unloadable."""
    meta_path = model_copy / METADATA_NAME
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    metadata["artifact"]["sha256"] = "0" * 64
    meta_path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_model(model_copy)


@pytest.mark.usefixtures("no_unpickling")
def test_missing_metadata_is_refused(model_copy: Path) -> None:
    """Without metadata there is no hash to check, so nothing is unpickled."""
    (model_copy / METADATA_NAME).unlink()
    with pytest.raises(ModelIntegrityError, match="missing or unreadable"):
        load_model(model_copy)


def test_predict_proba_matches_reference_pipeline(model: FraudModel, fresh_columns: dict[str, np.ndarray]) -> None:
    """Serving's NumPy encoding plus booster reproduce the scikit-learn reference on unseen events."""
    pipeline = joblib.load(MODEL_DIR / REFERENCE_PIPELINE_NAME)
    expected = pipeline.predict_proba(raw_frame(fresh_columns))[:, 1]
    actual = model.predict_proba(features.encode(fresh_columns, model.spec))
    assert actual.shape == (10_000,)
    np.testing.assert_allclose(actual, expected, rtol=0.0, atol=1e-6)


def test_predict_proba_of_no_rows(model: FraudModel) -> None:
    """An empty batch scores to an empty array and has no reasons."""
    empty = np.zeros((0, features.N_FEATURES), dtype=np.float32)
    assert model.predict_proba(empty).shape == (0,)
    assert model.contributions(empty).shape == (0, len(FIELDS))


def test_shap_contributions_sum_to_margin(model: FraudModel, fresh_columns: dict[str, np.ndarray]) -> None:
    """Per-feature SHAP values plus the bias add up to the raw log-odds, so reasons explain the score."""
    x = features.encode(fresh_columns, model.spec)[:500]
    contribs = model.booster.predict(xgboost.DMatrix(x), pred_contribs=True)
    margin = model.booster.predict(xgboost.DMatrix(x), output_margin=True)
    assert contribs.shape == (500, features.N_FEATURES + 1)
    np.testing.assert_allclose(contribs.sum(axis=1), margin, rtol=0.0, atol=1e-4)


def test_reasons_for_flagged_rows(model: FraudModel, fresh_columns: dict[str, np.ndarray]) -> None:
    """Reasons are at most three contract fields with positive contributions, largest first."""
    x = features.encode(fresh_columns, model.spec)
    flagged = x[model.predict_proba(x) >= model.threshold][:200]
    assert flagged.shape[0] > 0
    reasons = reason_lists(model.contributions(flagged))
    assert len(reasons) == flagged.shape[0]
    assert any(reasons)
    for row in reasons:
        assert len(row) <= 3
        assert all(r["field"] in (*contract.FEATURE_FIELDS, *features.CONTEXT_FEATURES) for r in row)
        assert not {r["field"] for r in row} & set(PERSONAL_FIELDS)
        assert all(r["contribution"] > 0.0 for r in row)
        contributions = [r["contribution"] for r in row]
        assert contributions == sorted(contributions, reverse=True)
        assert len({r["field"] for r in row}) == len(row)


def test_reasons_fold_one_hot_columns(model: FraudModel, fresh_columns: dict[str, np.ndarray]) -> None:
    """A field's contribution is the sum of its SHAP columns, e.g. every `month=` column (all fields checked)."""
    x = features.encode(fresh_columns, model.spec)[:50]
    contribs = model.booster.predict(xgboost.DMatrix(x), pred_contribs=True)[:, :-1]
    fields = np.array(features.source_fields())
    for row, folded in zip(contribs, model.contributions(x), strict=True):
        for j, field in enumerate(FIELDS):
            assert folded[j] == pytest.approx(float(row[fields == field].sum()), abs=1e-5)
