"""fabric/workspace: the Fabric items read as fabric-cicd reads them, and agree with the documents the app writes.

Nothing here reaches Fabric (no capacity on this machine): fabric-cicd's own reader walks the item folders
with a credential that never leaves the process, and the definitions it would send are rebuilt with its own
replacement steps. KQL is read as text, as the Bicep templates are in test_templates.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from shared.publishing.rows import ROW_SCHEMA
from shared.scoring.encoding import CONTEXT_FEATURES
from tests.scored import scored_documents
from tools import deploy_fabric

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = ROOT / "fabric" / "workspace"
DATABASE = WORKSPACE / "FraudEventhouse.Eventhouse" / ".children" / "fraud.KQLDatabase"
KQL_TYPES = {"String": "string", "DateTime": "datetime", "Double": "real", "Int64": "long", "Boolean": "bool"}
DERIVED = {"top_reason", "reasons_text"}
"""Power BI row columns computed from `reasons` rather than stored (FraudRows() derives them)."""
DYNAMIC = {"reasons": "dynamic", "behaviour": "dynamic"}
"""Document fields the table keeps whole: the reasons list and the behavioural features it was scored with."""
EVENTSTREAM_CASTS = {"datetime": "DateTime", "real": "Float", "long": "BigInt"}
"""The Eventstream ManageFields cast for each KQL type that needs one (string, bool, dynamic pass as they are)."""
TARGET_WORKSPACE = "0c5c7e44-1f0a-4a55-8d0e-9f7c3f1b2a66"
CONNECTION = "5b1c6a52-8c3b-4a39-9d7e-0d3f7e0f2b11"


class OfflineCredential:
    """A token credential whose token is never sent: nothing in these tests calls the Fabric API."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("offline", 4_102_444_800)


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """fabric-cicd's FabricWorkspace over fabric/workspace, built by the deploy tool, items read."""
    import fabric_cicd.constants  # type: ignore[import-untyped]

    monkeypatch.setenv(deploy_fabric.CONNECTION_ENV, "unset")
    ws = deploy_fabric.fabric_workspace(TARGET_WORKSPACE, CONNECTION, OfflineCredential())
    ws._refresh_repository_items()
    yield ws
    fabric_cicd.constants.FEATURE_FLAG.discard("enable_environment_variable_replacement")


@cache
def _scored_documents() -> list[dict[str, Any]]:
    """Documents as the scorer writes them today: bundled model, accounts with history in memory."""
    docs = scored_documents(seed=11)
    assert any(d["is_flagged"] for d in docs)
    assert not all(d["is_flagged"] for d in docs)
    return docs


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _commands() -> list[str]:
    """The management commands of DatabaseSchema.kql, comments dropped, one string each."""
    lines = (DATABASE / "DatabaseSchema.kql").read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.startswith("//"))
    return [c.strip() for c in re.split(r"\n(?=\.)", text) if c.strip()]


def _table() -> dict[str, str]:
    (command,) = [c for c in _commands() if c.startswith(".create-merge table ScoredTransactions")]
    body = command[command.index("(") + 1 : command.rindex(")")]
    columns = {}
    for part in body.split(","):
        name, kind = (s.strip() for s in part.split(":"))
        columns[name.removeprefix("['").removesuffix("']")] = kind
    return columns


def _mapping() -> list[dict[str, object]]:
    (command,) = [c for c in _commands() if "ingestion json mapping" in c]
    pieces = re.findall(r"^'(.*)'$", command, flags=re.MULTILINE)
    parsed: list[dict[str, object]] = json.loads("".join(pieces))
    return parsed


def _built(ws: Any, item_type: str, name: str, path: str) -> dict[str, Any]:
    """One definition part as fabric-cicd would send it, every item deployed under a made-up id."""
    for kind, items in ws.repository_items.items():
        for item in items.values():
            item.guid = f"deployed-{kind}"
    item = ws.repository_items[item_type][name]
    (part,) = [f for f in item.item_files if f.relative_path == path]
    text = ws._replace_logical_ids(part.contents)
    part.contents = text
    text = ws._replace_parameters(part, item)
    loaded: dict[str, Any] = json.loads(ws._replace_workspace_ids(text, item))
    return loaded


def test_table_holds_every_power_bi_column_with_its_kql_type() -> None:
    """The Eventhouse table has the dashboard columns Power BI gets, typed alike, plus reasons and behaviour."""
    expected = {n: KQL_TYPES[t] for n, t in ROW_SCHEMA.items() if n not in DERIVED} | DYNAMIC
    assert _table() == expected


def test_mapping_reads_each_column_from_the_document_field_of_its_name() -> None:
    """Every column is mapped, from `$.<name>`, and every such field is one the scorer's documents have,
    flagged or not, with the JSON type the column's KQL type takes."""
    mapping = _mapping()
    assert [m["column"] for m in mapping] == list(_table())
    for entry in mapping:
        assert entry["Properties"] == {"Path": f"$.{entry['column']}"}
    json_types: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "datetime": (str,),
        "real": (float, int),
        "long": (int,),
        "bool": (bool,),
        "dynamic": (list, dict),
    }
    for doc in _scored_documents():
        for column, kind in _table().items():
            assert column in doc, f"scored documents have no {column!r}"
            if doc[column] is not None:
                assert isinstance(doc[column], json_types[kind]), (column, kind)
        assert list(doc["behaviour"]) == list(CONTEXT_FEATURES)
        assert all(isinstance(v, float | int) for v in doc["behaviour"].values())


def test_schema_script_uses_only_commands_fabric_runs_again_on_every_deployment() -> None:
    """DatabaseSchema.kql runs on each deployment: only the idempotent commands Fabric documents for it, and
    no `backfill`, which Kusto refuses once the view exists."""
    allowed = (
        r"\.create-merge table \w+ \(",
        r"\.create-or-alter table \w+ ingestion json mapping \"\w+\"",
        r"\.create-or-alter materialized-view \w+ on table \w+",
        r"\.create-or-alter function with \(docstring = \"[^\"]*\"\) \w+\(\)",
    )
    commands = _commands()
    assert len(commands) == len(allowed)
    for command, pattern in zip(commands, allowed, strict=True):
        assert re.match(pattern, command), command.splitlines()[0]
    assert "backfill" not in "\n".join(commands)


def test_view_and_function_deduplicate_and_derive_the_reason_columns() -> None:
    """Replays collapse to one row per id; top_reason is the first reason's field; reasons_text reads as
    many reasons as the scorer keeps, words first, field as the fallback; check rows are hidden."""
    commands = _commands()
    (view,) = [c for c in commands if c.startswith(".create-or-alter materialized-view")]
    assert "summarize arg_max(scored_at, *) by id" in view
    (function,) = [c for c in commands if c.startswith(".create-or-alter function")]
    assert 'materialized_view("ScoredLatest")' in function
    assert "top_reason = tostring(reasons[0].field)" in function
    assert 'id != "provisioning-check"' in function
    derived = re.findall(r"coalesce\(tostring\(reasons\[(\d)\]\.text\), tostring\(reasons\[(\d)\]\.field\)\)", function)
    kept = max(len(d["reasons"]) for d in _scored_documents())
    assert kept >= 1
    assert [(str(i), str(i)) for i in range(3)] == derived
    assert kept <= len(derived)
    assert 'reasons_text = trim_end(@"(; )+", strcat_delim("; ",' in function


def test_reasons_text_in_kql_reads_like_the_power_bi_column() -> None:
    """The KQL derivation, replayed in Python on real documents, gives what shared.publishing.rows makes."""
    from shared.publishing.rows import REASONS_SEPARATOR, to_row

    assert REASONS_SEPARATOR == "; "
    for doc in _scored_documents():
        slots = [doc["reasons"][i] if i < len(doc["reasons"]) else {} for i in range(3)]
        words = [str(r.get("text") or r.get("field") or "") for r in slots]
        kql = re.sub(r"(; )+$", "", "; ".join(words))
        assert kql == to_row(doc)["reasons_text"]


def test_fabric_cicd_finds_the_four_items_and_the_database_under_its_eventhouse(workspace: Any) -> None:
    """Each folder is an item fabric-cicd publishes, with a unique logical id; the KQL database sits in
    the Eventhouse's .children, names that Eventhouse as its parent, and is excluded from its payload."""
    import fabric_cicd.constants

    found = {kind: sorted(items) for kind, items in workspace.repository_items.items()}
    assert found == {
        "Eventhouse": ["FraudEventhouse"],
        "KQLDatabase": ["fraud"],
        "Eventstream": ["FraudScoredStream"],
        "KQLDashboard": ["FraudLiveDashboard"],
    }
    assert set(found) == set(deploy_fabric.ITEM_TYPES)
    items = [i for kind in workspace.repository_items.values() for i in kind.values()]
    assert len({i.logical_id for i in items}) == len(items)
    eventhouse = workspace.repository_items["Eventhouse"]["FraudEventhouse"]
    database = workspace.repository_items["KQLDatabase"]["fraud"]
    assert _json(DATABASE / "DatabaseProperties.json")["parentEventhouseItemId"] == eventhouse.logical_id
    assert database.folder_path == ""  # the workspace root, not a folder named after the Eventhouse
    exclude = fabric_cicd.constants.EXCLUDE_PATH_REGEX_MAPPING["Eventhouse"]
    sent = [f.relative_path for f in eventhouse.item_files if not re.match(exclude, f.relative_path)]
    assert sent == [".platform"]


def test_eventstream_reads_the_scored_container_into_the_deployed_database(workspace: Any) -> None:
    """As published: the source is the `scored` container of the database the templates create, through
    the connection given at deploy time; the destination is the deployed KQL database in the target workspace."""
    bicep = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    built = _built(workspace, "Eventstream", "FraudScoredStream", "eventstream.json")
    (source,) = built["sources"]
    assert source["type"] == "AzureCosmosDBCDC"
    assert source["properties"]["dataConnectionId"] == CONNECTION
    assert f"param cosmosDatabaseName string = '{source['properties']['databaseName']}'" in bicep
    assert f"param cosmosScoredContainerName string = '{source['properties']['containerName']}'" in bicep
    (destination,) = built["destinations"]
    props = destination["properties"]
    assert props["itemId"] == "deployed-KQLDatabase"
    assert props["workspaceId"] == TARGET_WORKSPACE
    assert props["databaseName"] == "fraud"
    assert props["tableName"] == "ScoredTransactions"


def test_eventstream_passes_exactly_the_table_columns_with_their_types() -> None:
    """Balances, income and family fields stay in Cosmos DB: the ManageFields step keeps the table's columns,
    cast where the KQL type needs it, and the graph runs source -> stream -> fields -> destination."""
    graph = _json(WORKSPACE / "FraudScoredStream.Eventstream" / "eventstream.json")
    (operator,) = graph["operators"]
    kept = {c["alias"]: c["properties"].get("targetDataType") for c in operator["properties"]["columns"]}
    assert kept == {n: EVENTSTREAM_CASTS.get(k) for n, k in _table().items()}
    for column in operator["properties"]["columns"]:
        assert column["properties"]["column"]["columnName"] == column["alias"]
    (stream,) = graph["streams"]
    assert stream["inputNodes"] == [{"name": graph["sources"][0]["name"]}]
    assert operator["inputNodes"] == [{"name": stream["name"]}]
    assert graph["destinations"][0]["inputNodes"] == [{"name": operator["name"]}]


def test_dashboard_tiles_query_existing_columns_of_the_deployed_database(workspace: Any) -> None:
    """Every tile has a query on the one data source, which names the KQL database so fabric-cicd can fill
    its address; each query reads FraudRows(), the time range's variables and columns that exist."""
    dashboard = _json(WORKSPACE / "FraudLiveDashboard.KQLDashboard" / "RealTimeDashboard.json")
    (source,) = dashboard["dataSources"]
    database = workspace.repository_items["KQLDatabase"]["fraud"]
    assert (source["name"], source["database"], source["clusterUri"]) == ("fraud", database.logical_id, "")
    built = _built(workspace, "KQLDashboard", "FraudLiveDashboard", "RealTimeDashboard.json")
    assert built["dataSources"][0]["database"] == "deployed-KQLDatabase"
    assert built["dataSources"][0]["workspace"] == TARGET_WORKSPACE
    queries = {q["id"]: q for q in dashboard["queries"]}
    pages = {p["id"] for p in dashboard["pages"]}
    (time_range,) = dashboard["parameters"]
    variables = {time_range["beginVariableName"], time_range["endVariableName"]}
    known = set(_table()) | DERIVED
    assert len(dashboard["tiles"]) == 7
    for tile in dashboard["tiles"]:
        assert tile["pageId"] in pages
        query = queries[tile["queryRef"]["queryId"]]
        assert query["dataSource"]["dataSourceId"] == source["id"]
        text = query["text"]
        assert text.startswith("FraudRows()"), tile["title"]
        assert set(query["usedVariables"]) == variables
        assert all(v in text for v in variables)
        defined = set(re.findall(r"\b([A-Z]\w*) =", text))
        for name in re.findall(r"\b([a-z][a-z_]*[a-z])\b", text):
            if "_" in name and not name.startswith("_"):
                assert name in known | defined, f"{tile['title']}: unknown column {name}"
    assert set(queries) == {t["queryRef"]["queryId"] for t in dashboard["tiles"]}


def test_deploy_tool_dry_run_lists_the_items(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dry-run` reads the same folders fabric-cicd publishes and publishes nothing."""
    import fabric_cicd.constants

    monkeypatch.setenv(deploy_fabric.CONNECTION_ENV, CONNECTION)
    try:
        argv = ["--workspace-id", TARGET_WORKSPACE, "--dry-run"]
        assert deploy_fabric.main(argv, credential=OfflineCredential()) == 0
    finally:
        fabric_cicd.constants.FEATURE_FLAG.discard("enable_environment_variable_replacement")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "would publish Eventhouse FraudEventhouse",
        "would publish KQLDatabase fraud",
        "would publish Eventstream FraudScoredStream",
        "would publish KQLDashboard FraudLiveDashboard",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workspace-id", TARGET_WORKSPACE], "--cosmos-connection-id"),
        (["--workspace-id", "my workspace", "--cosmos-connection-id", CONNECTION], "not a GUID"),
        (["--workspace-id", TARGET_WORKSPACE, "--cosmos-connection-id", "key=abc"], "not a GUID"),
    ],
)
def test_deploy_tool_refuses_what_it_cannot_deploy(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No connection id, or values that are not ids (a name, a key): exit 2 before any sign-in."""
    monkeypatch.delenv(deploy_fabric.CONNECTION_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        deploy_fabric.main(argv, credential=OfflineCredential())
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
