"""The retraining path: history mode stores labelled transactions; training reads them back from Cosmos."""

from __future__ import annotations

import numpy as np
import pytest

from devhost.cosmos_store import HISTORY, CosmosStore
from devhost.worker import Worker
from model.training.labelled import read_history
from tests.integration.cosmos_server import CosmosServer
from tests.invoke import http

pytestmark = pytest.mark.integration


def test_history_round_trip(functions_worker: Worker, cosmos_server: CosmosServer, cosmos_sink: CosmosStore) -> None:
    """History documents written by the generator's Cosmos output read back as training columns."""
    reply = http(functions_worker, "GenerateTransactions", params={"count": "500", "mode": "history"})
    assert reply.status_code == 200
    written = reply.invocation.documents("history")
    cosmos_sink.upsert(HISTORY, written)
    unlabelled = {**written[0], "id": "unlabelled-1", "is_fraud": None}
    broken = {**written[1], "id": "broken-1", "amount": -5}
    cosmos_sink.upsert(HISTORY, [unlabelled, broken])

    loaded = read_history(
        cosmos_server.endpoint, cosmos_sink.database_name, HISTORY, key=cosmos_server.key, verify_tls=False
    )
    assert loaded.size == 500
    assert dict(loaded.skipped) == {"is_fraud:missing": 1, "amount:out_of_range": 1}
    by_id = {d["id"]: d for d in written}
    assert int(loaded.columns["is_fraud"].sum()) == sum(d["is_fraud"] for d in by_id.values())
    assert np.isclose(loaded.columns["amount"].sum(), sum(d["amount"] for d in by_id.values()))
    assert set(loaded.columns) >= {"amount", "month", "category_recipient", "transaction_type", "is_fraud"}
