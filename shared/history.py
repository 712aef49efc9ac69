"""Where each account's behaviour state lives between batches: a `profiles` container in Cosmos DB, or memory.

The state (shared/behaviour.py) is an account's most recent payments, deduplicated by id; features
are a pure function of the payments strictly before each one in event time. That is what makes the
design exact under at-least-once delivery, whatever the storage does:
- a batch redelivered after its profiles were written finds its own payments in the state and skips
  them as "not before" itself: the same features, nothing counted twice;
- a batch redelivered after a crash before (or halfway through) the writes finds the state as it was
  or with some of its payments: again the same features;
- a restart, or a partition moving to another worker process, reads the same documents.

On Azure the state is one document per account in the `profiles` container (id and partition key
= `account_id`), read in bulk per batch with the Cosmos DB SDK (`read_items`: batched point reads;
no input binding can take a list of accounts computed from the batch) and written back through the
function's Cosmos DB output binding, so writes go the same way as the scored documents. Locally,
`memory` keeps the states in the worker process: exact under replays in that process, gone with it.

Choosing the store is an app setting (BEHAVIOUR_STATE = cosmos | memory | off); `off` (no store:
`get_history()` is None) scores every payment with history unknown, as an account's first payment.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Final, Protocol

import orjson

from shared.settings import Settings, get_settings

logger = logging.getLogger(__name__)

STATE_FIELD: Final = "behaviour"
"""Where a profile document keeps the state (`behaviour.score_batch_features`'s form)."""
READ_CHUNK: Final = 500
"""Accounts per `read_items` call. The SDK turns one call into one query per physical partition,
`(c.id = @i AND c.account_id = @p) OR ...`; bounded, that query stays small whatever the batch (a
local cosmosdb-server overflowed its parser near 2,400 ids in one call)."""
MEMORY_ACCOUNTS: Final = 100_000
"""Accounts the memory store keeps before forgetting the least recently used (up to ~3 KB each: at
most ~300 MB for a local run; the generator's population is 10,000 accounts)."""


class HistoryUnavailableError(RuntimeError):
    """The state store could not be read: score with history unknown and write no state back."""


class History(Protocol):
    """Reads the stored state of accounts; `remember` is told the states a batch wrote."""

    output: bool
    """Whether the new states go out through the function's `profiles` output binding (Cosmos DB)."""

    def states(self, accounts: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def remember(self, documents: Sequence[Mapping[str, Any]]) -> None: ...


def profile_document(account: str, state: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The `profiles` document of one account: id and partition key are the account id."""
    return {"id": account, "account_id": account, STATE_FIELD: state, "updated_at": now}


class UnavailableHistory:
    """The store could not even be set up (settings missing, SDK absent): every read fails, nothing is written.

    Returned instead of raising so that a batch is still scored (history unknown) and never lost;
    the next batch tries to set the store up again.
    """

    output = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def states(self, accounts: Sequence[str]) -> dict[str, dict[str, Any]]:
        raise HistoryUnavailableError(self.reason)

    def remember(self, documents: Sequence[Mapping[str, Any]]) -> None:
        return None


class MemoryHistory:
    """States in this process only (local runs): bounded, least recently used forgotten first.

    Nothing goes to the `profiles` output: no store would read it back, and encoding a document per
    account per batch would only cost time.
    """

    output = False

    def __init__(self, max_accounts: int = MEMORY_ACCOUNTS) -> None:
        # Kept as JSON text, not dicts of lists: strings are invisible to the garbage collector, so the
        # collections every batch triggers do not walk ten containers per remembered account (measured:
        # 60% of building the new states went to the collector with dicts kept here).
        self._states: OrderedDict[str, str] = OrderedDict()
        self._max = max_accounts
        # The worker runs batches of several partitions at once on its thread pool.
        self._lock = threading.Lock()

    def states(self, accounts: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            found = [(a, s) for a in accounts if (s := self._states.get(a)) is not None]
        return {a: orjson.loads(s) for a, s in found}

    def remember(self, documents: Sequence[Mapping[str, Any]]) -> None:
        # As str: orjson's bytes keep their growth buffer (measured: 8.6 KB held per 2.2 KB state, the
        # soak's memory grew 46%), while decoding to str allocates exactly what the text needs.
        encoded = [(doc["account_id"], orjson.dumps(doc[STATE_FIELD]).decode()) for doc in documents]
        with self._lock:
            for account, state in encoded:
                self._states[account] = state
                self._states.move_to_end(account)
            while len(self._states) > self._max:
                self._states.popitem(last=False)


class CosmosHistory:
    """States read from the `profiles` container with the Cosmos DB SDK; written by the output binding."""

    output = True

    def __init__(self, container: Any) -> None:
        self._container = container

    def states(self, accounts: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not accounts:
            return {}
        from azure.core.exceptions import AzureError

        try:
            items = [
                item
                for start in range(0, len(accounts), READ_CHUNK)
                for item in self._container.read_items([(a, a) for a in accounts[start : start + READ_CHUNK]])
            ]
        except (AzureError, OSError) as exc:  # HTTP errors past the SDK's retries, refused connections, TLS
            raise HistoryUnavailableError(f"reading {len(accounts)} profiles failed: {type(exc).__name__}") from exc
        return {str(item["account_id"]): item[STATE_FIELD] for item in items if STATE_FIELD in item}

    def remember(self, documents: Sequence[Mapping[str, Any]]) -> None:
        return None  # the function's output binding writes them


def is_loopback(endpoint: str) -> bool:
    """Whether an endpoint (or a connection string holding one) is this machine: emulators, local servers."""
    return any(host in endpoint for host in ("://localhost", "://127.0.0.1", "://[::1]"))


def _connection_string_endpoint(connection: str) -> str:
    parts = dict(p.split("=", 1) for p in connection.split(";") if "=" in p)
    return parts.get("AccountEndpoint", "")


def cosmos_container(settings: Settings, env: Mapping[str, str]) -> Any:
    """The profiles container client, from the same connection settings the output bindings use.

    `CosmosDBConnection` (a connection string: emulators, local servers) or the identity-based form
    `CosmosDBConnection__accountEndpoint` with the app's managed identity (DefaultAzureCredential).
    Certificate checks are skipped only for a loopback endpoint (emulators use self-signed ones).
    """
    from azure.cosmos import CosmosClient

    connection = env.get("CosmosDBConnection", "")
    endpoint = env.get("CosmosDBConnection__accountEndpoint", "")
    if connection:
        verify = not is_loopback(_connection_string_endpoint(connection))
        client = CosmosClient.from_connection_string(connection, connection_verify=verify)
    elif endpoint:
        from azure.identity import DefaultAzureCredential

        client_id = env.get("CosmosDBConnection__clientId") or None
        credential = DefaultAzureCredential(managed_identity_client_id=client_id)
        client = CosmosClient(endpoint, credential=credential, connection_verify=not is_loopback(endpoint))
    else:
        raise HistoryUnavailableError(
            "BEHAVIOUR_STATE=cosmos needs CosmosDBConnection or CosmosDBConnection__accountEndpoint"
        )
    return client.get_database_client(settings.cosmos_database).get_container_client(settings.profiles_container)


_lock = threading.Lock()


@cache
def _history(kind: str) -> History:
    if kind == "memory":
        return MemoryHistory()
    import os

    return CosmosHistory(cosmos_container(get_settings(), os.environ))


def get_history() -> History | None:
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
        except (HistoryUnavailableError, ImportError, ValueError, AzureError, OSError) as exc:
            # Not cached: the next batch tries again. ValueError: a malformed connection string.
            return UnavailableHistory(f"the {kind} state store is unavailable: {exc}")


def reset() -> None:
    """Forget the process's store (the next batch builds it again from the settings): a fresh process."""
    with _lock:
        _history.cache_clear()
