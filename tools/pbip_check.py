"""Offline checks of the Power BI project in powerbi/: Microsoft's JSON schemas and what Desktop refuses besides.

    python -m tools.pbip_check            # after editing the reports, in Desktop or by hand

Every JSON file (including .pbir, .pbism, .pbip) is validated against the schema its `$schema` names, read
from a local copy of microsoft/json-schemas (POWERBI_SCHEMAS_DIR, else the first `shared/powerbi-schemas`
above the repository): nothing is fetched. Besides the schemas: UTF-8 without a byte-order mark, page and
visual names of 20 lowercase hex characters matching their folders and pages.json, and every field a visual,
filter or measure names existing in its model (the TMDL model for the history report, the streaming model's
columns, `shared.publishing.rows.ROW_SCHEMA`, and the report's own measures for the live one).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
POWERBI: Final = ROOT / "powerbi"
SCHEMA_PREFIX: Final = "https://developer.microsoft.com/json-schemas/"
SCHEMAS_ENV: Final = "POWERBI_SCHEMAS_DIR"
JSON_SUFFIXES: Final = (".json", ".pbir", ".pbism", ".pbip")
OBJECT_NAME: Final = re.compile(r"[0-9a-f]{20}")
HOW_TO_GET: Final = (
    "the PBIR JSON schemas were not found: set POWERBI_SCHEMAS_DIR to a copy of microsoft/json-schemas "
    "(its fabric/item/report, fabric/item/semanticModel, fabric/pbip and fabric/common folders), "
    "or place it as shared/powerbi-schemas beside the repository, as the team's shared folder has it"
)


def schemas_dir(root: Path = ROOT, environ: Mapping[str, str] = os.environ) -> Path | None:
    """POWERBI_SCHEMAS_DIR if set, else the first `shared/powerbi-schemas` above the repository, else None.

    A fresh clone of a local checkout (how CI clones this repository) also looks above the checkout it
    was cloned from (its `origin`, when that is a folder), where the team's shared folder sits.
    """
    if environ.get(SCHEMAS_ENV):
        return Path(environ[SCHEMAS_ENV])
    for start in (root, _local_origin(root)):
        if start is None:
            continue
        for parent in start.resolve().parents:
            candidate = parent / "shared" / "powerbi-schemas"
            if candidate.is_dir():
                return candidate
    return None


def _local_origin(root: Path) -> Path | None:
    """The folder `root` was cloned from, when its `origin` remote is a local path (None otherwise)."""
    config = root / ".git" / "config"
    if not config.is_file():
        return None
    section = False
    for line in config.read_text(encoding="utf-8", errors="replace").splitlines():
        text = line.strip()
        if text.startswith("["):
            section = text == '[remote "origin"]'
        elif section and text.startswith("url"):
            url = text.partition("=")[2].strip()
            url = url.removeprefix("file://")
            path = Path(url)
            return path if path.is_absolute() and path.is_dir() else None
    return None


def registry(folder: Path) -> Any:
    """Every schema in `folder`, under the address its path mirrors and under its own `$id`."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    resources = []
    for path in sorted(folder.rglob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resource = Resource.from_contents(contents, default_specification=DRAFT7)
        resources.append((SCHEMA_PREFIX + path.relative_to(folder).as_posix(), resource))
        # Some $id differ from the path (schema-embedded.json says schema.embedded.json): both must resolve.
        if isinstance(contents, dict) and contents.get("$id"):
            resources.append((contents["$id"], resource))
    return Registry().with_resources(resources)


def files(root: Path = POWERBI) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in JSON_SUFFIXES)


def read_json(path: Path) -> Any:
    """The file's JSON, refusing a byte-order mark or bytes that are not UTF-8."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ValueError(f"{path}: starts with a UTF-8 byte-order mark")
    return json.loads(raw.decode("utf-8"))


def schema_problems(path: Path, schemas: Any) -> list[str]:
    """Where `path` breaks the schema its `$schema` names (or names one not in the local copy)."""
    from jsonschema import Draft7Validator
    from referencing.exceptions import Unresolvable

    instance = read_json(path)
    url = instance.get("$schema") if isinstance(instance, dict) else None
    if not isinstance(url, str) or not url.startswith(SCHEMA_PREFIX):
        return [f"{path}: no $schema naming one of Microsoft's schemas"]
    try:
        schema = schemas.contents(url)
    except (LookupError, Unresolvable):
        return [f"{path}: {url} is not in the local schemas (write the file against the newest version there)"]
    validator = Draft7Validator(schema, registry=schemas)
    return [
        f"{path}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def name_problems(report: Path) -> list[str]:
    """Pages and visuals: 20 lowercase hex characters, the same as their folders; pages.json lists each page."""
    problems = []
    pages = report / "definition" / "pages"
    folders = sorted(p.name for p in pages.iterdir() if p.is_dir())
    for kind, paths in (("page", pages.glob("*/page.json")), ("visual", pages.glob("*/visuals/*/visual.json"))):
        for path in paths:
            name = read_json(path).get("name")
            if name != path.parent.name or not OBJECT_NAME.fullmatch(str(name)):
                problems.append(f"{path}: {kind} name {name!r} is not its folder's 20 lowercase hex characters")
    meta = read_json(pages / "pages.json")
    if sorted(meta.get("pageOrder", [])) != folders or meta.get("activePageName") not in folders:
        problems.append(f"{pages / 'pages.json'}: pageOrder and activePageName must name exactly the page folders")
    return problems


@dataclass(frozen=True)
class Fields:
    """What a report may name: each entity's columns and measures, and report-level (extension) measures."""

    columns: dict[str, set[str]]
    measures: dict[str, set[str]]
    extension: dict[str, set[str]] = field(default_factory=dict)


def references(node: Any, aliases: Mapping[str, str] | None = None) -> Iterator[tuple[str, str | None, str, str]]:
    """(Column|Measure, schema, entity, property) for every field a PBIR document names; filter aliases resolved."""
    aliases = dict(aliases or {})
    if isinstance(node, dict):
        for source in node.get("From", []) if isinstance(node.get("From"), list) else []:
            aliases[source["Name"]] = source["Entity"]
        for kind in ("Column", "Measure"):
            target = node.get(kind)
            if isinstance(target, dict) and "Property" in target:
                ref = target["Expression"]["SourceRef"]
                entity = ref.get("Entity") or aliases.get(ref.get("Source", ""), "?" + str(ref.get("Source")))
                yield kind, ref.get("Schema"), entity, target["Property"]
        for value in node.values():
            yield from references(value, aliases)
    elif isinstance(node, list):
        for value in node:
            yield from references(value, aliases)


def field_problems(report: Path, fields: Fields) -> list[str]:
    """Fields named by the report's pages, visuals and filters that its model (or extension) lacks."""
    problems = []
    for path in sorted((report / "definition").rglob("*.json")):
        for kind, schema, entity, prop in references(read_json(path)):
            if kind == "Column":
                known = fields.columns.get(entity, set())
            elif schema is not None:
                known = fields.extension.get(entity, set())
            else:
                known = fields.measures.get(entity, set())
            if prop not in known:
                problems.append(f"{path}: {kind.lower()} {entity}[{prop}] is not in the model")
    return problems


def history_fields() -> Fields:
    from tools.tmdl import read_model

    model = read_model(POWERBI / "FraudHistory.SemanticModel" / "definition")
    return Fields(
        {n: set(t.columns) for n, t in model.tables.items()}, {n: set(t.measures) for n, t in model.tables.items()}
    )


def live_fields() -> Fields:
    from shared.publishing.rows import ROW_SCHEMA

    extension = read_json(POWERBI / "FraudLive.Report" / "definition" / "reportExtensions.json")
    measures = {e["name"]: {m["name"] for m in e.get("measures", [])} for e in extension.get("entities", [])}
    return Fields({"RealTimeData": set(ROW_SCHEMA)}, {"RealTimeData": set()}, measures)


def main() -> int:
    folder = schemas_dir()
    if folder is None:
        print(HOW_TO_GET, file=sys.stderr)
        return 2
    schemas = registry(folder)
    problems = [p for path in files() for p in schema_problems(path, schemas)]
    for report, fields in (("FraudHistory.Report", history_fields()), ("FraudLive.Report", live_fields())):
        problems += name_problems(POWERBI / report) + field_problems(POWERBI / report, fields)
    for problem in problems:
        print(problem)
    print(f"{len(files())} files checked against {folder}, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
