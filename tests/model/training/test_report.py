"""Tests for model/training/report.py: the model card does not depend on how the metadata was stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model.training.baselines import BASELINES
from model.training.report import OURS, model_card, model_names
from shared.scoring.model import METADATA_NAME

pytestmark = pytest.mark.unit

MODEL_DIR = Path(__file__).resolve().parents[3] / "model"


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    """The bundled model's metadata, as its JSON file keeps it (keys sorted)."""
    loaded: dict[str, Any] = json.loads((MODEL_DIR / METADATA_NAME).read_text(encoding="utf-8"))
    return loaded


def test_models_are_listed_ours_first_then_in_baseline_order(metadata: dict[str, Any]) -> None:
    """Whatever order the JSON file keeps the baselines in, the card lists them as `BASELINES` does."""
    assert list(model_names(metadata)) == [OURS, *(b.key for b in BASELINES)]


def test_card_is_the_same_before_and_after_the_json_round_trip(metadata: dict[str, Any]) -> None:
    """The card `main()` writes from the in-memory metadata equals the one regenerated from the file."""
    in_memory = {**metadata, "baselines": {b.key: metadata["baselines"][b.key] for b in BASELINES}}
    assert model_card(in_memory) == model_card(json.loads(json.dumps(in_memory, sort_keys=True)))


def test_card_names_the_more_history_multiple_it_has(metadata: dict[str, Any]) -> None:
    """The evaluation note quotes the reference the metadata holds, and none when training skipped it."""
    unknown, more = metadata["references"]["history_unknown"], metadata["references"]["xgboost_5x"]
    assert "trained on 5x more history" in model_card(metadata)
    twice = {**metadata, "references": {"history_unknown": unknown, "xgboost_2x": more}}
    assert "trained on 2x more history (the training stretch of 1x as many" in model_card(twice)
    skipped = model_card({**metadata, "references": {"history_unknown": unknown}})
    assert "more history" not in skipped


def test_card_holds_the_independent_benchmark_only_when_measured(metadata: dict[str, Any]) -> None:
    """The benchmark's tables go in under their own heading when `make train --benchmark` measured them."""
    heading = "## Independent benchmark: the ULB handbook's simulator and protocol"
    assert heading not in model_card({k: v for k, v in metadata.items() if k != "benchmark"})
    measured = {**metadata, "benchmark": {"markdown": ["### The models on the test week", "", "| Ours | 0.856 |"]}}
    card = model_card(measured)
    assert heading in card
    assert card.index(heading) < card.index("### The models on the test week") < card.index("## Threshold")
