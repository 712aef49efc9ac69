"""SHAP tables reproduce XGBoost's exact `pred_contribs`, folded per contract field, for any tabulable model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xgboost

from shared.generation.generator import TransactionGenerator
from shared.scoring import encoding as features
from shared.scoring.explain import MAX_SPLITS_PER_TREE, ShapTables, sigmoid
from shared.scoring.model import FIELDS, FraudModel, checked_predictor, load_model, shap_tables, xgboost_contributions

pytestmark = pytest.mark.unit

MODEL_DIR = Path(__file__).resolve().parents[3] / "model"
TOLERANCE = 1e-5  # XGBoost sums in float32; the tables in float64


@pytest.fixture(scope="module")
def bundled() -> FraudModel:
    return load_model(MODEL_DIR)


@pytest.fixture(scope="module")
def fresh_x(bundled: FraudModel) -> np.ndarray:
    """20,000 events the bundled model never saw, encoded."""
    return features.encode(TransactionGenerator(seed=31_337).columns(20_000), bundled.spec)


def small_booster(x: np.ndarray, depth: int, rounds: int = 30) -> xgboost.Booster:
    label = TransactionGenerator(seed=5).columns(x.shape[0])["is_fraud"]
    params = {"max_depth": depth, "eta": 0.3, "objective": "binary:logistic", "nthread": 1, "seed": 1}
    return xgboost.train(params, xgboost.DMatrix(x, label=label, nthread=1), num_boost_round=rounds)


def tables_of(booster: xgboost.Booster) -> ShapTables | None:
    return shap_tables(booster)


def test_bundled_model_is_tabulated(bundled: FraudModel) -> None:
    """The bundled model's trees are shallow enough for tables, so serving never calls pred_contribs."""
    assert bundled.shap is not None


def test_bundled_tables_equal_pred_contribs(bundled: FraudModel, fresh_x: np.ndarray) -> None:
    """Per field and row, the tables' values are XGBoost's exact tree SHAP."""
    assert bundled.shap is not None
    np.testing.assert_allclose(
        bundled.shap.contributions(fresh_x), xgboost_contributions(bundled.booster, fresh_x), rtol=0, atol=TOLERANCE
    )


def test_contributions_add_up_to_the_margin(bundled: FraudModel, fresh_x: np.ndarray) -> None:
    """Contributions plus the bias are the raw log-odds the booster predicts: nothing is lost."""
    x = fresh_x[:2000]
    bias = bundled.booster.predict(xgboost.DMatrix(x, nthread=1), pred_contribs=True)[:, -1]
    margin = bundled.booster.predict(xgboost.DMatrix(x, nthread=1), output_margin=True)
    np.testing.assert_allclose(bundled.contributions(x).sum(axis=1) + bias, margin, rtol=0, atol=1e-4)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_other_depths_equal_pred_contribs(fresh_x: np.ndarray, depth: int) -> None:
    """Stumps, depth 2 and depth 3 (up to 7 splits, repeated features on a path) all tabulate exactly."""
    x = fresh_x[:6000]
    booster = small_booster(x, depth)
    tables = tables_of(booster)
    assert tables is not None
    np.testing.assert_allclose(tables.contributions(x), xgboost_contributions(booster, x), rtol=0, atol=TOLERANCE)


def test_deep_trees_fall_back_to_xgboost(bundled: FraudModel, fresh_x: np.ndarray) -> None:
    """Trees with more than 8 splits are not tabulated; the model then asks XGBoost, with the same result."""
    x = fresh_x[:3000]
    booster = small_booster(x, depth=5, rounds=10)
    assert max(tree.count("leaf=") for tree in booster.get_dump()) - 1 > MAX_SPLITS_PER_TREE
    assert tables_of(booster) is None
    model = FraudModel(booster=booster, spec=bundled.spec, threshold=0.5, version="deep", metadata={}, shap=None)
    np.testing.assert_allclose(model.contributions(x), xgboost_contributions(booster, x), rtol=0, atol=1e-6)


def test_one_row_and_no_rows(bundled: FraudModel, fresh_x: np.ndarray) -> None:
    """A single row works, and no rows give an empty (0 x fields) result."""
    assert bundled.contributions(fresh_x[:1]).shape == (1, len(FIELDS))
    assert bundled.contributions(fresh_x[:0]).shape == (0, len(FIELDS))


def test_bundled_tables_predict_bit_for_bit(bundled: FraudModel, fresh_x: np.ndarray) -> None:
    """The tables' probabilities are XGBoost's exactly, for a batch, a single row and every size between."""
    assert bundled.shap is not None
    expected = bundled.booster.inplace_predict(fresh_x, validate_features=False)
    assert np.array_equal(bundled.shap.predict_proba(fresh_x), expected)
    for n in (1, 2, 3, 9, 17, 100):
        for start in range(0, 40 * n, n):
            assert np.array_equal(bundled.shap.predict_proba(fresh_x[start : start + n]), expected[start : start + n])


def test_sigmoid_matches_xgboost_over_the_whole_margin_range(bundled: FraudModel, fresh_x: np.ndarray) -> None:
    """Margins from -100 to 100 (shifted by a base margin): the sigmoid rounds exactly as XGBoost's expf-based one."""
    margins = np.linspace(-100.0, 100.0, fresh_x.shape[0], dtype=np.float32)
    dmatrix = xgboost.DMatrix(fresh_x, base_margin=margins, nthread=1)
    total = bundled.booster.predict(dmatrix, output_margin=True)
    assert np.array_equal(sigmoid(total), bundled.booster.predict(dmatrix))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_other_depths_predict_bit_for_bit(fresh_x: np.ndarray, depth: int) -> None:
    """Stumps and trees of depth 2 and 3 predict exactly as XGBoost, with their own base score."""
    x = fresh_x[:6000]
    booster = small_booster(x, depth)
    tables = tables_of(booster)
    assert tables is not None
    assert tables.leaf_values is not None
    assert np.array_equal(tables.predict_proba(x), booster.inplace_predict(x, validate_features=False))


def test_other_objectives_predict_with_xgboost(bundled: FraudModel, fresh_x: np.ndarray) -> None:
    """A model that is not binary:logistic keeps its SHAP tables but predicts through XGBoost."""
    x = fresh_x[:3000]
    label = TransactionGenerator(seed=5).columns(x.shape[0])["is_fraud"]
    params = {"max_depth": 2, "objective": "reg:squarederror", "nthread": 1, "seed": 1}
    booster = xgboost.train(params, xgboost.DMatrix(x, label=label, nthread=1), num_boost_round=10)
    tables = tables_of(booster)
    assert tables is not None
    assert tables.leaf_values is None
    model = FraudModel(booster=booster, spec=bundled.spec, threshold=0.5, version="reg", metadata={}, shap=tables)
    assert np.array_equal(model.predict_proba(x), booster.inplace_predict(x, validate_features=False))


def test_tables_that_disagree_with_xgboost_are_not_used_to_predict(bundled: FraudModel) -> None:
    """The load-time probe catches tables that predict differently (here a wrong base score) and drops them."""
    assert bundled.shap is not None
    n_features = int(bundled.booster.num_features())
    assert checked_predictor(bundled.booster, bundled.shap, n_features) is bundled.shap
    wrong = replace(bundled.shap, base_margin=bundled.shap.base_margin + 1e-3)
    checked = checked_predictor(bundled.booster, wrong, n_features)
    assert checked is not None
    assert checked.leaf_values is None
