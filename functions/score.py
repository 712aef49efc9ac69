"""Score stage: an Event Hubs batch in, scored and rejected documents out to Cosmos DB."""

from __future__ import annotations

import logging
import time

import azure.functions as func

from shared.contract import Rejection
from shared.model import FraudModel, LazyModel, ModelIntegrityError, load_model
from shared.scoring import IncomingEvent, reject_all, score_batch
from shared.settings import get_settings

logger = logging.getLogger(__name__)

bp = func.Blueprint()


def _load() -> FraudModel:
    settings = get_settings()
    return load_model(settings.model_dir, settings.threshold_override)


_model = LazyModel(_load)


def _partition_of(events: list[func.EventHubEvent]) -> str | None:
    # With cardinality=many, every event shares one trigger-metadata mapping holding the
    # PartitionContext of the batch (one batch never spans partitions).
    metadata = events[0].metadata or {}
    context = metadata.get("PartitionContext")
    if isinstance(context, dict) and context.get("PartitionId") is not None:
        return str(context["PartitionId"])
    return None


def to_incoming(events: list[func.EventHubEvent]) -> list[IncomingEvent]:
    """Strip the `azure.functions` wrapper so the domain code stays host-free."""
    if not events:
        return []
    partition = _partition_of(events)
    return [
        IncomingEvent(
            body=e.get_body(),
            enqueued_time=e.enqueued_time,
            partition=partition,
            sequence_number=e.sequence_number,
        )
        for e in events
    ]


@bp.function_name("ScoreTransactions")
@bp.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%EVENT_HUB_NAME%",
    connection="EventHubConnection",
    consumer_group="%EVENT_HUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
    # Raw bytes: with a string or JSON data type the host would decode bodies before we can
    # reject a bad one, and a single malformed event could fail the whole batch.
    data_type=func.DataType.BINARY,
)
@bp.cosmos_db_output(
    arg_name="scored",
    connection="CosmosDBConnection",
    database_name="%COSMOS_DATABASE%",
    container_name="%COSMOS_SCORED_CONTAINER%",
)
@bp.cosmos_db_output(
    arg_name="rejected",
    connection="CosmosDBConnection",
    database_name="%COSMOS_DATABASE%",
    container_name="%COSMOS_REJECTED_CONTAINER%",
)
def score_transactions(
    events: list[func.EventHubEvent],
    scored: func.Out[func.DocumentList],
    rejected: func.Out[func.DocumentList],
) -> None:
    """Score the batch with the bundled model; every event becomes one scored or rejected document."""
    started = time.perf_counter()
    incoming = to_incoming(events)
    try:
        result = score_batch(incoming, _model.get())
    except ModelIntegrityError:
        # Already logged once by LazyModel; keep the events rather than skipping them.
        result = reject_all(incoming, Rejection("model", "model_unavailable", "the model artifact failed its check"))
    scored.set(func.DocumentList(func.Document.from_dict(d) for d in result.scored))
    rejected.set(func.DocumentList(func.Document.from_dict(d) for d in result.rejected))
    logger.info(
        "scored %d events (%d flagged, %d rejected) in %.1f ms",
        len(result.scored),
        result.flagged,
        len(result.rejected),
        (time.perf_counter() - started) * 1000.0,
    )
