"""A strict reader for the TMDL subset the semantic models in powerbi/ use, and their DAX references.

No TMDL parser is published for Python (the registries hold none that is maintained); Microsoft's own is
.NET's TmdlSerializer. This one follows the language page (learn.microsoft.com/analysis-services/tmdl/
tmdl-overview): tab indentation marks parent and child; `keyword name` declares an object, `= value` or an
indented block after `=` gives its default expression; `name: value` is a property and a bare `name` a true
flag; `///` lines describe the next object. Anything outside the subset below is refused with its file and
line, so a model saved by Power BI Desktop with new kinds of objects says what to add here rather than
passing unread. What it does not check (DAX and M syntax, evaluation) is listed in docs/powerbi.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

CHILDREN: Final[Mapping[str, frozenset[str]]] = {
    "": frozenset({"database", "model", "table", "expression", "relationship", "ref", "annotation"}),
    "model": frozenset({"dataAccessOptions", "annotation", "ref"}),
    "table": frozenset({"measure", "column", "partition", "annotation"}),
    "column": frozenset({"annotation"}),
    "measure": frozenset({"annotation"}),
    "expression": frozenset({"annotation"}),
    "partition": frozenset(),
    "database": frozenset(),
    "relationship": frozenset(),
    "dataAccessOptions": frozenset(),
    "annotation": frozenset(),
    "ref": frozenset(),
}
"""Which object kinds each kind may hold (the empty kind is a file's top level)."""
PROPERTIES: Final[Mapping[str, frozenset[str]]] = {
    "database": frozenset({"compatibilityLevel"}),
    "model": frozenset({"culture", "defaultPowerBIDataSourceVersion", "sourceQueryCulture"}),
    "dataAccessOptions": frozenset({"legacyRedirects", "returnErrorValuesAsNull"}),
    "table": frozenset({"lineageTag", "isHidden"}),
    "column": frozenset({"dataType", "formatString", "summarizeBy", "sourceColumn", "lineageTag", "isHidden"}),
    "measure": frozenset({"formatString", "lineageTag", "displayFolder", "isHidden"}),
    "partition": frozenset({"mode", "source"}),
    "expression": frozenset({"lineageTag", "queryGroup"}),
    "relationship": frozenset({"fromColumn", "toColumn", "crossFilteringBehavior", "isActive"}),
}
DATA_TYPES: Final = frozenset({"string", "int64", "double", "decimal", "dateTime", "boolean"})
EXPRESSION_PROPERTIES: Final = frozenset({"source"})
_NAME = r"(?:'(?:[^']|'')+'|[^\s'=:]+)"
_DECLARATION = re.compile(rf"^(?P<kind>\w+)(?: (?P<name>{_NAME}))?(?: = ?(?P<value>.*))?$")
_PROPERTY = re.compile(r"^(?P<name>\w+): (?P<value>.+)$")


class TmdlError(ValueError):
    """A TMDL file outside the subset this reader knows; the message names the file and line."""


@dataclass(frozen=True)
class Node:
    """One declared object: its kind, name, default expression, properties and children."""

    kind: str
    name: str
    value: str | None
    description: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def of(self, kind: str) -> Iterator[Node]:
        return (c for c in self.children if c.kind == kind)


def unquote(name: str) -> str:
    return name[1:-1].replace("''", "'") if name.startswith("'") else name


def _tabs(line: str) -> int:
    return len(line) - len(line.lstrip("\t"))


def _indent(line: str, where: str) -> int:
    stripped = line.lstrip("\t")
    if stripped.startswith(" "):
        raise TmdlError(f"{where}: indentation must be tabs")
    return len(line) - len(stripped)


def _block(lines: list[str], start: int, least: int, where: str) -> tuple[str, int]:
    """The multi-line expression from `start`: the lines indented `least` tabs or more, dedented."""
    end = start
    # Inside an expression, spaces may follow the tabs that place it (M and DAX keep their own layout).
    while end < len(lines) and (not lines[end].strip() or _tabs(lines[end]) >= least):
        end += 1
    body = lines[start:end]
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise TmdlError(f"{where}: '=' with nothing after it and no indented expression below")
    depth = min(_tabs(b) for b in body if b.strip())
    return "\n".join(b[depth:] for b in body), end


def parse(text: str, source: str = "<tmdl>") -> list[Node]:
    """The top-level objects of one TMDL document."""
    if text.startswith("\ufeff"):
        raise TmdlError(f"{source}: starts with a byte-order mark")
    lines = text.split("\n")
    root = Node("", "", None)
    stack: list[tuple[int, Node]] = [(-1, root)]
    description: list[str] = []
    i = 0
    while i < len(lines):
        line, where = lines[i], f"{source}:{i + 1}"
        i += 1
        if not line.strip():
            continue
        depth, content = _indent(line, where), line.strip()
        if line != line.rstrip():
            raise TmdlError(f"{where}: trailing whitespace")
        while stack[-1][0] >= depth:
            stack.pop()
        parent_depth, parent = stack[-1]
        if depth != parent_depth + 1:
            raise TmdlError(f"{where}: indented {depth} under an object at {parent_depth}")
        if content.startswith("///"):
            description.append(content[3:].strip())
            continue
        prop = _PROPERTY.match(content)
        name = re.split(r"[ :]", content, maxsplit=1)[0]
        if parent.kind and name in PROPERTIES.get(parent.kind, ()):
            if name in parent.properties:
                raise TmdlError(f"{where}: {parent.kind} {parent.name} sets {name} twice")
            if prop is not None:
                parent.properties[name] = prop["value"]
            elif content == name:
                parent.properties[name] = "true"
            elif name in EXPRESSION_PROPERTIES and content == f"{name} =":
                parent.properties[name], i = _block(lines, i, depth + 1, where)
            elif name in EXPRESSION_PROPERTIES and content.startswith(f"{name} = "):
                parent.properties[name] = content.removeprefix(f"{name} = ")
            else:
                raise TmdlError(f"{where}: cannot read property {content!r}")
            continue
        if content.startswith("ref table ") and "ref" in CHILDREN[parent.kind]:
            parent.children.append(Node("ref", unquote(content.removeprefix("ref table ")), None))
            continue
        found = _DECLARATION.match(content)
        if found is None or found["kind"] not in CHILDREN[parent.kind]:
            raise TmdlError(f"{where}: {name!r} is not known under {parent.kind or 'the top level'}")
        value = found["value"]
        if value == "":
            value, i = _block(lines, i, depth + 2, where)
        node = Node(found["kind"], unquote(found["name"] or ""), value, " ".join(description))
        description = []
        parent.children.append(node)
        stack.append((depth, node))
    return root.children


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, Node]
    measures: dict[str, str]
    source: str


@dataclass(frozen=True)
class SemanticModel:
    """The objects of one model's definition folder that the tests and the report checks read."""

    compatibility_level: int
    tables: dict[str, Table]
    expressions: dict[str, str]


def _unique(nodes: Iterator[Node], what: str, where: str) -> dict[str, Node]:
    out: dict[str, Node] = {}
    for node in nodes:
        if node.name in out:
            raise TmdlError(f"{where}: two {what} named {node.name!r}")
        out[node.name] = node
    return out


def _table(node: Node, where: str) -> Table:
    columns = _unique(node.of("column"), "columns", where)
    for column in columns.values():
        if column.properties.get("dataType") not in DATA_TYPES:
            raise TmdlError(f"{where}: column {column.name} has dataType {column.properties.get('dataType')!r}")
    measures = {n: m.value or "" for n, m in _unique(node.of("measure"), "measures", where).items()}
    if set(columns) & set(measures):
        raise TmdlError(f"{where}: {sorted(set(columns) & set(measures))} are both columns and measures")
    partitions = list(node.of("partition"))
    partition = partitions[0] if len(partitions) == 1 else None
    if partition is None or partition.value != "m" or "source" not in partition.properties:
        raise TmdlError(f"{where}: table {node.name} needs one `partition ... = m` with a `source =` query")
    return Table(node.name, columns, measures, partition.properties["source"])


def read_model(definition: Path) -> SemanticModel:
    """Read database.tmdl, model.tmdl, expressions.tmdl and every table model.tmdl refers to."""
    (database,) = parse((definition / "database.tmdl").read_text(encoding="utf-8"), "database.tmdl")
    top = parse((definition / "model.tmdl").read_text(encoding="utf-8"), "model.tmdl")
    if [n.kind for n in top if n.kind not in ("ref", "annotation")] != ["model"]:
        raise TmdlError("model.tmdl: holds one model, its annotations and its table references")
    tables: dict[str, Table] = {}
    for path in sorted((definition / "tables").glob("*.tmdl")):
        (node,) = parse(path.read_text(encoding="utf-8"), f"tables/{path.name}")
        if node.kind != "table" or path.stem != node.name:
            raise TmdlError(f"tables/{path.name}: holds {node.kind} {node.name!r}, not table {path.stem!r}")
        tables[node.name] = _table(node, f"tables/{path.name}")
    named = {n.name for n in top if n.kind == "ref"}
    if named != set(tables):
        raise TmdlError(f"model.tmdl refers to tables {sorted(named)}, tables/ holds {sorted(tables)}")
    expressions_file = definition / "expressions.tmdl"
    expressions = parse(expressions_file.read_text(encoding="utf-8"), "expressions.tmdl")
    return SemanticModel(
        int(database.properties["compatibilityLevel"]),
        tables,
        {e.name: e.value or "" for e in _unique(iter(expressions), "expressions", "expressions.tmdl").values()},
    )


_REFERENCE = re.compile(r"(?P<table>'(?:[^']|'')+'|\b\w+)?\[(?P<name>[^\]]+)\]")


def dax_references(expression: str) -> list[tuple[str | None, str]]:
    """(table, name) for each `Table[name]` and (None, name) for each bare `[measure]` in a DAX expression."""
    without_strings = re.sub(r'"(?:[^"]|"")*"', '""', expression)
    return [(unquote(m["table"]) if m["table"] else None, m["name"]) for m in _REFERENCE.finditer(without_strings)]
