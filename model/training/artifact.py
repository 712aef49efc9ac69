"""A training run's files: the runtime artifact, the reference pipeline, and the metadata that vouches for them."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import joblib
import matplotlib
import numpy as np
import pandas as pd
import sklearn
import xgboost

from shared.behaviour import days, merchants
from shared.behaviour import features as behaviour
from shared.scoring import encoding as features
from shared.scoring.model import ARTIFACT_FORMAT, ARTIFACT_NAME, METADATA_NAME, sha256_of

if TYPE_CHECKING:
    from model.training.train import TrainResult

REFERENCE_PIPELINE_NAME: Final = "reference_pipeline.joblib"


def library_versions() -> dict[str, str]:
    """The versions of everything that made the artifact, as the metadata records them."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "xgboost": xgboost.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "matplotlib": matplotlib.__version__,
    }


def write_artifacts(result: TrainResult, out_dir: Path, training_seconds: float) -> dict[str, Any]:
    """Write the runtime artifact, the reference pipeline and, last, the metadata; returns the metadata.

    The metadata goes last so that a run interrupted midway leaves a hash that no longer matches,
    and the loader refuses the half-written artifact instead of serving it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    artifact = out_dir / ARTIFACT_NAME
    reference = out_dir / REFERENCE_PIPELINE_NAME
    joblib.dump(result.payload, artifact)
    joblib.dump(result.pipeline, reference)
    artifact_sha = sha256_of(artifact)
    metadata: dict[str, Any] = {
        "version": f"xgb-{artifact_sha[:12]}",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "format": ARTIFACT_FORMAT,
        "library_versions": library_versions(),
        "feature_names": features.feature_names(),
        "threshold": result.threshold,
        "threshold_policy": result.threshold_policy,
        "metrics": result.metrics,
        "baselines": {
            key: {**b.summary, "threshold": b.threshold, "metrics": b.metrics, "fit_seconds": b.fit_seconds}
            for key, b in result.baselines.items()
        },
        "references": result.references,
        "behaviour": {
            "features": list(behaviour.FEATURES),
            "window": behaviour.WINDOW,
            "state_limit": behaviour.STATE_LIMIT,
            "horizon_days": behaviour.HORIZON_MS // behaviour.DAY_MS,
        },
        "protocol": result.protocol,
        **({"benchmark": result.benchmark} if result.benchmark else {}),
        "merchant_risk": {
            "features": list(merchants.FEATURES),
            "windows_days": list(days.WINDOWS_DAYS),
            "delay_days": result.merchant_delay_days,
            "rule": "labels of the payment's merchant known on a UTC day before the payment's day minus delay_days",
        },
        "feature_importance": {
            "method": "mean |SHAP| per contract field (log-odds, one-hot columns folded) on the test split",
            "values": result.importance,
        },
        "hyperparameters": result.hyperparameters,
        "model_size": result.model_size,
        "training_data": result.training_data,
        "training_seconds": round(training_seconds, 1),
        "stage_seconds": result.stage_seconds,
        "artifact": {"file": ARTIFACT_NAME, "sha256": artifact_sha, "bytes": artifact.stat().st_size},
        "reference_pipeline": {"file": REFERENCE_PIPELINE_NAME, "sha256": sha256_of(reference)},
    }
    text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
    (out_dir / METADATA_NAME).write_text(text, encoding="utf-8")
    return metadata
