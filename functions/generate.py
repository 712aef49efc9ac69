"""Generate stage: synthetic transactions to Event Hubs, on HTTP request or on a timer.

`?mode=history` stores labelled transactions straight into the history container instead, unscored:
the seed's first phase, which built the labelled history that the model is retrained from.

With GENERATOR_RECORDS_PER_EVENT above 1, transactions leave as `{"records": [...]}` envelopes
(`shared.contract.envelopes`), each under 1 MB. By default (GENERATOR_SENDER=sdk) events go out through the
azure-eventhub SDK (`shared.generation.sender`), each to the partition that partition key = account_id
gives, so an account's transactions always share one partition and the scorer sees them in order.
GENERATOR_SENDER=binding uses the Event Hubs output binding instead, which cannot set a partition
key or partition from Python (azure-functions-python-worker#654, Azure/Azure-Functions#2430: an
output event is a bare string): the host spreads the events, and all the generator can do is keep
each envelope to the accounts of one partition (EVENT_HUB_PARTITION_COUNT).
"""

from __future__ import annotations

import logging
import threading
import typing
from functools import cache
from typing import Any

import azure.functions as func
import orjson

from functions.http import JSON, error_response
from shared import caches
from shared.contract.envelopes import pack_envelopes
from shared.generation import sender as event_sender
from shared.generation.generator import TransactionGenerator
from shared.settings import get_settings

logger = logging.getLogger(__name__)

bp = func.Blueprint()

DEFAULT_COUNT = 100
BINDING_MAX_EVENT_BYTES = 240_000
"""Envelopes sent through the output binding stay under 256 KB: the binding's collector long capped an
event at 256 KB whatever the namespace allows (azure-functions-eventhubs-extension#24,
MicrosoftDocs/azure-docs#40206). About 550 generated transactions; tools/send_events.py uses the full 1 MB."""


@cache
def _generator() -> TransactionGenerator:
    # One stream per process: with GENERATOR_SEED set, a restarted worker replays the same ids.
    settings = get_settings()
    return TransactionGenerator(fraud_rate=settings.fraud_rate, seed=settings.generator_seed)


_generator_lock = threading.Lock()
caches.register("generator stream", _generator.cache_clear)


def _generate(count: int) -> tuple[list[dict[str, Any]], int]:
    # The worker runs sync functions on a thread pool, so an HTTP call and a timer tick can generate at
    # once; the customers' balances and the event-time clock are one stream, advanced one call at a time.
    with _generator_lock:
        records = _generator().generate(count)
    return records, sum(r["is_fraud"] for r in records)


def _events(records: list[dict[str, Any]]) -> list[str]:
    """The event bodies for the output binding: bare transactions, or envelopes packed per account partition."""
    settings = get_settings()
    if settings.records_per_event == 1:
        return [orjson.dumps(r).decode() for r in records]
    partitions = [str(i) for i in range(settings.event_hub_partition_count)]
    envelopes = pack_envelopes(records, settings.records_per_event, partitions, BINDING_MAX_EVENT_BYTES)
    return [e.body.decode() for e in envelopes]


def _send(records: list[dict[str, Any]], out: func.Out[typing.List[str]]) -> int:  # noqa: UP006
    """Send the records as the settings say; the number of events."""
    settings = get_settings()
    if settings.generator_sender == "binding":
        bodies = _events(records)
        out.set(bodies)
        return len(bodies)
    return event_sender.send(records, settings.records_per_event)


@bp.function_name("GenerateTransactions")
@bp.route(route="transactions", auth_level=func.AuthLevel.FUNCTION)
@bp.event_hub_output(arg_name="out", event_hub_name="%EVENT_HUB_NAME%", connection="EventHubConnection")
@bp.cosmos_db_output(
    arg_name="history",
    connection="CosmosDBConnection",
    database_name="%COSMOS_DATABASE%",
    container_name="%COSMOS_HISTORY_CONTAINER%",
)
def generate_transactions(
    req: func.HttpRequest,
    # typing.List, not list: the worker refuses PEP 585 generics in binding annotations (README: worker).
    out: func.Out[typing.List[str]],  # noqa: UP006
    history: func.Out[func.DocumentList],
) -> func.HttpResponse:
    """POST /api/transactions?count=N[&mode=history]: send N labelled transactions and say how many.

    No `methods=` on the route: the host would answer other methods with a bare 404, and callers
    deserve the stable error code below.
    """
    if req.method != "POST":
        return error_response(405, "method_not_allowed", "use POST /api/transactions?count=N", {"Allow": "POST"})
    mode = req.params.get("mode") or "live"
    if mode not in ("live", "history"):
        return error_response(
            400, "invalid_mode", "mode must be 'live' (to Event Hubs) or 'history' (stored, unscored)"
        )
    limit = get_settings().max_generate_count
    raw = req.params.get("count")
    if raw is None or raw == "":
        count = min(DEFAULT_COUNT, limit)
    else:
        try:
            count = int(raw)
        except ValueError:
            return error_response(400, "invalid_count", f"count must be an integer between 1 and {limit}")
        if not 1 <= count <= limit:
            return error_response(400, "invalid_count", f"count must be an integer between 1 and {limit}")
    records, fraud = _generate(count)
    # An output binding is written by the host after the function returns; if that fails the caller
    # gets a 500, never a false count. The SDK sends before the reply, and says when it could not.
    events = 0
    if mode == "history":
        history.set(func.DocumentList(func.Document.from_dict(r) for r in records))
    else:
        try:
            events = _send(records, out)
        except event_sender.SendError as exc:
            logger.warning("generated transactions could not be sent: %s", exc)
            return error_response(503, "event_hubs_unavailable", "the event hub could not be reached; try again")
    logger.info("generated %d transactions in %d events (%d labelled fraud) in %s mode", count, events, fraud, mode)
    # "sent" stays the transaction count, as callers before envelopes read it.
    reply = {"sent": count, "transactions": count, "events": events, "labelled_fraud": fraud, "mode": mode}
    return func.HttpResponse(orjson.dumps(reply), status_code=200, mimetype=JSON)


@bp.function_name("GenerateTransactionsOnTimer")
@bp.timer_trigger(arg_name="timer", schedule="%GENERATOR_SCHEDULE%", run_on_startup=False, use_monitor=False)
@bp.event_hub_output(arg_name="out", event_hub_name="%EVENT_HUB_NAME%", connection="EventHubConnection")
def generate_on_timer(
    timer: func.TimerRequest,
    # typing.List, not list: the worker refuses PEP 585 generics in binding annotations (README: worker).
    out: func.Out[typing.List[str]],  # noqa: UP006
) -> None:
    """Send GENERATOR_TIMER_COUNT transactions per tick; 0 (the default) keeps the timer off."""
    count = get_settings().timer_count
    if count == 0:
        return
    records, fraud = _generate(count)
    events = _send(records, out)
    logger.info(
        "timer generated %d transactions in %d events (%d labelled fraud, past due: %s)",
        count,
        events,
        fraud,
        timer.past_due,
    )
