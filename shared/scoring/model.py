"""Loading the bundled fraud model safely, and scoring an encoded matrix with it.

The artifact is a joblib file holding a plain dict (the XGBoost booster as UBJSON bytes plus the
fitted feature spec), not a scikit-learn object, so serving needs only NumPy, joblib and XGBoost.
Reasons come from exact tree SHAP tables derived from the loaded booster (`shared/scoring/explain.py`).
Unpickling runs code, so the loader first checks the file's sha256 against the metadata written
next to it by `model/training/`, as scikit-learn's model-persistence guide recommends, and refuses
anything that does not match.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from shared.behaviour import merchants
from shared.scoring.encoding import N_FEATURES, FeatureSpec, source_fields
from shared.scoring.explain import ShapTables, build_tables

logger = logging.getLogger(__name__)

ARTIFACT_NAME: Final = "fraud_model.joblib"
METADATA_NAME: Final = "fraud_model.metadata.json"
ARTIFACT_FORMAT: Final = "fraud-runtime-v1"


class ModelIntegrityError(RuntimeError):
    """The artifact is missing, altered, or does not match its metadata; it was not unpickled."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


FIELDS: Final = tuple(dict.fromkeys(source_fields()))
"""The contract fields reasons name, in the column order of `FraudModel.contributions`."""
_COLUMN_FIELD: Final = [FIELDS.index(field) for field in source_fields()]
_FOLD_MATRIX: Final = np.zeros((len(_COLUMN_FIELD), len(FIELDS)), dtype=np.float64)
_FOLD_MATRIX[np.arange(len(_COLUMN_FIELD)), _COLUMN_FIELD] = 1.0


@dataclass(frozen=True)
class FraudModel:
    """A loaded, verified model: booster, feature spec, decision threshold and version."""

    booster: Any  # xgboost.Booster; typed loosely so importing this module stays cheap.
    spec: FeatureSpec
    threshold: float
    version: str
    metadata: dict[str, Any]
    shap: ShapTables | None = None
    """Tables of the booster's trees: exact SHAP (None falls back to XGBoost's `pred_contribs`) and,
    when they hold leaf values, the prediction itself (otherwise the booster's `inplace_predict`)."""
    merchant_delay_days: int = merchants.DEFAULT_DELAY_DAYS
    """Whole days a label must have been known before it counts for merchant risk: the delay the model
    was trained with (metadata `merchant_risk.delay_days`), so serving computes what training did."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Fraud probability per row of an encoded float32 matrix."""
        if x.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        if self.shap is not None and self.shap.leaf_values is not None:
            return self.shap.predict_proba(x)
        return np.asarray(self.booster.inplace_predict(x, validate_features=False), dtype=np.float32)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Exact tree SHAP per contract field (rows x `FIELDS`, log-odds, bias left out).

        One-hot columns are folded back into their source field, so `category_recipient` carries
        the sum of every `category_recipient=` column.
        """
        if x.shape[0] == 0:
            return np.zeros((0, len(FIELDS)), dtype=np.float64)
        if self.shap is not None:
            return self.shap.contributions(x)
        return xgboost_contributions(self.booster, x)


_FIELD_NAMES: Final = np.asarray(FIELDS, dtype=object)
PERSONAL_FIELDS: Final = ("income", "credit", "marital_status", "children")
"""Who the customer is, never a reason to flag a payment: an analyst cannot act on it, and a flag "because
married with children" would be discrimination in words. They stay model inputs (the seed's contract
and every baseline read them, and they scale what is usual for an account: an amount large for one
income is not for another), but `ranked` never names them."""
_NOT_REASONS: Final = np.array([field in PERSONAL_FIELDS for field in FIELDS], dtype=bool)


def ranked(contributions: np.ndarray, top: int = 3) -> tuple[list[list[str]], list[list[float]]]:
    """The `top` largest contributions of every row, as one list over the rows per rank: names, values.

    Rank-major, so callers can walk all rows' first, second and third reasons without a list per
    row. Callers keep the positive ones only: a field pushing toward "not fraud" is no reason to flag.
    `PERSONAL_FIELDS` rank last with no contribution, so they are never kept.
    """
    contributions = np.where(_NOT_REASONS, -np.inf, contributions)
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
    values = np.take_along_axis(contributions, order, axis=1)
    return _FIELD_NAMES[order].T.tolist(), values.T.tolist()


def shap_tables(booster: Any) -> ShapTables | None:
    """SHAP tables per contract field for an XGBoost booster; None if its trees are too deep to tabulate."""
    import orjson

    return build_tables(orjson.loads(bytes(booster.save_raw("json"))), _COLUMN_FIELD, len(FIELDS))


PREDICT_TOLERANCE: Final = 1e-6
"""Largest difference from `inplace_predict` the tables may show at load before prediction falls back to it."""


def probe_matrix(tables: ShapTables, n_features: int, rows: int = 512, seed: int = 0) -> np.ndarray:
    """Rows that send every split both ways: each column takes one of its thresholds or the float32 just below."""
    rng = np.random.default_rng(seed)
    x = np.zeros((rows, n_features), dtype=np.float32)
    thresholds = tables.split_thresholds.ravel()
    for column in range(n_features):
        at = thresholds[(tables.split_columns == column) & ~np.isnan(thresholds)]
        if at.size:
            candidates = np.concatenate([at, np.nextafter(at, np.float32(-np.inf))])
            x[:, column] = rng.choice(candidates, size=rows)
    return x


def checked_predictor(booster: Any, tables: ShapTables | None, n_features: int) -> ShapTables | None:
    """The tables, with their leaf values dropped unless they predict as the booster does on a probe."""
    if tables is None or tables.leaf_values is None:
        return tables
    probe = probe_matrix(tables, n_features)
    expected = np.asarray(booster.inplace_predict(probe, validate_features=False), dtype=np.float64)
    worst = float(np.max(np.abs(tables.predict_proba(probe) - expected), initial=0.0))
    if worst <= PREDICT_TOLERANCE:
        return tables
    logger.warning("tree tables predict %.3g away from XGBoost; predicting with XGBoost instead", worst)
    return replace(tables, leaf_values=None)


def xgboost_contributions(booster: Any, x: np.ndarray) -> np.ndarray:
    """XGBoost's own exact tree SHAP (`pred_contribs`), folded per contract field, bias left out."""
    import xgboost

    # nthread=1: without it, building the DMatrix starts a thread pool that costs more than the
    # SHAP itself at our batch sizes.
    contribs = booster.predict(xgboost.DMatrix(x, nthread=1), pred_contribs=True)
    folded: np.ndarray = contribs[:, :-1].astype(np.float64) @ _FOLD_MATRIX
    return folded


def load_model(model_dir: Path, threshold_override: float | None = None) -> FraudModel:
    """Verify and load the artifact in `model_dir`; raise `ModelIntegrityError` before unpickling if unsafe."""
    artifact = model_dir / ARTIFACT_NAME
    meta_path = model_dir / METADATA_NAME
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
        expected = str(metadata["artifact"]["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"model metadata {meta_path} is missing or unreadable: {exc}") from None
    try:
        actual = sha256_of(artifact)
    except OSError as exc:
        raise ModelIntegrityError(f"model artifact {artifact} cannot be read: {exc}") from None
    if actual != expected:
        raise ModelIntegrityError(
            f"model artifact {artifact} sha256 {actual[:12]}... does not match its metadata "
            f"({expected[:12]}...); refusing to load it"
        )

    import joblib
    import xgboost

    payload = joblib.load(artifact)
    if not isinstance(payload, dict) or payload.get("format") != ARTIFACT_FORMAT:
        raise ModelIntegrityError(f"model artifact {artifact} is not a {ARTIFACT_FORMAT} payload")
    try:
        # The artifact must describe the features this code computes, in this order: a mismatch is an
        # unusable model (every batch rejected as model_unavailable, remembered), not a per-batch crash.
        spec = FeatureSpec.from_dict(payload["feature_spec"])
        booster = xgboost.Booster()
        booster.load_model(bytearray(payload["booster"]))
    except (KeyError, TypeError, ValueError, xgboost.core.XGBoostError) as exc:
        raise ModelIntegrityError(f"model artifact {artifact} does not fit this code: {exc}") from None
    if int(booster.num_features()) != N_FEATURES:
        raise ModelIntegrityError(
            f"model artifact {artifact} expects {booster.num_features()} features, this code computes {N_FEATURES}"
        )
    # One thread per worker process: Functions scales out by process, and threads only add
    # contention at our batch sizes (measured in benchmarks/).
    booster.set_param({"nthread": 1})
    shap = checked_predictor(booster, shap_tables(booster), int(booster.num_features()))
    if shap is None:
        logger.warning("model %s is too deep for SHAP tables; reasons use XGBoost's slower pred_contribs", actual[:12])
    try:
        threshold = float(metadata["threshold"]) if threshold_override is None else threshold_override
        version = str(metadata["version"])
        delay = metadata.get("merchant_risk", {}).get("delay_days", merchants.DEFAULT_DELAY_DAYS)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelIntegrityError(f"model metadata {meta_path} has no usable threshold or version: {exc}") from None
    if type(delay) is not int or not 0 <= delay <= merchants.MAX_DELAY_DAYS:
        raise ModelIntegrityError(f"model metadata {meta_path} has an unusable merchant_risk.delay_days {delay!r}")
    logger.info("loaded fraud model %s (threshold %.4f, sha256 %s)", version, threshold, actual[:12])
    return FraudModel(
        booster=booster,
        spec=spec,
        threshold=threshold,
        version=version,
        metadata=metadata,
        merchant_delay_days=delay,
        shap=shap,
    )


class LazyModel:
    """Loads the model on first use, once per process, and remembers a failure.

    Loading at first use rather than import keeps indexing independent of the artifact: a broken
    model must not turn into "0 functions loaded". Remembering the failure means one clear log
    line per process instead of one per batch.
    """

    def __init__(self, loader: Callable[[], FraudModel]) -> None:
        self._loader = loader
        self._after_load: list[Callable[[], None]] = []
        self._model: FraudModel | None = None
        self._error: ModelIntegrityError | None = None
        # The worker runs sync functions in a thread pool, so batches from several partitions and
        # HTTP calls can all arrive first at once: one loads, the others wait for it.
        self._lock = threading.Lock()

    def after_load(self, step: Callable[[], None]) -> None:
        """Run `step` once the model has loaded (in the loading thread, before any caller gets it)."""
        self._after_load.append(step)

    def get(self) -> FraudModel:
        """The loaded model; raises the (remembered) `ModelIntegrityError` if it cannot be used."""
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is not None:
                return self._model
            if self._error is None:
                try:
                    self._model = self._loader()
                    for step in self._after_load:
                        step()
                except ModelIntegrityError as exc:
                    self._error = exc
                    logger.error("fraud model unusable, refusing to score: %s", exc)  # noqa: TRY400 - reason is the message
                    raise
                return self._model
            raise self._error
