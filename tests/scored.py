"""Documents as the scorer writes them today, for tests of what reads them (Power BI rows, Fabric mapping)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def scored_documents(seed: int, count: int = 600, batch: int = 200) -> list[dict[str, Any]]:
    """`count` generated transactions scored by the bundled model in batches, accounts' history kept in memory."""
    from shared.behaviour.store import MemoryStateStore
    from shared.generation.generator import TransactionGenerator
    from shared.scoring.batch import score_batch
    from shared.scoring.events import EventBatch
    from shared.scoring.model import load_model

    model = load_model(ROOT / "model")
    transactions = TransactionGenerator(seed=seed).generate(count, now=datetime(2026, 11, 21, tzinfo=UTC))
    store = MemoryStateStore()
    docs: list[dict[str, Any]] = []
    for start in range(0, len(transactions), batch):
        bodies = [json.dumps(t).encode() for t in transactions[start : start + batch]]
        result = score_batch(EventBatch.of_bodies(bodies), model, store=store)
        docs.extend(result.scored)
    return docs
