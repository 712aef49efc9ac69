"""Cosmos DB containers as the local runner's store, written with the output binding's semantics.

Used by the local runner when Cosmos settings are given (the Cosmos DB emulator, a real account,
or `@vercel/cosmosdb-server` in the tests) and by the integration tests. Documents are upserted by
id within their partition, as the Functions Cosmos DB output binding does.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, cast

from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey

from shared.contract.partitions import COSMOS_PARTITION_KEY_PATHS

SCORED = "scored"
REJECTED = "rejected"
HISTORY = "history"
PROFILES = "profiles"
# No lease container: this store keeps its own change feed (see `CosmosStore`).
PARTITION_KEYS: Mapping[str, str] = MappingProxyType(
    {name: COSMOS_PARTITION_KEY_PATHS[name] for name in (SCORED, REJECTED, HISTORY, PROFILES)}
)

# Properties the server (and Cosmos DB) adds to every stored item.
SYSTEM_PROPERTIES = frozenset({"_rid", "_self", "_etag", "_ts", "_attachments", "_lsn"})
_FORBIDDEN_ID_CHARACTERS = frozenset("/\\?#")


def _as_json(document: Mapping[str, Any]) -> dict[str, Any]:
    # The worker sends output documents to the host as JSON text; a value that does not survive
    # that (a datetime, a set, NaN) must fail here as it would in Azure, not be fixed up by the SDK.
    try:
        text = json.dumps(dict(document), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"document {document.get('id')!r} is not valid JSON: {error}") from error
    body: dict[str, Any] = json.loads(text)
    return body


def _partition_key_value(body: Mapping[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.strip("/").split("/"):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


class CosmosStore:
    """Writes documents the way the Functions Cosmos DB output binding does: upsert each by id within its partition.

    Checks the server would let through but Cosmos DB would not treat the same way are made here,
    before anything is written, so a test cannot pass against the server and then fail in Azure.
    """

    def __init__(
        self, client: CosmosClient, database: str, container_partition_keys: Mapping[str, str] = PARTITION_KEYS
    ) -> None:
        self.database_name = database
        self._database = client.create_database_if_not_exists(database)
        self._partition_keys = dict(container_partition_keys)
        self._containers: dict[str, ContainerProxy] = {
            name: self._database.create_container_if_not_exists(name, partition_key=PartitionKey(path=path))
            for name, path in self._partition_keys.items()
        }
        # The local runner's change feed. cosmosdb-server's change-feed continuation tokens do not
        # resume reliably, so this store keeps its own write-through feed: a document enters it only
        # after its upsert returned, which keeps the trigger's promise that only persisted rows are
        # published. Bounded, and positions are counts of documents written by this process.
        self._feeds: dict[str, deque[dict[str, Any]]] = {name: deque() for name in self._partition_keys}
        self._written: dict[str, int] = dict.fromkeys(self._partition_keys, 0)
        self._leases: dict[str, int] = {}

    def _container(self, name: str) -> ContainerProxy:
        try:
            return self._containers[name]
        except KeyError:
            raise ValueError(f"unknown container {name!r}; this sink has {sorted(self._containers)}") from None

    def _checked(self, container_name: str, document: Mapping[str, Any]) -> dict[str, Any]:
        body = _as_json(document)
        doc_id = body.get("id")
        if not isinstance(doc_id, str) or not doc_id or _FORBIDDEN_ID_CHARACTERS.intersection(doc_id):
            raise ValueError(f"document id {doc_id!r} is not a non-empty string without / \\ ? #")
        path = self._partition_keys[container_name]
        value = _partition_key_value(body, path)
        # cosmosdb-server files a null, missing, empty or zero partition key value under the
        # document's id, so null and missing would collide; Cosmos DB keeps them apart.
        usable = isinstance(value, str | int | float) and not isinstance(value, bool) and bool(value)
        if not usable or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(
                f"document {doc_id!r} has partition key {path} = {value!r}, which cosmosdb-server does not "
                f"store as Cosmos DB does; give {container_name!r} a partition key every document has"
            )
        return body

    def upsert(self, container_name: str, documents: Iterable[Mapping[str, Any]]) -> int:
        """Upsert every document (a `func.DocumentList` or plain dicts); returns how many were written.

        Like the worker, which serialises the whole list before the host writes any of it, nothing
        is written when one document is invalid.
        """
        if isinstance(documents, Mapping):
            raise TypeError("upsert takes a list of documents, not one document")
        container = self._container(container_name)
        bodies = [self._checked(container_name, document) for document in documents]
        for body in bodies:
            container.upsert_item(body)
        self._feeds[container_name].extend(bodies)
        self._written[container_name] += len(bodies)
        return len(bodies)

    def changes(self, container_name: str, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Documents this process persisted after position `after` (at most `limit`), and the new position."""
        feed, written = self._feeds[container_name], self._written[container_name]
        oldest = written - len(feed)
        if after < oldest:
            raise ValueError("change-feed position is older than what this store still holds")
        # Positions before a lease are never read again: drop them so the feed stays bounded.
        while len(feed) > written - min(after, written) and written - len(feed) < min(self._leases.values(), default=0):
            feed.popleft()
        oldest = written - len(feed)
        start = after - oldest
        batch = [feed[i] for i in range(start, min(start + limit, len(feed)))]
        return batch, after + len(batch)

    def lease(self, name: str) -> int:
        """The change-feed position consumer `name` last committed (0 if it never ran)."""
        return self._leases.get(name, 0)

    def commit_lease(self, name: str, position: int) -> None:
        self._leases[name] = position

    def count(self, container_name: str) -> int:
        """How many items the container holds."""
        query = "SELECT VALUE COUNT(1) FROM c"
        (total,) = self._container(container_name).query_items(query, enable_cross_partition_query=True)
        return int(cast(Any, total))

    def ids(self, container_name: str) -> list[str]:
        """Every item's id, sorted; an id stored under two partition key values appears twice."""
        query = "SELECT VALUE c.id FROM c"
        return sorted(
            str(i) for i in self._container(container_name).query_items(query, enable_cross_partition_query=True)
        )

    def items(self, container_name: str) -> list[dict[str, Any]]:
        """Every item as written (system properties removed), sorted by id."""
        found = (
            {k: v for k, v in item.items() if k not in SYSTEM_PROPERTIES}
            for item in self._container(container_name).read_all_items()
        )
        return sorted(found, key=lambda item: (item["id"], json.dumps(item, sort_keys=True)))

    def get(self, container_name: str, doc_id: str, partition_key: str | float) -> dict[str, Any] | None:
        """The item with this id and partition key value, or None.

        A query rather than `read_item`: the server answers a point read of a missing id with a 500.
        """
        path = self._partition_keys[container_name].strip("/").split("/")
        field = "c" + "".join(f"[{json.dumps(part)}]" for part in path)
        query = f"SELECT * FROM c WHERE c.id = @id AND {field} = @pk"
        parameters: list[dict[str, Any]] = [{"name": "@id", "value": doc_id}, {"name": "@pk", "value": partition_key}]
        found = list(
            self._container(container_name).query_items(query, parameters=parameters, enable_cross_partition_query=True)
        )
        if not found:
            return None
        return {k: v for k, v in found[0].items() if k not in SYSTEM_PROPERTIES}
