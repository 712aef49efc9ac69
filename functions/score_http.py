"""Score endpoint: POST /api/score for clients of the Azure ML web service this app replaces."""

from __future__ import annotations

import logging

import azure.functions as func
import orjson

from functions.http import JSON, error_response
from shared.behaviour.merchant_store import get_merchant_store
from shared.behaviour.store import get_state_store
from shared.scoring import bundled
from shared.scoring.model import ModelIntegrityError
from shared.scoring.request import RequestError, parse, score_records
from shared.settings import get_settings

logger = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.function_name("ScoreRequest")
@bp.route(route="score", auth_level=func.AuthLevel.FUNCTION)
def score_request(req: func.HttpRequest) -> func.HttpResponse:
    """`{"data": [ {transaction}, ... ]}` in; probabilities, decisions and reasons out, in order.

    No `methods=` on the route, so a wrong method gets our error code rather than the host's 404.
    """
    if req.method != "POST":
        return error_response(405, "method_not_allowed", 'POST {"data": [...]} to /api/score', {"Allow": "POST"})
    try:
        records = parse(req.get_body(), req.headers.get("Content-Type"))
    except RequestError as exc:
        return error_response(exc.status, exc.code, exc.message)
    try:
        # The same lazily loaded, hash-checked model instance the Event Hubs scorer uses.
        model = bundled.bundled_model.get()
    except ModelIntegrityError:
        return error_response(503, "model_unavailable", "the model failed its integrity check; see the logs")
    # Off by default: the caller may not be the named account's bank (shared/scoring/request.py).
    figures = get_settings().score_api_reason_figures
    try:
        answer = score_records(
            records, model, store=get_state_store(), reason_figures=figures, merchant_store=get_merchant_store()
        )
    except Exception:
        # The boundary: a bug of ours is a 500 with a stable code and nothing of the exception in it.
        logger.exception("scoring a request of %d records failed", len(records))
        return error_response(500, "internal_error", "scoring failed; the error is logged and nothing was stored")
    errors = sum(1 for r in answer["results"] if "error" in r)
    logger.info("scored a request of %d records (%d with errors)", len(records), errors)
    return func.HttpResponse(orjson.dumps(answer), status_code=200, mimetype=JSON)
