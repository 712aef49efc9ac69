"""powerbi/: the project files against Microsoft's JSON schemas, and what Power BI Desktop refuses besides.

The schemas come from a local copy of microsoft/json-schemas (tools.pbip_check.schemas_dir); without it
these tests say how to get it and skip, except under CI=true, where they fail. Nothing is fetched, and
nothing here opens Power BI: docs/powerbi.md lists what only Desktop can tell.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.contract.schema import MERCHANT_FIELD
from shared.publishing.rows import ROW_SCHEMA
from tests.scored import scored_documents
from tools import pbip_check
from tools.tmdl import dax_references, read_model

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
POWERBI = ROOT / "powerbi"
HISTORY = POWERBI / "FraudHistory.Report"
LIVE = POWERBI / "FraudLive.Report"
TMDL_TYPES = {"String": "string", "DateTime": "dateTime", "Double": "double", "Int64": "int64", "Boolean": "boolean"}
DERIVED = {"top_reason", "reasons_text", "scored_date", "label_known_at", "known_fraud"}
"""Model columns computed in the query (from `reasons`, `scored_at` or the labels) rather than read."""
OPTIONAL = {MERCHANT_FIELD}
"""Document fields a sender may leave out: the query reads them as empty."""
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "dateTime": (str,),
    "double": (float, int),
    "int64": (int,),
    "boolean": (bool,),
}


@pytest.fixture(scope="module")
def schemas() -> Any:
    folder = pbip_check.schemas_dir()
    if folder is None:
        if os.environ.get("CI") == "true":
            pytest.fail(pbip_check.HOW_TO_GET)
        pytest.skip(pbip_check.HOW_TO_GET)
    return pbip_check.registry(folder)


@cache
def _model() -> Any:
    return read_model(POWERBI / "FraudHistory.SemanticModel" / "definition")


@cache
def _scored_documents() -> list[dict[str, Any]]:
    docs = scored_documents(seed=17)
    assert any(d["is_flagged"] for d in docs)
    return docs


def _copy(report: Path, tmp_path: Path) -> Path:
    target = tmp_path / report.name
    shutil.copytree(report, target)
    return target


def test_every_project_file_validates_against_the_schema_it_names(schemas: Any) -> None:
    """Each JSON file of both projects (.pbip, .pbir, .pbism, report, pages, visuals, extension) passes the
    schema of its own `$schema`, with every $ref resolved locally."""
    files = pbip_check.files()
    assert len(files) >= 40
    assert {p.suffix for p in files} == {".json", ".pbir", ".pbism", ".pbip"}
    problems = [p for path in files for p in pbip_check.schema_problems(path, schemas)]
    assert problems == []


def test_the_validator_catches_what_desktop_would_refuse(schemas: Any, tmp_path: Path) -> None:
    """A wrong type, an unknown property and a schema version absent from the copy are each reported."""
    visual = next(HISTORY.glob("definition/pages/*/visuals/*/visual.json"))
    broken = json.loads(visual.read_text(encoding="utf-8"))
    broken["position"]["x"] = "left"
    broken["visual"]["colour"] = "red"
    path = tmp_path / "visual.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    problems = pbip_check.schema_problems(path, schemas)
    assert any("position/x" in p for p in problems)
    assert any("'colour' was unexpected" in p for p in problems)
    broken = json.loads(visual.read_text(encoding="utf-8"))
    broken["$schema"] = broken["$schema"].replace("2.9.0", "9.9.9")
    path.write_text(json.dumps(broken), encoding="utf-8")
    assert "not in the local schemas" in pbip_check.schema_problems(path, schemas)[0]


def test_schemas_are_found_from_the_variable_or_above_a_clone_at_any_depth(tmp_path: Path) -> None:
    """POWERBI_SCHEMAS_DIR wins; else the first shared/powerbi-schemas above the repository; else none."""
    shared = tmp_path / "work" / "shared" / "powerbi-schemas"
    shared.mkdir(parents=True)
    clone = tmp_path / "work" / "ci" / "deep" / "repo"
    clone.mkdir(parents=True)
    assert pbip_check.schemas_dir(clone, {}) == shared
    assert pbip_check.schemas_dir(clone, {pbip_check.SCHEMAS_ENV: "/elsewhere"}) == Path("/elsewhere")
    assert pbip_check.schemas_dir(tmp_path / "lonely", {}) is None


def test_a_clone_of_a_local_checkout_finds_the_schemas_beside_its_origin(tmp_path: Path) -> None:
    """CI clones the working checkout elsewhere: the schemas beside the checkout it came from are found."""
    shared = tmp_path / "work" / "shared" / "powerbi-schemas"
    shared.mkdir(parents=True)
    origin = tmp_path / "work" / "main"
    origin.mkdir()
    clone = tmp_path / "elsewhere" / "clone"
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "config").write_text(f'[core]\n\tbare = false\n[remote "origin"]\n\turl = {origin}\n')
    assert pbip_check.schemas_dir(clone, {}) == shared
    (clone / ".git" / "config").write_text('[remote "origin"]\n\turl = https://example.invalid/repo.git\n')
    assert pbip_check.schemas_dir(clone, {}) is None


def test_every_file_is_utf8_without_a_byte_order_mark(tmp_path: Path) -> None:
    """Desktop reads PBIR and TMDL as UTF-8 without a BOM; a file with one is refused by the reader."""
    for path in sorted(p for p in POWERBI.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf"), path
        raw.decode("utf-8")
    bom = tmp_path / "report.json"
    bom.write_bytes(b"\xef\xbb\xbf{}")
    with pytest.raises(ValueError, match="byte-order mark"):
        pbip_check.read_json(bom)


def test_page_and_visual_names_are_20_hex_characters_matching_their_folders(tmp_path: Path) -> None:
    """Both reports pass; a visual renamed in its file (not its folder) and a page left out of pages.json fail."""
    assert pbip_check.name_problems(HISTORY) == []
    assert pbip_check.name_problems(LIVE) == []
    copy = _copy(HISTORY, tmp_path)
    visual = next(copy.glob("definition/pages/*/visuals/*/visual.json"))
    content = json.loads(visual.read_text(encoding="utf-8"))
    content["name"] = "Latest-Flagged"
    visual.write_text(json.dumps(content), encoding="utf-8")
    (copy / "definition" / "pages" / "0123456789abcdef0123").mkdir()
    problems = pbip_check.name_problems(copy)
    assert len(problems) == 2


def test_every_field_a_visual_filter_or_measure_names_exists() -> None:
    """History: the TMDL model's columns and measures, and each DAX reference in its measures. Live: the
    streaming model's columns (ROW_SCHEMA) and the report's own measures, whose DAX names those columns."""
    assert pbip_check.field_problems(HISTORY, pbip_check.history_fields()) == []
    assert pbip_check.field_problems(LIVE, pbip_check.live_fields()) == []
    (table,) = _model().tables.values()
    for name, dax in table.measures.items():
        for entity, ref in dax_references(dax):
            assert ref in (table.columns if entity else table.measures), f"{name}: {entity}[{ref}]"
    extension = pbip_check.read_json(LIVE / "definition" / "reportExtensions.json")
    (entity,) = extension["entities"]
    names = {m["name"] for m in entity["measures"]}
    for measure in entity["measures"]:
        for table_name, ref in dax_references(measure["expression"]):
            assert ref in (ROW_SCHEMA if table_name == "RealTimeData" else names), (measure["name"], ref)


def test_a_missing_field_is_reported(tmp_path: Path) -> None:
    """A visual naming a column the model lacks (a typo) is caught, through a filter's alias too."""
    copy = _copy(HISTORY, tmp_path)
    page = next(p for p in copy.glob("definition/pages/*/page.json") if "filterConfig" in p.read_text())
    page.write_text(page.read_text(encoding="utf-8").replace('"is_flagged"', '"is_flaged"'), encoding="utf-8")
    problems = pbip_check.field_problems(copy, pbip_check.history_fields())
    assert problems
    assert all("Scored[is_flaged]" in p for p in problems)


def test_model_columns_hold_row_schema_and_read_the_documents_the_scorer_writes() -> None:
    """One check for the three: every ROW_SCHEMA column is in the model with its type; every model column
    is a field of the scorer's own documents (with the JSON type its model type takes), an optional field
    of the contract, or derived in the query; the query reads exactly those fields and keeps those columns."""
    (table,) = _model().tables.values()
    types = {n: c.properties["dataType"] for n, c in table.columns.items()}
    assert {n: types.get(n) for n in ROW_SCHEMA} == {n: TMDL_TYPES[t] for n, t in ROW_SCHEMA.items()}
    read = [n for n in types if n not in DERIVED]
    for doc in _scored_documents():
        for name in read:
            if name in OPTIONAL and name not in doc:
                continue
            assert name in doc, f"scored documents have no {name!r}"
            if doc[name] is not None:
                assert isinstance(doc[name], JSON_TYPES[types[name]]), name
        assert isinstance(doc["reasons"], list)
    for name, column in table.columns.items():
        assert column.properties["sourceColumn"] == name
    expanded = re.search(r'ExpandRecordColumn\(Read, "Document", \{([^}]*)\}\)', table.source)
    assert expanded is not None
    assert re.findall(r'"(\w+)"', expanded[1]) == [*read, "reasons"]
    kept = re.search(r"SelectColumns\(KnownAt, \{([^}]*)\}\)", table.source)
    assert kept is not None
    assert re.findall(r'"(\w+)"', kept[1]) == list(types)


def test_the_source_is_two_parameters_and_no_key() -> None:
    """The account endpoint and database are parameters (the database defaulting to the templates'); no file
    holds a key or an account address; the connector is called with the parameters only."""
    expressions = _model().expressions
    for name in ("CosmosEndpoint", "CosmosDatabase"):
        assert "IsParameterQuery=true" in expressions[name]
    bicep = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    (database,) = re.findall(r'^"(\w+)" meta', expressions["CosmosDatabase"])
    assert f"param cosmosDatabaseName string = '{database}'" in bicep
    assert expressions["CosmosEndpoint"].startswith('"https://your-account.documents.azure.com:443/"')
    everything = "\n".join(p.read_text(encoding="utf-8") for p in POWERBI.rglob("*") if p.is_file())
    assert not re.search(r"AccountKey|key=|[A-Za-z0-9+/]{60,}==", everything)
    calls = re.findall(r"DocumentDB\.Contents\(([^)]*)\)", everything)
    assert sorted(calls) == ['CosmosEndpoint, CosmosDatabase, "labels"', 'CosmosEndpoint, CosmosDatabase, "scored"']


def test_labels_are_optional_and_left_joined_on_the_transaction_id() -> None:
    """No labels container reads as no labels; each scored row keeps its place whether labelled or not."""
    model = _model()
    assert "try Table.Buffer(Labels) otherwise Empty" in model.expressions["Labels"]
    (table,) = model.tables.values()
    assert 'NestedJoin(Day, {"id"}, Labels, {"transaction_id"}, "label", JoinKind.LeftOuter)' in table.source


def test_live_report_measures_are_the_layouts_dax_on_the_website_models_table() -> None:
    """The live report is bound by connection to the model the docs have users create, and its measures
    are the DAX of powerbi/report-layout.md, one for one."""
    pbir = pbip_check.read_json(LIVE / "definition.pbir")
    connection = pbir["datasetReference"]["byConnection"]["connectionString"]
    assert connection.startswith('Data Source="powerbi://api.powerbi.com/v1.0/myorg/')
    assert 'initial catalog="Fraud scoring"' in connection
    layout = (POWERBI / "report-layout.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```dax\n(.*?)```", layout, flags=re.DOTALL)
    documented = dict(line.split(" = ", 1) for line in block.strip().splitlines())
    (entity,) = pbip_check.read_json(LIVE / "definition" / "reportExtensions.json")["entities"]
    assert entity["name"] == "RealTimeData"
    assert {m["name"]: m["expression"] for m in entity["measures"]} == documented


def test_the_checker_runs_clean(capsys: pytest.CaptureFixture[str], schemas: Any) -> None:
    """`python -m tools.pbip_check`, the command docs/powerbi.md gives report authors, finds no problem."""
    assert pbip_check.main() == 0
    assert capsys.readouterr().out.strip().endswith(", 0 problems")
