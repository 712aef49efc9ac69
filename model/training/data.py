"""Where the labelled training data comes from: the seeded generator, or history stored in Cosmos DB.

Either way the result is `TrainingData`: columns in the form `TransactionGenerator.columns` returns
(contract fields, `id`, `account`, `t_ms` event time and the label; generated data also has
`merchant_id`, `known_ms` when the label became known, and the truth behind it, `typology` and
`episode`), and a description of the source
that goes into the model's metadata (never a key or credential). Generated data comes from a fixed
population over a fixed stretch of event time: about `PAYMENTS_PER_ACCOUNT` payments per account, so
accounts have a history to be judged against, and a test stretch later than the training one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson

from model.training import labelled
from model.training.labelled import LabelledHistory
from shared.generation.generator import LABEL_NOISE, TransactionGenerator

logger = logging.getLogger(__name__)

FRAUD_RATE: Final = 0.10
PAYMENTS_PER_ACCOUNT: Final = 100
HISTORY_START: Final = datetime(2026, 1, 5, tzinfo=UTC)
"""Event time of the generated history's first payment (a Monday), fixed so training is reproducible."""
MIN_ROWS: Final = 1000
"""Fewer labelled rows than this cannot give a 60/20/20 split worth reporting on."""
MIN_PER_CLASS: Final = 20
"""Fewer frauds (or legitimate rows) than this leave a split with almost none to fit or measure on."""


class TrainingDataError(ValueError):
    """The labelled data cannot support a train/validation/test split in event time."""


@dataclass(frozen=True)
class TrainingData:
    """Labelled columns (the form `TransactionGenerator.columns` returns) and where they came from."""

    columns: dict[str, np.ndarray]
    source: dict[str, Any]

    @property
    def size(self) -> int:
        return len(self.columns["is_fraud"])

    def check_splittable(self) -> None:
        """Raise `TrainingDataError` unless there are enough rows of each class for a 60/20/20 split in event time."""
        frauds = int(np.asarray(self.columns["is_fraud"]).sum())
        if self.size < MIN_ROWS or min(frauds, self.size - frauds) < MIN_PER_CLASS:
            raise TrainingDataError(
                f"{self.size} labelled rows with {frauds} frauds: need at least {MIN_ROWS} rows and "
                f"{MIN_PER_CLASS} of each class for a 60/20/20 split in event time"
            )


def accounts_for(n_samples: int) -> int:
    """Population size that gives `n_samples` payments about `PAYMENTS_PER_ACCOUNT` per account."""
    return max(20, n_samples // PAYMENTS_PER_ACCOUNT)


def generated_data(n_samples: int, seed: int) -> TrainingData:
    """`n_samples` transactions of a seeded customer population, in event time from `HISTORY_START`."""
    accounts = accounts_for(n_samples)
    generator = TransactionGenerator(fraud_rate=FRAUD_RATE, seed=seed, accounts=accounts, start=HISTORY_START)
    columns = generator.columns(n_samples)
    source = {
        "source": "generator",
        "generator": "shared.generation.generator.TransactionGenerator",
        "seed": seed,
        "fraud_rate": FRAUD_RATE,
        "label_noise": LABEL_NOISE,
        "accounts": accounts,
        "start": HISTORY_START.isoformat(),
    }
    return TrainingData(columns=columns, source=source)


def more_history(data: TrainingData, multiple: int, seed: int, until_ms: int) -> dict[str, np.ndarray]:
    """Training rows of `multiple - 1` times as many other accounts, same start, up to `until_ms` of event time.

    With `data`'s own training rows, that is `multiple` times its history: the upper reference
    measures what the same model reaches with that much more data, on the very same test rows.
    """
    accounts = int(data.source["accounts"]) * (multiple - 1)
    generator = TransactionGenerator(
        fraud_rate=FRAUD_RATE,
        seed=seed + 7_919,
        accounts=accounts,
        start=datetime.fromisoformat(str(data.source["start"])),
        account_offset=int(data.source["accounts"]),
    )
    # Enough rows to cover the training stretch: the population's rate times its length, plus slack.
    days = (until_ms - generator.population.clock_ms) / 86_400_000
    columns = generator.columns(int(generator.population.events_per_day * days * 1.05) + 1)
    keep = columns["t_ms"] < until_ms
    return {name: values[keep] for name, values in columns.items()}


def history_data(
    history: LabelledHistory, *, endpoint: str, database: str, container: str, auth: str, limit: int | None
) -> TrainingData:
    """Labelled history read from Cosmos DB, described by its container and what was left out."""
    skipped = int(sum(history.skipped.values()))
    source = {
        "source": "cosmos_history",
        "reader": "model.training.labelled.read_history",
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
    found = labelled.read_history(endpoint, database, container, key=key, verify_tls=verify_tls, limit=limit)
    logger.info(
        "read %d labelled documents from %s/%s (%d left out)",
        found.size,
        database,
        container,
        sum(found.skipped.values()),
    )
    auth = "account key" if key else "DefaultAzureCredential"
    return history_data(found, endpoint=endpoint, database=database, container=container, auth=auth, limit=limit)


FILE_FORMATS: Final = {".jsonl": "json_lines", ".ndjson": "json_lines", ".json": "json_lines", ".parquet": "parquet"}
"""What `--data FILE` reads, by suffix: JSON Lines (one labelled contract record per line) or Parquet."""


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON Lines or Parquet file; a line that is not a JSON object is yielded as is (and skipped)."""
    kind = FILE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise TrainingDataError(f"{path}: unknown format; use one of {', '.join(sorted(FILE_FORMATS))}")
    if kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        for batch in table.to_batches(65_536):
            yield from batch.to_pylist()
        return
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    yield {"<line>": "not JSON"}


def file_data(path: Path) -> TrainingData:
    """Labelled transactions in the contract read from a file (`--data FILE`), checked like history documents."""
    if not path.is_file():
        raise TrainingDataError(f"{path}: no such file")
    found = labelled.history_columns(r for r in read_records(path) if isinstance(r, dict))
    skipped = int(sum(found.skipped.values()))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    logger.info("read %d labelled records from %s (%d left out)", found.size, path, skipped)
    source = {
        "source": "file",
        "file": path.name,
        "format": FILE_FORMATS[path.suffix.lower()],
        "sha256": digest,
        "records_read": found.size + skipped,
        "records_used": found.size,
        "records_skipped": skipped,
        "skipped_by_reason": dict(sorted(found.skipped.items())),
    }
    return TrainingData(columns=found.columns, source=source)
