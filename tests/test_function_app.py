"""The app as Azure's worker engine indexes it: what loads, what it refuses, and the binding metadata the host gets.

The metadata is read from the engine's FunctionMetadataResponse (`raw_bindings`), not from the library:
the engine's own checks (annotations, return types) run first, and only an app that passes them has metadata.
"""

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
    from devhost.worker import worker

    w = worker()
    return {name: {"bindings": w.bindings(name)} for name in w.function_ids}


def _binding(function: dict[str, Any], name: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [b for b in function["bindings"] if b["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


def test_app_indexes_every_stage() -> None:
    """The engine indexes and loads seven functions, each with an explicit name, from the five blueprints."""
    assert set(_functions()) == {
        "GenerateTransactions",
        "GenerateTransactionsOnTimer",
        "ScoreTransactions",
        "PublishToPowerBI",
        "ScoreRequest",
        "RecordLabels",
        "AggregateLabels",
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
    assert out.stdout.strip() == "7"


FIXTURE_APP = """
import typing

import azure.functions as func

app = func.FunctionApp()


@app.function_name("Fixture")
@app.event_hub_message_trigger(arg_name="events", event_hub_name="hub", connection="Conn", cardinality="many")
@app.event_hub_output(arg_name="out", event_hub_name="hub", connection="Conn")
def fixture(events: {events}, out: func.Out[{out}]) -> None:
    out.set([e.get_body().decode() for e in events])
"""


def _check_app(tmp_path: Path, events: str, out: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "function_app.py").write_text(FIXTURE_APP.format(events=events, out=out))
    return subprocess.run(
        [sys.executable, "-m", "devhost.worker", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, check=False
    )


@pytest.mark.parametrize(
    ("events", "out", "refused"),
    [
        ("list[func.EventHubEvent]", "typing.List[str]", "binding events has invalid non-type annotation"),
        ("typing.List[func.EventHubEvent]", "list[str]", "binding out has invalid non-type annotation"),
    ],
)
def test_engine_refuses_pep585_annotations(tmp_path: Path, events: str, out: str, refused: str) -> None:
    """A `list[...]` binding annotation makes the engine refuse the whole app, as Azure would: the check can fail."""
    result = _check_app(tmp_path, events, out)
    assert result.returncode == 1
    assert refused in result.stderr


def test_engine_accepts_typing_list(tmp_path: Path) -> None:
    """The same fixture app with `typing.List` loads: the refusal above is about the annotation alone."""
    result = _check_app(tmp_path, "typing.List[func.EventHubEvent]", "typing.List[str]")
    assert result.returncode == 0, result.stderr
    assert "1 functions indexed and loaded: Fixture" in result.stdout


def test_this_app_passes_the_engine_check() -> None:
    """`python -m devhost.worker` (what `make check` runs) loads this app's seven functions in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", "devhost.worker"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("7 functions indexed and loaded")
