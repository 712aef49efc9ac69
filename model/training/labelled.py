"""Labelled transactions read from the Cosmos DB `history` container, as training columns: the retraining path.

The seed trained on labelled transactions that had piled up in Cosmos DB. Here the generator's
history mode (`POST /api/transactions?mode=history`) stores labelled, unscored transactions in the
history container, and `python -m model.training.train --history-endpoint ...` reads them back through the
`azure-cosmos` SDK, with an account key or, when none is given, `DefaultAzureCredential`. Every
document is checked against the same contract the scorer uses; one that fails, or has no label,
is counted and left out rather than guessed at.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.behaviour.features import timestamps_ms
from shared.contract import schema as c
from shared.contract import timestamps
from shared.scoring.encoding import transactions_to_columns

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledHistory:
    """Training columns (the form `TransactionGenerator.columns` returns) and what was left out."""

    columns: dict[str, np.ndarray]
    skipped: Counter[str]

    @property
    def size(self) -> int:
        return len(self.columns["is_fraud"])


LABEL_KNOWN_FIELD = "label_known_at"
"""Optional on a labelled record: when its label became known (a contract timestamp, not before the
payment's). Without it the label counts as known at the payment's own time, the handbook's assumption;
merchant risk then uses it once the training delay has passed."""


def history_columns(documents: Iterable[Mapping[str, Any]]) -> LabelledHistory:
    """Validate labelled documents and turn them into training columns."""
    kept: list[c.Transaction] = []
    known_at: list[str | None] = []
    skipped: Counter[str] = Counter()
    for doc in documents:
        record = dict(doc)
        known = record.pop(LABEL_KNOWN_FIELD, None)
        try:
            tx = c.validate(record)
        except c.InvalidTransactionError as exc:
            skipped[f"{exc.rejection.field}:{exc.rejection.reason}"] += 1
            continue
        if tx.is_fraud is None:
            skipped["is_fraud:missing"] += 1
            continue
        if known is not None and not (timestamps.is_valid(known)):
            skipped[f"{LABEL_KNOWN_FIELD}:invalid_timestamp"] += 1
            continue
        kept.append(tx)
        known_at.append(known)
    raw = transactions_to_columns(kept)
    columns = {
        field: np.asarray(values, dtype=np.float64 if field in c.CONTINUOUS_FIELDS else np.int64)
        for field, values in raw.items()
    }
    columns["is_fraud"] = np.asarray([int(bool(tx.is_fraud)) for tx in kept], dtype=np.int64)
    columns["account"] = np.asarray([tx.account_id for tx in kept], dtype=object)
    # Identity and event time: the behavioural features replay each account's history in event time.
    columns["id"] = np.asarray([tx.id for tx in kept], dtype=object)
    columns["t_ms"] = timestamps_ms([tx.timestamp for tx in kept])
    columns[c.MERCHANT_FIELD] = np.asarray([tx.merchant_id for tx in kept], dtype=object)
    stated = timestamps_ms([k or tx.timestamp for k, tx in zip(known_at, kept, strict=True)])
    # A label cannot be known before its payment happened: an earlier claim counts from the payment.
    columns["known_ms"] = np.maximum(stated, columns["t_ms"])
    if skipped:
        logger.warning("left %d history documents out: %s", sum(skipped.values()), dict(skipped))
    return LabelledHistory(columns=columns, skipped=skipped)


def read_history(
    endpoint: str,
    database: str,
    container: str,
    *,
    key: str | None = None,
    verify_tls: bool = True,
    limit: int | None = None,
) -> LabelledHistory:
    """Read labelled transactions from a Cosmos DB container (account key, or Entra ID when `key` is None)."""
    from azure.cosmos import CosmosClient

    credential: Any
    if key:
        credential = key
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    client = CosmosClient(endpoint, credential=credential, connection_verify=verify_tls)
    proxy = client.get_database_client(database).get_container_client(container)
    query = "SELECT * FROM c" if limit is None else f"SELECT TOP {int(limit)} * FROM c"
    items = proxy.query_items(query, enable_cross_partition_query=True)
    return history_columns(items)
