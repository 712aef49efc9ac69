"""Retraining from history end to end: labelled documents in cosmosdb-server in, a verified model and its card out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devhost.cosmos_store import HISTORY, CosmosStore
from model.training.report import MODEL_CARD_NAME, PLOT_NAMES, PLOTS_DIR
from model.training.train import main
from shared.generation.generator import TransactionGenerator
from shared.scoring.model import METADATA_NAME, load_model
from tests.integration.cosmos_server import CosmosServer

pytestmark = pytest.mark.integration

# Upserts cost ~1.5-2 ms each against cosmosdb-server, so 5,000 documents keep this test near 10 s
# while still giving every split enough fraud (about 100 per split) to fit and threshold on.
HISTORY_DOCUMENTS = 5_000


def test_main_trains_from_cosmos_history(cosmos_server: CosmosServer, cosmos_sink: CosmosStore, tmp_path: Path) -> None:
    """`python -m model.training.train --history-endpoint ...` reads the container, trains and records the source."""
    documents: list[dict[str, Any]] = TransactionGenerator(fraud_rate=0.10, seed=2024, accounts=40).generate(
        HISTORY_DOCUMENTS
    )
    unlabelled = {**documents[0], "id": "unlabelled-1", "is_fraud": None}
    broken = {**documents[1], "id": "broken-1", "amount": -5}
    cosmos_sink.upsert(HISTORY, [*documents, unlabelled, broken])

    main(
        [
            "--history-endpoint",
            cosmos_server.endpoint,
            "--history-database",
            cosmos_sink.database_name,
            "--history-container",
            HISTORY,
            "--history-key",
            cosmos_server.key,
            "--history-insecure-local-tls",
            "--out-dir",
            str(tmp_path),
        ]
    )

    text = (tmp_path / METADATA_NAME).read_text(encoding="utf-8")
    metadata = json.loads(text)
    data = metadata["training_data"]
    assert data["source"] == "cosmos_history"
    assert (data["endpoint"], data["database"], data["container"]) == (
        cosmos_server.endpoint,
        cosmos_sink.database_name,
        HISTORY,
    )
    assert data["auth"] == "account key"
    assert (data["documents_read"], data["documents_used"], data["documents_skipped"]) == (
        HISTORY_DOCUMENTS + 2,
        HISTORY_DOCUMENTS,
        2,
    )
    assert data["skipped_by_reason"] == {"amount:out_of_range": 1, "is_fraud:missing": 1}
    assert data["n_samples"] == HISTORY_DOCUMENTS
    assert data["observed_fraud_rate"] == pytest.approx(sum(d["is_fraud"] for d in documents) / HISTORY_DOCUMENTS)
    assert set(metadata["baselines"]) == {"gradient_boosting", "logistic_regression", "static_xgboost"}

    card = (tmp_path / MODEL_CARD_NAME).read_text(encoding="utf-8")
    assert f"`{cosmos_sink.database_name}/{HISTORY}`" in card
    assert all((tmp_path / PLOTS_DIR / name).is_file() for name in PLOT_NAMES)
    assert cosmos_server.key not in text
    assert cosmos_server.key not in card
    model = load_model(tmp_path)
    assert model.version == metadata["version"]
