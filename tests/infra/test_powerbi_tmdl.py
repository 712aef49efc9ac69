"""tools/tmdl.py: the strict TMDL reader reads the subset powerbi/ uses and refuses what it does not know."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.tmdl import TmdlError, dax_references, parse, read_model

pytestmark = pytest.mark.unit

TABLE = (
    "/// Rows.\n"
    "table 'Scored rows'\n"
    "\tmeasure 'Flag rate' =\n"
    "\t\t\tDIVIDE ( [Flagged], [Transactions] )\n"
    "\t\tformatString: 0.00%\n"
    "\n"
    "\tcolumn amount\n"
    "\t\tdataType: double\n"
    "\t\tisHidden\n"
    "\t\tsourceColumn: amount\n"
    "\n"
    "\t\tannotation SummarizationSetBy = Automatic\n"
    "\n"
    "\tpartition 'Scored rows' = m\n"
    "\t\tmode: import\n"
    "\t\tsource =\n"
    "\t\t\t\tlet\n"
    "\t\t\t\t    Source = 1\n"
    "\t\t\t\tin\n"
    "\t\t\t\t    Source\n"
)


def test_reads_objects_properties_flags_descriptions_and_multiline_expressions() -> None:
    """Quoted names, a multi-line measure, a bare flag, an annotation and an M partition read as written."""
    (table,) = parse(TABLE)
    assert (table.kind, table.name, table.description) == ("table", "Scored rows", "Rows.")
    (measure,) = table.of("measure")
    assert (measure.name, measure.value, measure.properties) == (
        "Flag rate",
        "DIVIDE ( [Flagged], [Transactions] )",
        {"formatString": "0.00%"},
    )
    (column,) = table.of("column")
    assert column.properties == {"dataType": "double", "isHidden": "true", "sourceColumn": "amount"}
    assert [(a.name, a.value) for a in column.of("annotation")] == [("SummarizationSetBy", "Automatic")]
    (partition,) = table.of("partition")
    assert partition.value == "m"
    assert partition.properties["source"] == "let\n    Source = 1\nin\n    Source"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\ufefftable T\n", "byte-order mark"),
        ("table T\n    column c\n", "indentation must be tabs"),
        ("table T\n\t\tcolumn c\n", "indented 2"),
        ("table T\n\tcalculationGroup\n", "'calculationGroup' is not known under table"),
        ("table T\n\tcolumn c\n\t\tdataCategory: Uri\n", "'dataCategory' is not known under column"),
        ("table T\n\tcolumn c\n\t\tdataType: string\n\t\tdataType: int64\n", "sets dataType twice"),
        ("table T\n\tmeasure m =\n\tcolumn c\n", "nothing after it"),
        ("table T \n", "trailing whitespace"),
    ],
)
def test_refuses_what_is_outside_the_subset(text: str, message: str) -> None:
    """Each refusal names the file and line, so a model re-saved by Desktop says what to teach the reader."""
    with pytest.raises(TmdlError, match=message):
        parse(text, "tables/T.tmdl")


def _folder(tmp_path: Path, table: str, ref: str = "ref table T") -> Path:
    (tmp_path / "tables").mkdir()
    (tmp_path / "database.tmdl").write_text("database\n\tcompatibilityLevel: 1567\n", encoding="utf-8")
    (tmp_path / "model.tmdl").write_text(f"model Model\n\tculture: en-US\n\n{ref}\n", encoding="utf-8")
    (tmp_path / "expressions.tmdl").write_text('expression P = "x" meta [IsParameterQuery=true]\n', encoding="utf-8")
    (tmp_path / "tables" / "T.tmdl").write_text(table, encoding="utf-8")
    return tmp_path


GOOD = (
    "table T\n\tcolumn c\n\t\tdataType: string\n\t\tsourceColumn: c\n\n"
    "\tpartition T = m\n\t\tmode: import\n\t\tsource = x\n"
)


def test_reads_a_model_folder(tmp_path: Path) -> None:
    model = read_model(_folder(tmp_path, GOOD))
    assert model.compatibility_level == 1567
    assert list(model.tables["T"].columns) == ["c"]
    assert model.tables["T"].source == "x"
    assert model.expressions == {"P": '"x" meta [IsParameterQuery=true]'}


@pytest.mark.parametrize(
    ("table", "ref", "message"),
    [
        (GOOD, "ref table U", "refers to tables"),
        (GOOD.replace("dataType: string", "dataType: text"), "ref table T", "dataType 'text'"),
        (GOOD + "\tcolumn c\n\t\tdataType: string\n", "ref table T", "two columns named 'c'"),
        ("table T\n\tcolumn c\n\t\tdataType: string\n", "ref table T", "needs one `partition"),
    ],
)
def test_refuses_an_inconsistent_model(tmp_path: Path, table: str, ref: str, message: str) -> None:
    with pytest.raises(TmdlError, match=message):
        read_model(_folder(tmp_path, table, ref))


def test_dax_references_skip_strings_and_unquote_tables() -> None:
    dax = "CALCULATE ( [Rows], 'Scored rows'[is_flagged] = TRUE (), T[x] = \"[not a field]\" )"
    assert dax_references(dax) == [(None, "Rows"), ("Scored rows", "is_flagged"), ("T", "x")]
