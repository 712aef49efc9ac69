"""Where merchant risk states live: a `merchants` container in Cosmos DB (partition key /id), or memory.

A merchant's state is its label totals per known day (`merchants.py`: `{"v", "day", "n", "fraud",
"through"}`), written only by the label aggregation (`shared/labels/aggregate.py`) and read by
scoring (`read`, the one call serving makes). One document per merchant, id
`merchant:<merchant_id>`: the prefix keeps every merchant id (any contract id, `_aggregation`
included) apart from the aggregation's progress document, id `_aggregation`, in the same container.

Writes are conditional, as for account states (`store.py`): `read_versioned` returns each state
with its version (the document's `_etag`, a counter in memory) and `write` replaces it only if the
version still holds (`If-Match`), creating it only if it still does not exist. The aggregation sets
one known day's totals per write (`merchants.merged_state`: set, not added), so a write that loses
a race is read again and re-applied, and a day applied twice changes nothing.

A stored state is untrusted input: `merchants.usable_state` checks it where it is loaded; an
unusable one reads as no state (counted, warned about at most once a minute) and is replaced by
the aggregation's next write for that merchant. Scoring's reads keep each checked state, with its
arrays, for as long as its document's version holds (`CheckedStates`): checked once per version,
not once per batch.

MERCHANT_STATE = cosmos | memory | off chooses the store (unset: as BEHAVIOUR_STATE); `off`
(`get_merchant_store()` is None) scores every merchant as unlabelled and keeps the aggregation idle.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from itertools import count
from typing import Any, Final, Protocol

import orjson

from shared import caches
from shared.behaviour import merchants
from shared.behaviour.store import RateLimitedWarning, StateUnavailableError, cosmos_container
from shared.settings import get_settings

PARTITION_KEY: Final = "/id"
"""The `merchants` container's partition key path: every read and write is by document id."""
PROGRESS_ID: Final = "_aggregation"
"""The aggregation's progress document: the last known day applied to every merchant (`through`)."""
DOCUMENT_PREFIX: Final = "merchant:"
STATE_FIELD: Final = "state"
READ_CHUNK: Final = 500
"""Merchants per `read_items` call (one query per physical partition; bounded as in `store.READ_CHUNK`)."""
MEMORY_MERCHANTS: Final = 1_000_000
"""Merchants the memory store keeps; a state holds at most `merchants.KEEP_DAYS` days (~2 KB)."""
CHECKED_STATES: Final = 10_000
"""Checked states a store keeps for scoring (`CheckedStates`): about 6 KB each at `merchants.KEEP_DAYS` days."""


class MerchantStateUnavailableError(RuntimeError):
    """The merchant store could not be read: score with merchants unlabelled, or stop the aggregation."""


class MerchantStateWriteError(RuntimeError):
    """A merchant state or the progress could not be written (outage): the aggregation stops and resumes later."""


class CosmosSetupError(RuntimeError):
    """A Cosmos DB store was chosen but no connection setting names the account."""


@dataclass(frozen=True, slots=True)
class Versioned:
    """A stored document's usable state (None: absent or unusable) and the version a write must still find."""

    state: dict[str, Any] | None
    version: Any = None
    """None when no document exists: the write must create it."""


@dataclass(frozen=True, slots=True)
class Progress:
    """The aggregation's progress: the last known day applied (None before its first run) and its version."""

    through: int | None
    version: Any = None


class MerchantStore(Protocol):
    """Merchant states for scoring (`read`) and the aggregation (versioned reads, conditional writes)."""

    def read(self, merchant_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The usable states of those merchants that have one; `MerchantStateUnavailableError` if unreadable."""
        ...

    def read_versioned(self, merchant_ids: Sequence[str]) -> dict[str, Versioned]:
        """Every asked merchant with its state and version (`Versioned(None)` when it has no document)."""
        ...

    def write(self, merchant_id: str, state: Mapping[str, Any], version: Any, now: str) -> bool:
        """Write a state if the merchant's document is still at `version`; False (nothing written) if it changed."""
        ...

    def read_progress(self) -> Progress: ...

    def write_progress(self, through: int, version: Any, now: str) -> bool:
        """Record `through` if the progress is still at `version`; False if another run moved it."""
        ...


unusable_states = RateLimitedWarning("%d stored merchant states were unusable and read as no labels known (%s)")
"""Stored merchant states that failed `merchants.usable_state` since the process started (`total`)."""


def document_id(merchant_id: str) -> str:
    """The id (and partition key) of a merchant's document."""
    return DOCUMENT_PREFIX + merchant_id


def merchant_document(merchant_id: str, state: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The `merchants` document of one merchant."""
    return {"id": document_id(merchant_id), "merchant_id": merchant_id, STATE_FIELD: state, "updated_at": now}


def progress_document(through: int, now: str) -> dict[str, Any]:
    """The aggregation's progress document."""
    return {"id": PROGRESS_ID, "through": through, "updated_at": now}


def _usable(merchant_id: str, raw: object) -> dict[str, Any] | None:
    state = merchants.usable_state(raw)
    if state is None and raw is not None:
        version = raw.get("v") if isinstance(raw, dict) else None
        unusable_states.note(1, f"e.g. merchant {merchant_id!r}, version {version!r}")
    return state


class CheckedStates:
    """Scoring's usable states, checked and converted once per merchant and document version.

    A merchant's state changes at most once per aggregation run (hourly), while every batch that
    pays at the merchant reads it: checking a 92-day state and turning its lists into arrays took
    most of merchant risk's cost per batch. The version (the document's `_etag`, the memory store's
    counter) says whether the state read is still the one checked; a newer version is checked
    again. The least recently read merchants are dropped past `size`; unusable states are never
    kept, so each read of one is counted as before.
    """

    def __init__(self, size: int = CHECKED_STATES) -> None:
        self._items: OrderedDict[str, tuple[Any, merchants.CheckedState]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, merchant_id: str, version: Any, load: Callable[[], object]) -> merchants.CheckedState | None:
        """The merchant's checked state at `version`; `load()` gives the raw stored state when it is not kept."""
        with self._lock:
            kept = self._items.get(merchant_id)
            if kept is not None and version is not None and kept[0] == version:
                self._items.move_to_end(merchant_id)
                return kept[1]
        state = _usable(merchant_id, load())
        if state is None:
            return None
        checked = merchants.CheckedState(state)
        if version is not None:
            with self._lock:
                self._items[merchant_id] = (version, checked)
                self._items.move_to_end(merchant_id)
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        return checked

    def __len__(self) -> int:
        return len(self._items)


def _state_in(text: str) -> object:
    doc = orjson.loads(text)
    return doc.get(STATE_FIELD) if isinstance(doc, dict) else None


def _through(raw: Mapping[str, Any] | None) -> int | None:
    value = None if raw is None else raw.get("through")
    # An unusable progress restarts from the first-run day: re-applying days is harmless.
    return value if type(value) is int and value >= 0 else None


class UnavailableMerchantStore:
    """The store could not be set up (settings missing, SDK absent): every read fails, nothing is written."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def read(self, merchant_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        raise MerchantStateUnavailableError(self.reason)

    def read_versioned(self, merchant_ids: Sequence[str]) -> dict[str, Versioned]:
        raise MerchantStateUnavailableError(self.reason)

    def write(self, merchant_id: str, state: Mapping[str, Any], version: Any, now: str) -> bool:
        raise MerchantStateWriteError(self.reason)

    def read_progress(self) -> Progress:
        raise MerchantStateUnavailableError(self.reason)

    def write_progress(self, through: int, version: Any, now: str) -> bool:
        raise MerchantStateWriteError(self.reason)


class MemoryMerchantStore:
    """Merchant states in this process only (local runs), as JSON text with a version counter."""

    def __init__(self, max_merchants: int = MEMORY_MERCHANTS) -> None:
        self._docs: dict[str, tuple[int, str]] = {}
        self._max = max_merchants
        self._versions = count(1)
        self._lock = threading.Lock()
        self.checked = CheckedStates()

    def _get(self, doc_id: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            entry = self._docs.get(doc_id)
        return None if entry is None else (entry[0], orjson.loads(entry[1]))

    def _put_if(self, doc_id: str, doc: Mapping[str, Any], version: Any) -> bool:
        text = orjson.dumps(dict(doc)).decode()
        with self._lock:
            current = self._docs.get(doc_id)
            if (current[0] if current else None) != version:
                return False
            if current is None and len(self._docs) >= self._max:
                raise MerchantStateWriteError(f"the memory merchant store holds its maximum of {self._max}")
            self._docs[doc_id] = (next(self._versions), text)
        return True

    def read(self, merchant_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for merchant in merchant_ids:
            with self._lock:
                entry = self._docs.get(document_id(merchant))
            if entry is not None:
                state = self.checked.get(merchant, entry[0], partial(_state_in, entry[1]))
                if state is not None:
                    out[merchant] = state
        return out

    def read_versioned(self, merchant_ids: Sequence[str]) -> dict[str, Versioned]:
        out: dict[str, Versioned] = {}
        for merchant in merchant_ids:
            entry = self._get(document_id(merchant))
            if entry is None:
                out[merchant] = Versioned(None)
            else:
                version, doc = entry
                out[merchant] = Versioned(_usable(merchant, doc.get(STATE_FIELD)), version)
        return out

    def write(self, merchant_id: str, state: Mapping[str, Any], version: Any, now: str) -> bool:
        return self._put_if(document_id(merchant_id), merchant_document(merchant_id, state, now), version)

    def read_progress(self) -> Progress:
        entry = self._get(PROGRESS_ID)
        return Progress(None) if entry is None else Progress(_through(entry[1]), entry[0])

    def write_progress(self, through: int, version: Any, now: str) -> bool:
        return self._put_if(PROGRESS_ID, progress_document(through, now), version)

    def put(self, merchant_id: str, raw: Any) -> None:
        """Store `raw` as a merchant's state as it is, unchecked (tests: a document another version wrote)."""
        doc = {"id": document_id(merchant_id), "merchant_id": merchant_id, STATE_FIELD: raw}
        with self._lock:
            self._docs[document_id(merchant_id)] = (next(self._versions), orjson.dumps(doc).decode())


class CosmosMerchantStore:
    """Merchant states in the `merchants` container, read in bulk and conditionally written with the Cosmos DB SDK."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self.checked = CheckedStates()

    def read(self, merchant_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for merchant, item in self._items(merchant_ids):
            state = self.checked.get(merchant, item.get("_etag"), partial(item.get, STATE_FIELD))
            if state is not None:
                out[merchant] = state
        return out

    def read_versioned(self, merchant_ids: Sequence[str]) -> dict[str, Versioned]:
        out = {m: Versioned(None) for m in dict.fromkeys(merchant_ids)}
        for merchant, item in self._items(merchant_ids):
            out[merchant] = Versioned(_usable(merchant, item.get(STATE_FIELD)), item.get("_etag"))
        return out

    def _items(self, merchant_ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """(merchant, stored document) of those asked that have one, read in chunks of `READ_CHUNK`."""
        from azure.core.exceptions import AzureError

        unique = list(dict.fromkeys(merchant_ids))
        asked = set(unique)
        found: list[tuple[str, dict[str, Any]]] = []
        try:
            for start in range(0, len(unique), READ_CHUNK):
                ids = [document_id(m) for m in unique[start : start + READ_CHUNK]]
                for item in self._container.read_items([(i, i) for i in ids]):
                    merchant = str(item.get("id", ""))[len(DOCUMENT_PREFIX) :]
                    if merchant in asked:
                        found.append((merchant, item))
        except (AzureError, OSError) as exc:  # HTTP errors past the SDK's retries, refused connections, TLS
            raise MerchantStateUnavailableError(
                f"reading {len(unique)} merchant states failed: {type(exc).__name__}"
            ) from exc
        return found

    def _put_if(self, doc: dict[str, Any], version: Any) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError
        from azure.cosmos import exceptions

        try:
            if version is None:
                self._container.create_item(doc)
            else:
                self._container.replace_item(
                    doc["id"], doc, etag=version, match_condition=MatchConditions.IfNotModified
                )
        except (exceptions.CosmosAccessConditionFailedError, exceptions.CosmosResourceExistsError):
            return False
        except exceptions.CosmosResourceNotFoundError:
            return False  # deleted since it was read: read again, then create
        except (AzureError, OSError) as exc:
            raise MerchantStateWriteError(f"writing {doc['id']!r} failed: {type(exc).__name__}") from exc
        return True

    def write(self, merchant_id: str, state: Mapping[str, Any], version: Any, now: str) -> bool:
        return self._put_if(merchant_document(merchant_id, state, now), version)

    def read_progress(self) -> Progress:
        from azure.core.exceptions import AzureError

        # read_items, like the states, rather than read_item: the same one-item read on Cosmos DB, and
        # cosmosdb-server (the tests' server) answers a point read of a missing document with a 500, not a 404.
        try:
            items = list(self._container.read_items([(PROGRESS_ID, PROGRESS_ID)]))
        except (AzureError, OSError) as exc:
            raise MerchantStateUnavailableError(
                f"reading the aggregation's progress failed: {type(exc).__name__}"
            ) from exc
        item = next((i for i in items if i.get("id") == PROGRESS_ID), None)
        return Progress(None) if item is None else Progress(_through(item), item.get("_etag"))

    def write_progress(self, through: int, version: Any, now: str) -> bool:
        return self._put_if(progress_document(through, now), version)


def container_client(container: str, setting: str) -> Any:
    """A container client of the app's Cosmos DB database, connected as the behaviour state store connects.

    `store.cosmos_container` builds the client from the bindings' `CosmosDBConnection` settings (a
    connection string, or the identity form; certificate checks off only for a loopback endpoint);
    it is called with the settings naming `container` instead of `profiles`, so there is one way
    to connect. `setting` names the store's own setting in the error when no connection is set.
    """
    settings = dataclasses.replace(get_settings(), profiles_container=container)
    try:
        return cosmos_container(settings, os.environ)
    except StateUnavailableError:
        raise CosmosSetupError(
            f"{setting}=cosmos needs CosmosDBConnection or CosmosDBConnection__accountEndpoint"
        ) from None


_lock = threading.Lock()


@cache
def _merchants(kind: str) -> MerchantStore:
    if kind == "memory":
        return MemoryMerchantStore()
    return CosmosMerchantStore(container_client(get_settings().merchants_container, "MERCHANT_STATE"))


def get_merchant_store() -> MerchantStore | None:
    """The process's merchant store, per MERCHANT_STATE (built once; the Cosmos client reused); None when `off`."""
    kind = get_settings().merchant_state
    if kind == "off":
        return None
    from azure.core.exceptions import AzureError

    with _lock:
        try:
            return _merchants(kind)
        except (CosmosSetupError, ImportError, ValueError, AzureError, OSError) as exc:
            # Not cached: the next use tries again. ValueError: a malformed connection string.
            return UnavailableMerchantStore(f"the {kind} merchant store is unavailable: {exc}")


def reset() -> None:
    """Forget the process's merchant store (the next use builds it again from the settings)."""
    with _lock:
        _merchants.cache_clear()


caches.register("merchant store", reset)
