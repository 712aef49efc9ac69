"""Generate stage: synthetic transactions to Event Hubs, on HTTP request or on a timer."""

from __future__ import annotations

import logging
from functools import cache

import azure.functions as func
import orjson

from shared.generator import TransactionGenerator
from shared.settings import get_settings

logger = logging.getLogger(__name__)

bp = func.Blueprint()

DEFAULT_COUNT = 100
_JSON = "application/json"


@cache
def _generator() -> TransactionGenerator:
    # One stream per process: with GENERATOR_SEED set, a restarted worker replays the same ids.
    settings = get_settings()
    return TransactionGenerator(fraud_rate=settings.fraud_rate, seed=settings.generator_seed)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return func.HttpResponse(body, status_code=status, mimetype=_JSON, headers=headers)


def _generate(count: int) -> tuple[list[str], int]:
    records = _generator().generate(count)
    return [orjson.dumps(r).decode() for r in records], sum(r["is_fraud"] for r in records)


@bp.function_name("GenerateTransactions")
@bp.route(route="transactions", auth_level=func.AuthLevel.FUNCTION)
@bp.event_hub_output(arg_name="out", event_hub_name="%EVENT_HUB_NAME%", connection="EventHubConnection")
def generate_transactions(req: func.HttpRequest, out: func.Out[list[str]]) -> func.HttpResponse:
    """POST /api/transactions?count=N: send N labelled transactions to Event Hubs and say how many.

    No `methods=` on the route: the host would answer other methods with a bare 404, and callers
    deserve the stable error code below.
    """
    if req.method != "POST":
        return _error(405, "method_not_allowed", "use POST /api/transactions?count=N", {"Allow": "POST"})
    limit = get_settings().max_generate_count
    raw = req.params.get("count")
    if raw is None or raw == "":
        count = min(DEFAULT_COUNT, limit)
    else:
        try:
            count = int(raw)
        except ValueError:
            return _error(400, "invalid_count", f"count must be an integer between 1 and {limit}")
        if not 1 <= count <= limit:
            return _error(400, "invalid_count", f"count must be an integer between 1 and {limit}")
    bodies, fraud = _generate(count)
    # The Event Hubs extension packs these into size-limited batches when the function returns;
    # if sending fails the invocation fails and the caller gets a 500, never a false "sent".
    out.set(bodies)
    logger.info("generated %d transactions (%d labelled fraud)", count, fraud)
    return func.HttpResponse(orjson.dumps({"sent": count, "labelled_fraud": fraud}), status_code=200, mimetype=_JSON)


@bp.function_name("GenerateTransactionsOnTimer")
@bp.timer_trigger(arg_name="timer", schedule="%GENERATOR_SCHEDULE%", run_on_startup=False, use_monitor=False)
@bp.event_hub_output(arg_name="out", event_hub_name="%EVENT_HUB_NAME%", connection="EventHubConnection")
def generate_on_timer(timer: func.TimerRequest, out: func.Out[list[str]]) -> None:
    """Send GENERATOR_TIMER_COUNT transactions per tick; 0 (the default) keeps the timer off."""
    count = get_settings().timer_count
    if count == 0:
        return
    bodies, fraud = _generate(count)
    out.set(bodies)
    logger.info("timer generated %d transactions (%d labelled fraud, past due: %s)", count, fraud, timer.past_due)
