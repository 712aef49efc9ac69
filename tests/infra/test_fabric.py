"""fabric/: the Eventhouse table, mapping and dashboard queries agree with the documents the app writes.

Nothing here runs KQL (no Fabric capacity on this machine); the files are read as text, as the Bicep
templates are in test_templates.py.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.behaviour.features import FEATURES
from shared.publishing.rows import ROW_SCHEMA
from tests.scored import scored_documents

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FABRIC = ROOT / "fabric"
KQL_TYPES = {"String": "string", "DateTime": "datetime", "Double": "real", "Int64": "long", "Boolean": "bool"}
DERIVED = {"top_reason", "reasons_text"}
"""Power BI row columns computed from `reasons` rather than stored (FraudRows() derives them)."""
DYNAMIC = {"reasons": "dynamic", "behaviour": "dynamic"}
"""Document fields the table keeps whole: the reasons list and the behavioural features it was scored with."""


@cache
def _scored_documents() -> list[dict[str, Any]]:
    """Documents as the scorer writes them today: bundled model, accounts with history in memory."""
    docs = scored_documents(seed=11)
    assert any(d["is_flagged"] for d in docs)
    assert not all(d["is_flagged"] for d in docs)
    return docs


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
    """The Eventhouse table has the dashboard columns Power BI gets, typed alike, plus reasons and behaviour."""
    table = _table()
    expected = {n: KQL_TYPES[t] for n, t in ROW_SCHEMA.items() if n not in DERIVED} | DYNAMIC
    assert table == expected


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
        assert list(doc["behaviour"]) == list(FEATURES)
        assert all(isinstance(v, float | int) for v in doc["behaviour"].values())


def test_view_and_function_deduplicate_and_derive_the_reason_columns() -> None:
    """Replays collapse to one row per id; top_reason is the first reason's field; reasons_text reads as
    many reasons as the scorer keeps, words first, field as the fallback; check rows are hidden."""
    commands = _commands()
    (view,) = [c for c in commands if c.startswith(".create-or-alter materialized-view")]
    assert "summarize arg_max(scored_at, *) by id" in view
    (function,) = [c for c in commands if c.startswith(".create-or-alter function")]
    assert "FraudRows()" in function
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
