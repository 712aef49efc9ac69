"""PublishToPowerBI: the scored container's change feed, pushed to Power BI as rows.

Retry policy: the Cosmos DB trigger supports function-level retry policies, and without one it does
not re-deliver a batch whose execution raised: the lease checkpoints and the changes are gone.
https://learn.microsoft.com/azure/azure-functions/functions-bindings-error-pages#retries
https://learn.microsoft.com/azure/cosmos-db/nosql/troubleshoot-changefeed-functions
So the handler lets `PowerBIUnavailableError` escape (transient failures outlasted the client's own
retries) and the policy below re-runs the batch. While it waits, this lease's feed is held, which is
what we want during a Power BI outage; the retry count lives in instance memory, so it is best effort.
Definite rejections (a bad schema, a revoked key) are not raised: re-delivery cannot fix them.
"""

from __future__ import annotations

import functools
import logging

import azure.functions as func

from shared.publishing.push import PowerBIPushClient, PowerBIUnavailableError
from shared.publishing.rows import RowError, to_row
from shared.settings import get_settings

logger = logging.getLogger(__name__)

bp = func.Blueprint()


@functools.lru_cache(maxsize=1)
def _client(url: str, timeout_s: float) -> PowerBIPushClient:
    """One client per process (its pacing window must see every POST), rebuilt only if settings change."""
    return PowerBIPushClient(url, timeout_s)


@functools.cache
def _announce_publishing_off() -> None:
    logger.info("POWERBI_PUSH_URL is not set: publishing to Power BI is off")


@functools.cache
def _announce_unresolved_reference() -> None:
    logger.error(
        "POWERBI_PUSH_URL is an unresolved Key Vault reference: publishing to Power BI is off; "
        "give the app's identity the Key Vault Secrets User role on the vault"
    )


@bp.function_name("PublishToPowerBI")
@bp.retry(
    strategy="exponential_backoff",
    max_retry_count="5",
    minimum_interval="00:00:10",
    maximum_interval="00:05:00",
)
@bp.cosmos_db_trigger(
    arg_name="documents",
    connection="CosmosDBConnection",
    database_name="%COSMOS_DATABASE%",
    container_name="%COSMOS_SCORED_CONTAINER%",
    lease_container_name="%COSMOS_LEASE_CONTAINER%",
    # Identity-based connections cannot create containers; infrastructure creates the lease container.
    create_lease_container_if_not_exists=False,
    # Each invocation is at least one POST and a push dataset takes 120 POSTs a minute, so rows/s is
    # capped near 2 x this. 5,000 rows (~2 MB) per POST stays under the 10,000-row and 16 MB limits.
    max_items_per_invocation=5000,
)
def publish_to_powerbi(documents: func.DocumentList) -> None:
    """Map each scored document to a row and push the batch; a malformed document is set aside."""
    settings = get_settings()
    if settings.powerbi_url_unresolved:
        _announce_unresolved_reference()
        return
    if settings.powerbi_push_url is None:
        _announce_publishing_off()
        return

    rows = []
    skipped = 0
    for doc in documents:
        if settings.powerbi_flagged_only and not doc.get("is_flagged"):
            continue
        try:
            rows.append(to_row(doc))
        except RowError as exc:
            skipped += 1
            logger.warning("skipping scored document %s: %s", doc.get("id", "<no id>"), exc)

    client = _client(settings.powerbi_push_url, settings.powerbi_timeout_s)
    try:
        result = client.push(rows)
    except PowerBIUnavailableError as exc:
        logger.warning(
            "power bi unavailable: %d of %d rows sent; raising so the retry policy re-delivers %d documents",
            exc.rows_sent,
            len(rows),
            len(documents),
        )
        raise
    logger.info(
        "published %d of %d documents to power bi in %d posts (%d retries, %d rows dropped, %d skipped)",
        result.rows_sent,
        len(documents),
        result.posts,
        result.retries,
        result.rows_dropped,
        skipped,
    )
