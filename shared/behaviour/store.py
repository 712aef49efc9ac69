"""Where each account's behaviour state lives between batches: a `profiles` container in Cosmos DB, or memory.

The state (shared/behaviour/features.py) is an account's most recent payments, deduplicated by id; features
are a pure function of the payments strictly before each one in event time. That is what makes the
design exact under at-least-once delivery, whatever the storage does:
- a batch redelivered after its states were written finds its own payments in them and skips them
  as "not before" itself: the same features, nothing counted twice;
- a batch redelivered after a crash before (or halfway through) the writes finds the states as they
  were or with some of its payments: again the same features;
- a restart, or a partition moving to another worker process, reads the same documents.

Writes are conditional (optimistic concurrency), so no update is ever lost: `read` returns each
account's state with its version (the document's `_etag` in Cosmos DB, a counter in memory), and
`write` replaces a state only if its version is still the one read (`If-Match`), creating it only
if it still does not exist. Two batches that touch one account at once, from two partitions on one
worker's thread pool or from two instances, cannot both win: the loser is told which accounts
conflicted and `shared.scoring.batch` reads and scores again, so the outcome is that of one batch after
the other. (Merging the two states would keep every payment too, but the later batch's features
would still have been computed without the earlier one's payments.)

A state is stored in the binary form of `state_codec` (base64 in the document's `state` field): about
1.3 KB per account with 40 payments, where the JSON lists of version 2 took 2.8-3.1 KB. A stored state
is untrusted input: `state_codec.decode_many` checks length, version, flags, counts, ranges, order and
codes where it is loaded, for a whole batch's accounts at once. An unusable one (another
`STATE_VERSION` after a deploy, a hand-edited or truncated document) counts as "no state": counted,
warned about at most once a minute, and replaced by the next batch's write (conditional on the
version read, like any other). A batch that adds no payment to an account (a redelivery) writes
nothing for it.

On Azure the state is one document per account in the `profiles` container (id and partition key =
`account_id`), read in bulk per batch with the Cosmos DB SDK (`read_items`) and written with it too
(`replace_item` with `If-Match`, `create_item`): an output binding can only upsert, which is exactly
the lost update. Locally, `memory` keeps the states in the worker process: exact under replays in
that process, gone with it.

Choosing the store is an app setting (BEHAVIOUR_STATE = cosmos | memory | off); `off` (no store:
`get_state_store()` is None) scores every payment with history unknown, as an account's first payment.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from itertools import count
from typing import Any, Final, Protocol

from shared import caches
from shared.behaviour import state_codec
from shared.settings import Settings, get_settings

logger = logging.getLogger(__name__)

STATE_FIELD: Final = "state"
"""Where a profile document keeps the state (`state_codec`'s blob as base64 text). Not `behaviour`, which
names the features on a scored document; a profile written under that older key reads as no state once
and is rewritten."""
READ_CHUNK: Final = 500
"""Accounts per `read_items` call. The SDK turns one call into one query per physical partition,
`(c.id = @i AND c.account_id = @p) OR ...`; bounded, that query stays small whatever the batch (a
local cosmosdb-server overflowed its parser near 2,400 ids in one call)."""
MEMORY_ACCOUNTS: Final = 100_000
"""Accounts the memory store keeps before forgetting the least recently used (about 1 KB each with 40
payments, at most 7 KB: at most ~700 MB for a local run; the generator's population is 10,000 accounts)."""
WRITE_THREADS: Final = 8
"""Concurrent conditional writes to Cosmos DB per batch: one request per account, waiting on the network."""
WARN_INTERVAL_S: Final = 60.0


class StateUnavailableError(RuntimeError):
    """The state store could not be read: score with history unknown and write no state back."""


class StateWriteError(RuntimeError):
    """A state could not be written for a reason that may pass (outage, throttling past the SDK's retries).

    Raised out of the function on purpose: the invocation fails, `ScoreTransactions`' retry policy
    runs it again (the checkpoint holds), and the redelivered batch gets the same features.
    """


class StateConflictError(StateWriteError):
    """Other writers kept winning the same accounts' states for every attempt of this batch."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Accounts' states as read, with the version each write must still find."""

    states: state_codec.States = field(default_factory=state_codec.States.empty)
    """The usable states, decoded (an account without one is absent: no history)."""
    versions: dict[str, Any] = field(default_factory=dict)
    """The stored document's version for every account that has one, usable or not."""


class StateStore(Protocol):
    """Reads accounts' states with their versions; writes new states only where the versions still hold."""

    def read(self, accounts: Sequence[str]) -> Snapshot: ...

    def write(self, states: Mapping[str, bytes], snapshot: Snapshot, now: str) -> list[str]:
        """Write each state unless its account changed since `snapshot`; return the accounts that did.

        Nothing of a returned account is written.
        """
        ...


class RateLimitedWarning:
    """Counts an event and logs it at most once per interval, with the count since the last line."""

    def __init__(self, message: str, interval_s: float = WARN_INTERVAL_S) -> None:
        self._message = message
        self._interval = interval_s
        self._lock = threading.Lock()
        self.total = 0
        self._pending = 0
        self._last = -math.inf

    def note(self, n: int = 1, detail: str = "") -> None:
        with self._lock:
            self.total += n
            self._pending += n
            now = time.monotonic()
            if now - self._last < self._interval:
                return
            pending, self._pending, self._last = self._pending, 0, now
        logger.warning(self._message, pending, detail)


unusable_states = RateLimitedWarning("%d stored account states were unusable and are treated as no history (%s)")
"""Stored states that failed `usable_state` since the process started (`total`)."""


def usable_state(raw: object) -> dict[str, Any] | None:
    """`raw` (a stored blob, or its base64 text) as plain lists (`state_codec.decode`) if it is usable; else None."""
    if type(raw) not in (bytes, str):
        return None
    try:
        return state_codec.decode(raw)
    except state_codec.UnusableStateError:
        return None


def _loaded(accounts: Sequence[str], raws: Sequence[object]) -> state_codec.States:
    """The usable ones among accounts' stored states, decoded at once; the others counted and warned about."""
    states, refused = state_codec.decode_many(accounts, state_codec.from_texts(raws))
    if refused:
        unusable_states.note(len(refused), f"e.g. account {refused[0]!r}")
    return states


def profile_document(account: str, state: object, now: str) -> dict[str, Any]:
    """The `profiles` document of one account: id and partition key are the account id; `state` its base64 text."""
    return {"id": account, "account_id": account, STATE_FIELD: state, "updated_at": now}


class UnavailableStateStore:
    """The store could not even be set up (settings missing, SDK absent): every read fails, nothing is written.

    Returned instead of raising so that a batch is still scored (history unknown) and never lost;
    the next batch tries to set the store up again.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def read(self, accounts: Sequence[str]) -> Snapshot:
        raise StateUnavailableError(self.reason)

    def write(self, states: Mapping[str, bytes], snapshot: Snapshot, now: str) -> list[str]:
        return []


class MemoryStateStore:
    """States in this process only (local runs): bounded, least recently used forgotten first.

    A write is all or nothing under one lock: every account's version must still be the one read.
    """

    def __init__(self, max_accounts: int = MEMORY_ACCOUNTS) -> None:
        # Kept as the blobs a document would hold (bytes, no base64: nothing here is JSON): invisible to the
        # garbage collector, where dicts of lists made every collection walk ten containers per account.
        self._states: OrderedDict[str, tuple[int, object]] = OrderedDict()
        self._max = max_accounts
        self._versions = count(1)
        # The worker runs batches of several partitions at once on its thread pool.
        self._lock = threading.Lock()

    def read(self, accounts: Sequence[str]) -> Snapshot:
        with self._lock:
            found = [(a, entry) for a in accounts if (entry := self._states.get(a)) is not None]
        states = _loaded([a for a, _ in found], [raw for _, (_, raw) in found])
        return Snapshot(states, {a: version for a, (version, _) in found})

    def write(self, states: Mapping[str, bytes], snapshot: Snapshot, now: str) -> list[str]:
        versions = snapshot.versions
        with self._lock:
            current = self._states
            conflicts = [a for a in states if (e := current.get(a)) is not None and e[0] != versions.get(a)]
            conflicts += [a for a in states if a in versions and a not in current and a not in conflicts]
            if conflicts:
                return conflicts
            for account, blob in states.items():
                current[account] = (next(self._versions), blob)
                current.move_to_end(account)
            while len(current) > self._max:
                current.popitem(last=False)
        return []

    def put(self, account: str, raw: Any) -> None:
        """Store `raw` as an account's state as it is, unchecked (tests: a document another version wrote)."""
        with self._lock:
            self._states[account] = (next(self._versions), raw)


@dataclass
class RequestCharges:
    """Request units Cosmos DB charged this store (`x-ms-request-charge`, through the SDK's `response_hook`)."""

    read_ru: float = 0.0
    reads: int = 0
    """`read_items` calls."""
    write_ru: float = 0.0
    creates: int = 0
    replaces: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hook(self, kind: str) -> Any:
        """A `response_hook` adding the response's charge to `kind` (read, create or replace)."""

        def record(headers: Mapping[str, str], _result: object) -> None:
            try:
                charge = float(headers.get("x-ms-request-charge") or 0.0)
            except ValueError:
                charge = 0.0
            with self._lock:
                if kind == "read":
                    self.read_ru += charge
                    self.reads += 1
                else:
                    self.write_ru += charge
                    self.creates += kind == "create"
                    self.replaces += kind == "replace"

        return record


class CosmosStateStore:
    """States in the `profiles` container, read and conditionally written with the Cosmos DB SDK."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self._pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="state-writer")
        self.charges = RequestCharges()

    def read(self, accounts: Sequence[str]) -> Snapshot:
        if not accounts:
            return Snapshot()
        from azure.core.exceptions import AzureError

        try:
            hook = self.charges.hook("read")
            items = [
                item
                for start in range(0, len(accounts), READ_CHUNK)
                for item in self._container.read_items(
                    [(a, a) for a in accounts[start : start + READ_CHUNK]], response_hook=hook
                )
            ]
        except (AzureError, OSError) as exc:  # HTTP errors past the SDK's retries, refused connections, TLS
            raise StateUnavailableError(f"reading {len(accounts)} profiles failed: {type(exc).__name__}") from exc
        found = [str(item.get("id")) for item in items]
        states = _loaded(found, [item.get(STATE_FIELD) for item in items])
        return Snapshot(states, {a: item.get("_etag") for a, item in zip(found, items, strict=True)})

    def _write_one(self, account: str, state: object, version: Any, now: str) -> bool:
        """True if written; False if the account's document changed since it was read."""
        from azure.core import MatchConditions
        from azure.cosmos import exceptions

        body = profile_document(account, state, now)
        try:
            if version is None:
                self._container.create_item(body, response_hook=self.charges.hook("create"))
            else:
                self._container.replace_item(
                    account,
                    body,
                    etag=version,
                    match_condition=MatchConditions.IfNotModified,
                    response_hook=self.charges.hook("replace"),
                )
        except (exceptions.CosmosAccessConditionFailedError, exceptions.CosmosResourceExistsError):
            return False
        except exceptions.CosmosResourceNotFoundError:
            return False  # deleted since it was read: read again, then create
        return True

    def write(self, states: Mapping[str, bytes], snapshot: Snapshot, now: str) -> list[str]:
        from azure.core.exceptions import AzureError

        versions = snapshot.versions
        texts = state_codec.to_texts(list(states.values()))
        futures = [
            (account, self._pool.submit(self._write_one, account, text, versions.get(account), now))
            for account, text in zip(states, texts, strict=True)
        ]
        conflicts: list[str] = []
        failure: BaseException | None = None
        for account, future in futures:
            try:
                if not future.result():
                    conflicts.append(account)
            except (AzureError, OSError) as exc:
                failure = failure or exc
        if failure is not None:
            raise StateWriteError(f"writing account states failed: {type(failure).__name__}") from failure
        return conflicts


def cosmos_container(settings: Settings, env: Mapping[str, str]) -> Any:
    """The profiles container client, from the same connection settings the output bindings use.

    `CosmosDBConnection` (a connection string: emulators, local servers) or the identity-based form
    `CosmosDBConnection__accountEndpoint` with the app's managed identity (DefaultAzureCredential).
    Certificate checks are skipped only for a loopback endpoint (emulators use self-signed ones).
    """
    from azure.cosmos import CosmosClient

    from shared.loopback import connection_string_endpoint, is_loopback_url

    connection = env.get("CosmosDBConnection", "")
    endpoint = env.get("CosmosDBConnection__accountEndpoint", "")
    if connection:
        verify = not is_loopback_url(connection_string_endpoint(connection))
        client = CosmosClient.from_connection_string(connection, connection_verify=verify)
    elif endpoint:
        from azure.identity import DefaultAzureCredential

        client_id = env.get("CosmosDBConnection__clientId") or None
        credential = DefaultAzureCredential(managed_identity_client_id=client_id)
        client = CosmosClient(endpoint, credential=credential, connection_verify=not is_loopback_url(endpoint))
    else:
        raise StateUnavailableError(
            "BEHAVIOUR_STATE=cosmos needs CosmosDBConnection or CosmosDBConnection__accountEndpoint"
        )
    return client.get_database_client(settings.cosmos_database).get_container_client(settings.profiles_container)


_lock = threading.Lock()


@cache
def _history(kind: str) -> StateStore:
    if kind == "memory":
        return MemoryStateStore()
    import os

    return CosmosStateStore(cosmos_container(get_settings(), os.environ))


def get_state_store() -> StateStore | None:
    """The process's state store, per BEHAVIOUR_STATE (built once; a Cosmos client is reused across batches).

    None when BEHAVIOUR_STATE=off: every payment is scored with history unknown, as an account's first.
    """
    kind = get_settings().behaviour_state
    if kind == "off":
        return None
    from azure.core.exceptions import AzureError

    with _lock:
        try:
            return _history(kind)
        except (StateUnavailableError, ImportError, ValueError, AzureError, OSError) as exc:
            # Not cached: the next batch tries again. ValueError: a malformed connection string.
            return UnavailableStateStore(f"the {kind} state store is unavailable: {exc}")


def reset() -> None:
    """Forget the process's store (the next batch builds it again from the settings): a fresh process."""
    with _lock:
        _history.cache_clear()


caches.register("state store", reset)
