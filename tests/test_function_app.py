"""The binding metadata the Functions host reads, as the azure-functions library produces it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


def _functions() -> dict[str, dict[str, Any]]:
    from devhost.bindings import indexed_functions

    functions: dict[str, dict[str, Any]] = {
        name: json.loads(fn.get_function_json()) for name, fn in indexed_functions().items()
    }
    return functions


def _binding(function: dict[str, Any], name: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [b for b in function["bindings"] if b["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


def test_app_indexes_every_stage() -> None:
    """Five functions, each with an explicit name, from the four blueprints."""
    assert set(_functions()) == {
        "GenerateTransactions",
        "GenerateTransactionsOnTimer",
        "ScoreTransactions",
        "PublishToPowerBI",
        "ScoreRequest",
    }


def test_http_generator_bindings() -> None:
    """Function-key HTTP trigger on /api/transactions, all methods routed to our handler, Event Hubs out."""
    fn = _functions()["GenerateTransactions"]
    trigger = _binding(fn, "req")
    assert trigger["type"] == "httpTrigger"
    assert trigger["direction"] == "IN"
    assert trigger["authLevel"] == "FUNCTION"
    assert trigger["route"] == "transactions"
    assert "methods" not in trigger or not trigger["methods"]
    out = _binding(fn, "out")
    assert out == {
        "type": "eventHub",
        "direction": "OUT",
        "name": "out",
        "connection": "EventHubConnection",
        "eventHubName": "%EVENT_HUB_NAME%",
    }


def test_http_generator_history_output() -> None:
    """History mode writes through a Cosmos DB output to its own container."""
    history = _binding(_functions()["GenerateTransactions"], "history")
    assert history["type"] == "cosmosDB"
    assert history["direction"] == "OUT"
    assert history["connection"] == "CosmosDBConnection"
    assert history["containerName"] == "%COSMOS_HISTORY_CONTAINER%"


def test_score_endpoint_bindings() -> None:
    """POST /api/score behind a function key, HTTP response out."""
    fn = _functions()["ScoreRequest"]
    trigger = _binding(fn, "req")
    assert trigger["type"] == "httpTrigger"
    assert trigger["authLevel"] == "FUNCTION"
    assert trigger["route"] == "score"
    assert _binding(fn, "$return")["type"] == "http"


def test_timer_generator_bindings() -> None:
    """Schedule from an app setting, never run on startup, Event Hubs out."""
    fn = _functions()["GenerateTransactionsOnTimer"]
    timer = _binding(fn, "timer")
    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == "%GENERATOR_SCHEDULE%"
    assert timer["runOnStartup"] is False
    assert _binding(fn, "out")["eventHubName"] == "%EVENT_HUB_NAME%"


def test_scorer_bindings() -> None:
    """Batched binary Event Hubs trigger with a configurable consumer group; two Cosmos DB outputs."""
    fn = _functions()["ScoreTransactions"]
    trigger = _binding(fn, "events")
    assert trigger["type"] == "eventHubTrigger"
    assert trigger["direction"] == "IN"
    assert trigger["cardinality"].lower() == "many"  # the library writes enum names; the host ignores case
    assert trigger["dataType"].lower() == "binary"
    assert trigger["connection"] == "EventHubConnection"
    assert trigger["eventHubName"] == "%EVENT_HUB_NAME%"
    assert trigger["consumerGroup"] == "%EVENT_HUB_CONSUMER_GROUP%"
    for name, container in (("scored", "%COSMOS_SCORED_CONTAINER%"), ("rejected", "%COSMOS_REJECTED_CONTAINER%")):
        out = _binding(fn, name)
        assert out["type"] == "cosmosDB"
        assert out["direction"] == "OUT"
        assert out["connection"] == "CosmosDBConnection"
        assert out["databaseName"] == "%COSMOS_DATABASE%"
        assert out["containerName"] == container


def test_publisher_bindings() -> None:
    """Change-feed trigger on the scored container with its own lease container."""
    fn = _functions()["PublishToPowerBI"]
    trigger = _binding(fn, "documents")
    assert trigger["type"] == "cosmosDBTrigger"
    assert trigger["direction"] == "IN"
    assert trigger["connection"] == "CosmosDBConnection"
    assert trigger["databaseName"] == "%COSMOS_DATABASE%"
    assert trigger["containerName"] == "%COSMOS_SCORED_CONTAINER%"
    assert trigger["leaseContainerName"] == "%COSMOS_LEASE_CONTAINER%"


def test_every_setting_placeholder_is_in_the_example() -> None:
    """Each %SETTING% a binding names is listed in local.settings.json.example, with identity forms shown."""
    example = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    text = json.dumps(_functions())

    for setting in set(re.findall(r"%([A-Z_]+)%", text)):
        assert setting in example, setting
    assert "EventHubConnection__fullyQualifiedNamespace" in example
    assert "CosmosDBConnection__accountEndpoint" in example


def test_importing_the_app_reads_no_model() -> None:
    """Indexing never touches the artifact: a broken model cannot turn into '0 functions loaded'."""
    code = (
        "import sys, function_app; "
        "assert 'xgboost' not in sys.modules, 'xgboost imported at indexing'; "
        "print(len(function_app.app.get_functions()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "5"
