"""fabric/: the Eventhouse table, mapping and dashboard queries agree with the documents the app writes.

Nothing here runs KQL (no Fabric capacity on this machine); the files are read as text, as the Bicep
templates are in test_templates.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.powerbi import ROW_SCHEMA

pytestmark = pytest.mark.unit

FABRIC = Path(__file__).resolve().parents[2] / "fabric"
KQL_TYPES = {"String": "string", "DateTime": "datetime", "Double": "real", "Int64": "long", "Boolean": "bool"}
DERIVED = {"top_reason"}
"""Power BI row columns computed from `reasons` rather than stored (FraudRows() derives it)."""


def _commands() -> list[str]:
    """The management commands of eventhouse.kql, comments dropped, one string each."""
    text = "\n".join(line for line in (FABRIC / "eventhouse.kql").read_text().splitlines() if not line.startswith("//"))
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


def test_table_holds_every_power_bi_column_with_its_kql_type() -> None:
    """The Eventhouse table has the dashboard columns Power BI gets, typed alike, plus the reasons array."""
    table = _table()
    expected = {n: KQL_TYPES[t] for n, t in ROW_SCHEMA.items() if n not in DERIVED} | {"reasons": "dynamic"}
    assert table == expected


def test_mapping_reads_each_column_from_the_document_field_of_its_name() -> None:
    """Every column is mapped, from `$.<name>`, and every such field is one a scored document has."""
    from shared.powerbi import to_row

    mapping = _mapping()
    assert [m["column"] for m in mapping] == list(_table())
    for entry in mapping:
        assert entry["Properties"] == {"Path": f"$.{entry['column']}"}
    document_fields = {"reasons"} | {n for n in ROW_SCHEMA if n not in DERIVED}
    document = dict.fromkeys(document_fields, 1) | {"is_flagged": True, "reasons": [{"field": "amount"}]}
    assert to_row(document)["top_reason"] == "amount"


def test_view_and_function_deduplicate_and_derive_top_reason() -> None:
    """Replays collapse to one row per id; top_reason is the first reason's field; check rows are hidden."""
    commands = _commands()
    (view,) = [c for c in commands if c.startswith(".create-or-alter materialized-view")]
    assert "summarize arg_max(scored_at, *) by id" in view
    (function,) = [c for c in commands if c.startswith(".create-or-alter function")]
    assert "FraudRows()" in function
    assert "top_reason = tostring(reasons[0].field)" in function
    assert 'id != "provisioning-check"' in function


def test_dashboard_queries_name_only_existing_columns() -> None:
    """Every tile reads FraudRows() and uses columns it has (or ones the query itself defines)."""
    text = (FABRIC / "dashboard.kql").read_text()
    tiles = [t for t in text.split("\n\n") if t.startswith("// tile: ")]
    assert len(tiles) == 7
    known = set(_table()) | DERIVED
    for tile in tiles:
        title, query = tile.split("\n", 1)
        assert re.fullmatch(r"// tile: [^|]+ \| [a-z ]+", title), title
        assert query.startswith("FraudRows()")
        defined = set(re.findall(r"\b([A-Z]\w*) =", query))
        for name in re.findall(r"\b([a-z][a-z_]*[a-z])\b", query):
            if "_" in name:
                assert name in known | defined, f"{title}: unknown column {name}"
