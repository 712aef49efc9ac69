"""Where the labelled training data comes from: the seeded generator, or history stored in Cosmos DB.

Either way the result is `TrainingData`: columns in the form `TransactionGenerator.columns` returns,
and a description of the source that goes into the model's metadata (never a key or credential).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from model.history import History
from shared.generator import LABEL_NOISE, TransactionGenerator

logger = logging.getLogger(__name__)

FRAUD_RATE: Final = 0.10
MIN_ROWS: Final = 1000
"""Fewer labelled rows than this cannot give a 60/20/20 split worth reporting on."""
MIN_PER_CLASS: Final = 20
"""Fewer frauds (or legitimate rows) than this leave a split with almost none to fit or measure on."""


class TrainingDataError(ValueError):
    """The labelled data cannot support a stratified train/validation/test split."""


@dataclass(frozen=True)
class TrainingData:
    """Labelled columns (the form `TransactionGenerator.columns` returns) and where they came from."""

    columns: dict[str, np.ndarray]
    source: dict[str, Any]

    @property
    def size(self) -> int:
        return len(self.columns["is_fraud"])

    def check_splittable(self) -> None:
        """Raise `TrainingDataError` unless there are enough rows of each class to stratify a 60/20/20 split."""
        frauds = int(np.asarray(self.columns["is_fraud"]).sum())
        if self.size < MIN_ROWS or min(frauds, self.size - frauds) < MIN_PER_CLASS:
            raise TrainingDataError(
                f"{self.size} labelled rows with {frauds} frauds: need at least {MIN_ROWS} rows and "
                f"{MIN_PER_CLASS} of each class for a stratified 60/20/20 split"
            )


def generated_data(n_samples: int, seed: int) -> TrainingData:
    """`n_samples` transactions from the seeded generator at its default settings."""
    columns = TransactionGenerator(fraud_rate=FRAUD_RATE, seed=seed).columns(n_samples)
    source = {
        "source": "generator",
        "generator": "shared.generator.TransactionGenerator",
        "seed": seed,
        "fraud_rate": FRAUD_RATE,
        "label_noise": LABEL_NOISE,
    }
    return TrainingData(columns=columns, source=source)


def history_data(
    history: History, *, endpoint: str, database: str, container: str, auth: str, limit: int | None
) -> TrainingData:
    """Labelled history read from Cosmos DB, described by its container and what was left out."""
    skipped = int(sum(history.skipped.values()))
    source = {
        "source": "cosmos_history",
        "reader": "model.history.read_history",
        "endpoint": endpoint,
        "database": database,
        "container": container,
        "auth": auth,
        "limit": limit,
        "documents_read": history.size + skipped,
        "documents_used": history.size,
        "documents_skipped": skipped,
        "skipped_by_reason": dict(sorted(history.skipped.items())),
    }
    return TrainingData(columns=history.columns, source=source)


def read_history_data(
    endpoint: str, database: str, container: str, *, key: str | None, verify_tls: bool, limit: int | None
) -> TrainingData:
    """Read labelled history from a Cosmos DB container: with `key`, or `DefaultAzureCredential` when None."""
    # Looked up at call time, so the azure-cosmos import stays off the generator's path.
    from model import history as reader

    found = reader.read_history(endpoint, database, container, key=key, verify_tls=verify_tls, limit=limit)
    logger.info(
        "read %d labelled documents from %s/%s (%d left out)",
        found.size,
        database,
        container,
        sum(found.skipped.values()),
    )
    auth = "account key" if key else "DefaultAzureCredential"
    return history_data(found, endpoint=endpoint, database=database, container=container, auth=auth, limit=limit)
