"""Where labels live: a `labels` container in Cosmos DB (partition key /id = transaction id), or memory.

A label is final. Each is created only if its transaction has none yet (`create_item`: 409 when the
id exists), never upserted: a second label for a transaction is read back instead and is a
`DUPLICATE` when it says the same (a client's retry, counted, fine) or a `CONFLICT` when it does
not (rejected `label_conflict`, the stored one stays). So a re-sent request never changes what is
stored, and the aggregation (`shared/labels/aggregate.py`) can recompute any day from the stored
labels and get the same totals.

A write the store does not confirm (an outage, throttling past the SDK's own retries) is
`UNCONFIRMED`: the caller is told to send it again, which is safe because of the above. After the
first such failure in a request, the rest are not tried: they would fail the same way, each after
the SDK's retries.

The aggregation reads the labels that became known on one day with a merchant
(`known_on`): one cross-partition query on the indexed `known_day`.

LABEL_STORE = cosmos | memory | off chooses the store; `off` (`get_label_store()` is None) keeps
POST /api/labels answering 503 `label_store_off` and the aggregation idle.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Protocol

import orjson

from shared import caches
from shared.behaviour.merchant_store import CosmosSetupError, container_client
from shared.behaviour.store import RateLimitedWarning
from shared.settings import get_settings

logger = logging.getLogger(__name__)

PARTITION_KEY: Final = "/id"
"""The `labels` container's partition key path: the document id, which is the transaction id."""
WRITE_THREADS: Final = 8
"""Concurrent creates per request: one request per label, waiting on the network."""
QUERY_PAGE: Final = 1000
"""Labels per page of the aggregation's query."""
KNOWN_ON_QUERY: Final = "SELECT c.merchant_id, c.fraud FROM c WHERE c.known_day = @day AND IS_STRING(c.merchant_id)"
_ATTEMPTS: Final = 5
"""Create, then read back, this many times at most when the stored label disappears in between (deleted by hand)."""


class Outcome(enum.Enum):
    """What became of one label sent to the store."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True, slots=True)
class Written:
    """One label's outcome, with the outcome its transaction has in the store (None when unconfirmed)."""

    outcome: Outcome
    stored_fraud: object = None


class LabelStoreUnavailableError(RuntimeError):
    """The label store could not be read (the aggregation stops and resumes on its next run)."""


class LabelStore(Protocol):
    """Creates labels if their transaction has none; reads a day's labels for the aggregation."""

    def create(self, documents: Sequence[Mapping[str, Any]]) -> list[Written]:
        """One `Written` per document, in order; each document's `id` must be unique within the call."""
        ...

    def known_on(self, known_day: int) -> list[tuple[str, bool]]:
        """(merchant id, fraud) of every stored label with that `known_day` and a merchant."""
        ...


unusable_labels = RateLimitedWarning("%d stored labels were unusable and left out of merchant states (%s)")
"""Stored labels with a merchant whose `merchant_id` or `fraud` has the wrong type (edited by hand)."""


def _usable_rows(rows: Sequence[Mapping[str, Any]], known_day: int) -> list[tuple[str, bool]]:
    out = [(row["merchant_id"], row["fraud"]) for row in rows if _usable_row(row)]
    if len(out) != len(rows):
        unusable_labels.note(len(rows) - len(out), f"known day {known_day}")
    return out


def _usable_row(row: Mapping[str, Any]) -> bool:
    merchant = row.get("merchant_id")
    return isinstance(merchant, str) and bool(merchant) and type(row.get("fraud")) is bool


class UnavailableLabelStore:
    """The store could not be set up (settings missing, SDK absent): nothing is confirmed, nothing can be read."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def create(self, documents: Sequence[Mapping[str, Any]]) -> list[Written]:
        return [Written(Outcome.UNCONFIRMED) for _ in documents]

    def known_on(self, known_day: int) -> list[tuple[str, bool]]:
        raise LabelStoreUnavailableError(self.reason)


class MemoryLabelStore:
    """Labels in this process only (local runs), as JSON text by id."""

    def __init__(self) -> None:
        self._labels: dict[str, str] = {}
        self._by_day: dict[object, list[str]] = {}
        """Ids by `known_day`, so a day's read loads that day's labels, not every label (an import holds months)."""
        self._lock = threading.Lock()

    def create(self, documents: Sequence[Mapping[str, Any]]) -> list[Written]:
        out: list[Written] = []
        with self._lock:
            for doc in documents:
                text = self._labels.get(doc["id"])
                if text is None:
                    self._labels[doc["id"]] = orjson.dumps(dict(doc)).decode()
                    self._by_day.setdefault(doc.get("known_day"), []).append(doc["id"])
                    out.append(Written(Outcome.STORED, doc["fraud"]))
                    continue
                stored = orjson.loads(text).get("fraud")
                same = type(stored) is bool and stored == doc["fraud"]
                out.append(Written(Outcome.DUPLICATE if same else Outcome.CONFLICT, stored))
        return out

    def known_on(self, known_day: int) -> list[tuple[str, bool]]:
        with self._lock:
            texts = [self._labels[i] for i in self._by_day.get(known_day, ())]
        rows = [doc for doc in map(orjson.loads, texts) if doc.get("known_day") == known_day]
        return _usable_rows([r for r in rows if isinstance(r.get("merchant_id"), str)], known_day)

    def get(self, transaction_id: str) -> dict[str, Any] | None:
        """The stored label of a transaction (tests, local tools)."""
        with self._lock:
            text = self._labels.get(transaction_id)
        return None if text is None else dict(orjson.loads(text))


class CosmosLabelStore:
    """Labels in the `labels` container, created (never replaced) with the Cosmos DB SDK."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self._pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="label-writer")

    def _create_one(self, doc: Mapping[str, Any], failed: threading.Event) -> Written:
        from azure.core.exceptions import AzureError
        from azure.cosmos import exceptions

        if failed.is_set():
            return Written(Outcome.UNCONFIRMED)
        try:
            for _ in range(_ATTEMPTS):
                try:
                    self._container.create_item(dict(doc))
                except exceptions.CosmosResourceExistsError:
                    pass
                else:
                    return Written(Outcome.STORED, doc["fraud"])
                try:
                    stored = self._container.read_item(doc["id"], partition_key=doc["id"])
                except exceptions.CosmosResourceNotFoundError:
                    continue  # deleted between the two calls: create again
                fraud = stored.get("fraud")
                same = type(fraud) is bool and fraud == doc["fraud"]
                return Written(Outcome.DUPLICATE if same else Outcome.CONFLICT, fraud)
        except (AzureError, OSError) as exc:  # HTTP errors past the SDK's retries, refused connections, TLS
            if not failed.is_set():
                logger.warning("the label store did not confirm a write: %s", type(exc).__name__)
            failed.set()
        return Written(Outcome.UNCONFIRMED)

    def create(self, documents: Sequence[Mapping[str, Any]]) -> list[Written]:
        failed = threading.Event()
        futures = [self._pool.submit(self._create_one, doc, failed) for doc in documents]
        return [future.result() for future in futures]

    def known_on(self, known_day: int) -> list[tuple[str, bool]]:
        from azure.core.exceptions import AzureError

        try:
            rows = list(
                self._container.query_items(
                    KNOWN_ON_QUERY,
                    parameters=[{"name": "@day", "value": known_day}],
                    enable_cross_partition_query=True,
                    max_item_count=QUERY_PAGE,
                )
            )
        except (AzureError, OSError) as exc:
            raise LabelStoreUnavailableError(
                f"querying the labels of known day {known_day} failed: {type(exc).__name__}"
            ) from exc
        return _usable_rows(rows, known_day)


_lock = threading.Lock()


@cache
def _labels(kind: str) -> LabelStore:
    if kind == "memory":
        return MemoryLabelStore()
    settings = get_settings()
    return CosmosLabelStore(container_client(settings.labels_container, "LABEL_STORE"))


def get_label_store() -> LabelStore | None:
    """The process's label store, per LABEL_STORE (built once); None when it is `off`."""
    kind = get_settings().label_store
    if kind == "off":
        return None
    from azure.core.exceptions import AzureError

    with _lock:
        try:
            return _labels(kind)
        except (CosmosSetupError, ImportError, ValueError, AzureError, OSError) as exc:
            # Not cached: the next request tries again. ValueError: a malformed connection string.
            return UnavailableLabelStore(f"the {kind} label store is unavailable: {exc}")


def reset() -> None:
    """Forget the process's label store (the next use builds it again from the settings)."""
    with _lock:
        _labels.cache_clear()


caches.register("label store", reset)
