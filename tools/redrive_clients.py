"""The real clients the re-drive tool drives: the rejected container (azure-cosmos), the hub (azure-eventhub)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.loopback import connection_string_endpoint, is_loopback_url
from tools.redrive_types import (
    COSMOS_CONNECTION_ENV,
    EVENT_HUB_CONNECTION_ENV,
    BatchLike,
    ClosableContainer,
    ProducerLike,
    StoreError,
)
from tools.send_events import NAMESPACE_ENV, SendError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CosmosTarget:
    """How to reach the account: an endpoint with DefaultAzureCredential, or a connection string."""

    endpoint: str
    connection_string: str | None
    verify_tls: bool


def cosmos_target(endpoint: str | None, env: Mapping[str, str]) -> CosmosTarget:
    """`--endpoint` when given, else `CosmosDBConnection`; TLS unverified for a loopback endpoint only."""
    if endpoint:
        return CosmosTarget(endpoint, None, not is_loopback_url(endpoint))
    connection = env.get(COSMOS_CONNECTION_ENV, "")
    if not connection:
        raise ValueError(f"give --endpoint, or a connection string in ${COSMOS_CONNECTION_ENV}")
    account = connection_string_endpoint(connection)
    return CosmosTarget(account, connection, not is_loopback_url(account))


def _store_error(action: str, exc: Exception) -> StoreError:
    # Cosmos DB error messages name the status and the resource, never the key.
    first_line = (str(exc).splitlines() or [""])[0][:300]
    return StoreError(f"{action} failed: {type(exc).__name__}: {first_line}")


class _SdkContainer:
    """A `ContainerProxy` whose failures surface as `StoreError`; it closes its client and credential."""

    def __init__(self, client: Any, container: Any, credential: Any | None) -> None:
        self._client = client
        self._container = container
        self._credential = credential

    def query_items(
        self,
        query: str,
        *,
        parameters: list[dict[str, Any]],
        enable_cross_partition_query: bool,
        max_item_count: int,
    ) -> Iterator[Mapping[str, Any]]:
        from azure.core.exceptions import AzureError

        try:
            yield from self._container.query_items(
                query,
                parameters=parameters,
                enable_cross_partition_query=enable_cross_partition_query,
                max_item_count=max_item_count,
            )
        except AzureError as exc:
            raise _store_error("reading rejected documents", exc) from None

    def delete_item(self, item: str, partition_key: str) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            self._container.delete_item(item=item, partition_key=partition_key)
        except ResourceNotFoundError:
            logger.info("%s: already deleted", item)  # the goal (not sent twice) holds
        except AzureError as exc:
            raise _store_error(f"deleting {item}", exc) from None

    def close(self) -> None:
        self._client.close()
        if self._credential is not None:
            self._credential.close()


def sdk_container(args: argparse.Namespace) -> ClosableContainer:
    """The rejected container's client, from `--endpoint` or `CosmosDBConnection`."""
    from azure.cosmos import CosmosClient

    target = cosmos_target(args.endpoint, os.environ)
    credential = None
    if target.connection_string is not None:
        client = CosmosClient.from_connection_string(target.connection_string, connection_verify=target.verify_tls)
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
        client = CosmosClient(target.endpoint, credential=credential, connection_verify=target.verify_tls)
    container = client.get_database_client(args.database).get_container_client(args.container)
    logger.info("reading %s/%s on %s", args.database, args.container, urlsplit(target.endpoint).hostname)
    return _SdkContainer(client, container, credential)


class _SdkProducer:
    """An `EventHubProducerClient` that reports failed sends as `SendError`."""

    def __init__(self, client: Any, credential: Any | None) -> None:
        self._client = client
        self._credential = credential

    def create_batch(self, *, partition_key: str | None = None, max_size_in_bytes: int | None = None) -> BatchLike:
        batch: BatchLike = self._client.create_batch(partition_key=partition_key, max_size_in_bytes=max_size_in_bytes)
        return batch

    def send_batch(self, event_data_batch: BatchLike) -> None:
        from azure.eventhub.exceptions import EventHubError

        try:
            self._client.send_batch(event_data_batch)
        except EventHubError as exc:
            # The SDK has already retried; its message names the error, not the credential.
            raise SendError(f"send failed after retries: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self._client.close()
        if self._credential is not None:
            self._credential.close()


def sdk_producer(args: argparse.Namespace) -> tuple[ProducerLike, Callable[[bytes], Any]]:
    """The real producer from `--namespace` or `EVENT_HUB_CONNECTION_STRING`, and the `EventData` constructor."""
    from azure.eventhub import EventData, EventHubProducerClient

    connection_string = None if args.namespace else os.environ.get(EVENT_HUB_CONNECTION_ENV)
    if connection_string:
        client = EventHubProducerClient.from_connection_string(connection_string, eventhub_name=args.event_hub)
        return _SdkProducer(client, None), EventData
    namespace = args.namespace or os.environ.get(NAMESPACE_ENV)
    if not namespace:
        raise ValueError(f"give --namespace, or a connection string in ${EVENT_HUB_CONNECTION_ENV}")
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    client = EventHubProducerClient(
        fully_qualified_namespace=namespace, eventhub_name=args.event_hub, credential=credential
    )
    return _SdkProducer(client, credential), EventData
