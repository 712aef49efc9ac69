"""The re-drive tool's shapes: the names of its settings, its errors, the slices of the SDK clients it uses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol

COSMOS_CONNECTION_ENV: Final = "CosmosDBConnection"


EVENT_HUB_CONNECTION_ENV: Final = "EVENT_HUB_CONNECTION_STRING"


class UnreadableDocumentError(ValueError):
    """A rejected document whose body cannot be recovered exactly."""


class StoreError(RuntimeError):
    """Reading or deleting rejected documents failed after the SDK's retries; never holds a credential."""


class BatchLike(Protocol):
    """The slice of `azure.eventhub.EventDataBatch` used here."""

    def add(self, event_data: Any) -> None: ...

    def __len__(self) -> int: ...


class ProducerLike(Protocol):
    """The slice of `azure.eventhub.EventHubProducerClient` used here; tests pass a stand-in."""

    def create_batch(self, *, partition_key: str | None = None, max_size_in_bytes: int | None = None) -> BatchLike: ...

    def send_batch(self, event_data_batch: BatchLike) -> None: ...

    def close(self) -> None: ...


class ContainerLike(Protocol):
    """The slice of `azure.cosmos.ContainerProxy` used here: the real one, or a stand-in."""

    def query_items(
        self,
        query: str,
        *,
        parameters: list[dict[str, Any]],
        enable_cross_partition_query: bool,
        max_item_count: int,
    ) -> Iterable[Mapping[str, Any]]: ...

    def delete_item(self, item: str, partition_key: str) -> None: ...


class ClosableContainer(ContainerLike, Protocol):
    """A container that owns its client, as `main` builds it."""

    def close(self) -> None: ...
