"""Short ways for tests to invoke the app's functions through the worker engine, with host-shaped messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from devhost.host_messages import cosmos_feed_input, eventhub_input, http_input, timer_input
from devhost.worker import Invocation, Worker

Documents = list[dict[str, Any]]


def score(worker: Worker, bodies: Sequence[bytes], **kwargs: Any) -> tuple[Documents, Documents]:
    """ScoreTransactions on one Event Hubs delivery: (scored, rejected) as the host would write them."""
    result = worker.invoke("ScoreTransactions", *eventhub_input(bodies, **kwargs))
    return result.documents("scored"), result.documents("rejected")


@dataclass(frozen=True)
class HttpReply:
    """An HTTP function's answer as the host relays it, plus the invocation's other outputs."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    invocation: Invocation

    def json(self) -> Any:
        return orjson.loads(self.body)

    def header(self, name: str) -> str | None:
        """A response header, looked up without regard to case as HTTP does."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def http(
    worker: Worker,
    name: str,
    method: str = "POST",
    path: str = "/api/transactions",
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> HttpReply:
    """Invoke an HTTP-triggered function with the request the host would forward."""
    result = worker.invoke(name, *http_input(method, path, params=params, headers=headers, body=body))
    reply = result.returned
    assert isinstance(reply, dict), "an HTTP function always answers through $return"
    raw = reply["body"]
    return HttpReply(
        reply["status_code"], reply["headers"], raw if isinstance(raw, bytes) else str(raw).encode(), result
    )


def timer(worker: Worker, name: str = "GenerateTransactionsOnTimer", past_due: bool = False) -> Invocation:
    """One timer tick."""
    return worker.invoke(name, *timer_input(past_due))


def change_feed(worker: Worker, documents: Sequence[Mapping[str, Any]], name: str = "PublishToPowerBI") -> Invocation:
    """One change-feed delivery of `documents`."""
    return worker.invoke(name, *cosmos_feed_input(documents))
