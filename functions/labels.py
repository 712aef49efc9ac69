"""Labels stage: confirmed outcomes in over HTTP (`RecordLabels`), aggregated into merchant risk states on a timer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.functions as func
import orjson

from functions.http import JSON, error_response
from shared.behaviour.merchant_store import MerchantStateUnavailableError, MerchantStateWriteError, get_merchant_store
from shared.labels import contract, intake
from shared.labels.aggregate import aggregate, day_of
from shared.labels.store import LabelStoreUnavailableError, get_label_store
from shared.scoring.documents import utc_iso
from shared.scoring.request import RequestError
from shared.settings import get_settings

logger = logging.getLogger(__name__)

bp = func.Blueprint()


def utc_now() -> datetime:
    """The server's clock: when a label is recorded, and which known days are complete."""
    return datetime.now(UTC)


@bp.function_name("RecordLabels")
@bp.route(route="labels", auth_level=func.AuthLevel.FUNCTION)
@bp.cosmos_db_output(
    arg_name="rejected",
    connection="CosmosDBConnection",
    database_name="%COSMOS_DATABASE%",
    container_name="%COSMOS_REJECTED_CONTAINER%",
)
def record_labels(req: func.HttpRequest, rejected: func.Out[func.DocumentList]) -> func.HttpResponse:
    """POST one label or `{"records": [...]}`: 200 with what was stored, duplicated and rejected (and why).

    Rejected labels also go to the `rejected` container (the host writes it after this returns; if
    that fails the caller gets a 500, never a false answer). No `methods=` on the route, so a wrong
    method gets our error code rather than the host's 404.
    """
    if req.method != "POST":
        return error_response(
            405, "method_not_allowed", 'POST a label or {"records": [...]} to /api/labels', {"Allow": "POST"}
        )
    store = get_label_store()
    if store is None:
        return error_response(503, "label_store_off", "labels are not accepted here: LABEL_STORE is off")
    settings = get_settings()
    limits = contract.Limits(
        settings.max_event_bytes, settings.max_records_per_envelope, settings.event_time_max_early_hours * 3_600_000
    )
    body = req.get_body()
    try:
        records, enveloped = contract.parse(body, req.headers.get("Content-Type"), limits)
    except RequestError as exc:
        return error_response(exc.status, exc.code, exc.message)
    try:
        result = intake.record(records, body, enveloped, store, utc_now(), limits.max_early_ms)
    except Exception:
        # The boundary: a bug of ours is a 500 with a stable code and nothing of the exception in it.
        logger.exception("recording a request of %d labels failed", len(records))
        return error_response(500, "internal_error", "recording failed; the error is logged, send the labels again")
    if result.rejected_documents:
        rejected.set(func.DocumentList(result.rejected_documents))
    logger.info(
        "labels: %d stored, %d duplicates, %d rejected, %d unconfirmed",
        result.stored,
        result.duplicates,
        len(result.rejected),
        len(result.unconfirmed),
    )
    answer = result.answer()
    if result.unconfirmed:
        answer["error"] = {
            "code": "label_store_unavailable",
            "message": "the label store did not confirm the labels listed in 'unconfirmed'; send them again",
        }
        headers = {"Retry-After": str(intake.RETRY_AFTER_S)}
        return func.HttpResponse(orjson.dumps(answer), status_code=503, mimetype=JSON, headers=headers)
    return func.HttpResponse(orjson.dumps(answer), status_code=200, mimetype=JSON)


@bp.function_name("AggregateLabels")
# Safe at any time and any number of times (shared/labels/aggregate.py), so the host need not track
# missed schedules (use_monitor): a late run catches up on every complete day not yet applied.
@bp.timer_trigger(arg_name="timer", schedule="%LABEL_AGGREGATION_SCHEDULE%", run_on_startup=False, use_monitor=False)
def aggregate_labels(timer: func.TimerRequest) -> None:
    """Apply every complete known day's labels to the merchants' states, in order, then record the progress."""
    labels, merchants = get_label_store(), get_merchant_store()
    if labels is None or merchants is None:
        logger.info("label aggregation idle: LABEL_STORE or MERCHANT_STATE is off")
        return
    now = utc_now()
    try:
        report = aggregate(labels, merchants, day_of(now), utc_iso(now))
    except (LabelStoreUnavailableError, MerchantStateUnavailableError, MerchantStateWriteError):
        # Raised on, so the invocation shows as failed; the progress holds and the next run resumes there.
        logger.warning("label aggregation stopped; the next run resumes after the last complete day applied")
        raise
    logger.info(
        "label aggregation applied %d known days (through %s, past due: %s)",
        len(report.days),
        report.through,
        timer.past_due,
    )
