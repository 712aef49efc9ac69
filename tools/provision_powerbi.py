"""Create (or verify) the Power BI push dataset the app publishes to, and say what to put in settings.

    python -m tools.provision_powerbi schema
    python -m tools.provision_powerbi create --workspace <workspace id>
    python -m tools.provision_powerbi check --push-url-env POWERBI_PUSH_URL
    python -m tools.provision_powerbi check --workspace <id> --dataset <id>

`create` calls the Power BI REST API with an Entra token from azure-identity's
`DefaultAzureCredential` (scope `https://analysis.windows.net/powerbi/api/.default`; the signed-in
account needs Dataset.ReadWrite.All and a seat in the workspace). It finds a dataset of that name or
creates one (Push Datasets - PostDatasetInGroup), with one table whose columns are
`shared.powerbi.ROW_SCHEMA`, and checks an existing table against that schema (PutTableInGroup fixes
it with `--update-schema`). https://learn.microsoft.com/rest/api/power-bi/push-datasets

Two ways of pushing rows, and what each needs:

- REST rows endpoint (`.../groups/{ws}/datasets/{id}/tables/{table}/rows`, body `{"rows": [...]}`):
  needs a bearer token on every request. `create` prints it; `check --workspace --dataset` pushes one
  row through it.
- Push URL with a key (`.../datasets/{id}/rows?key=...`, body a JSON array): needs no token; the key
  in the URL is the secret. The REST API does not hand out such a URL: it comes from the Power BI
  service (a streaming semantic model's API info). `check --push-url-env` pushes one row through it,
  reading the URL from an environment variable so it never lands in shell history.

The function app's client (shared/powerbi.py) posts without a token, so POWERBI_PUSH_URL must be a
push URL with a key. Power BI stops creating new real-time semantic models (push and streaming)
after 2027-10-31; see docs/deploy.md for the successor.

HTTP goes through urllib with an injectable opener, so tests can stand in for Power BI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TextIO

from shared.powerbi import ROW_SCHEMA

API_ROOT: Final = "https://api.powerbi.com/v1.0/myorg"
SCOPE: Final = "https://analysis.windows.net/powerbi/api/.default"
DEFAULT_DATASET: Final = "Fraud scoring"
DEFAULT_TABLE: Final = "ScoredTransactions"
MODES: Final = ("Push", "PushStreaming")
"""Push keeps rows for reports; PushStreaming also feeds streaming tiles. Creating Streaming-only models
through the API is already refused in some tenants ("FeatureDeprecatedError")."""
RETENTION: Final = ("basicFIFO", "None")
"""basicFIFO keeps the newest 200,000 rows per table; None keeps up to 5,000,000 and then refuses rows."""
CHECK_ID: Final = "provisioning-check"


class Opener(Protocol):
    """The slice of `urllib.request.OpenerDirector` used here; tests pass a stand-in."""

    def open(self, fullurl: urllib.request.Request, data: None = None, timeout: float = ...) -> Any: ...


class PowerBIAPIError(RuntimeError):
    """A Power BI call failed; names the operation, status and Power BI's error code, never a key or token."""

    def __init__(self, what: str, status: int, code: str) -> None:
        super().__init__(f"{what}: HTTP {status} {code}".rstrip())
        self.status = status
        self.code = code


def table_definition(table: str) -> dict[str, Any]:
    """The table as the REST API takes it: ROW_SCHEMA's columns, in order."""
    return {"name": table, "columns": [{"name": n, "dataType": t} for n, t in ROW_SCHEMA.items()]}


def dataset_request(name: str, table: str, mode: str) -> dict[str, Any]:
    """Body of Push Datasets - PostDatasetInGroup."""
    return {"name": name, "defaultMode": mode, "tables": [table_definition(table)]}


def schema_differences(columns: Sequence[Mapping[str, Any]]) -> list[str]:
    """How a table's columns differ from ROW_SCHEMA (type names compared case-insensitively)."""
    actual = {str(c.get("name")): str(c.get("dataType", "")) for c in columns}
    problems = [f"missing column {n!r} ({t})" for n, t in ROW_SCHEMA.items() if n not in actual]
    problems += [
        f"column {n!r} is {actual[n]}, not {t}"
        for n, t in ROW_SCHEMA.items()
        if n in actual and actual[n].lower() != t.lower()
    ]
    problems += [f"extra column {n!r}" for n in actual if n not in ROW_SCHEMA]
    return problems


def sample_row(now: datetime | None = None) -> dict[str, Any]:
    """One row of every ROW_SCHEMA type, marked so it is easy to find and filter out of a report."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    values = {"String": CHECK_ID, "DateTime": stamp, "Double": 0.0, "Int64": 0, "Boolean": False}
    return {name: values[kind] for name, kind in ROW_SCHEMA.items()}


def rows_endpoint(workspace: str, dataset_id: str, table: str, api_root: str = API_ROOT) -> str:
    """REST PostRowsInGroup URL for the table."""
    q = urllib.parse.quote
    return f"{api_root}/groups/{q(workspace)}/datasets/{q(dataset_id)}/tables/{q(table)}/rows"


def _error_code(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code", "")) if isinstance(error, dict) else ""


class PowerBIClient:
    """The handful of Power BI REST calls provisioning needs."""

    def __init__(
        self,
        token_provider: Callable[[], str],
        *,
        opener: Opener | None = None,
        api_root: str = API_ROOT,
        timeout_s: float = 30.0,
    ) -> None:
        self._token_provider = token_provider
        self._token: str | None = None
        self._opener: Opener = opener or urllib.request.build_opener()
        self._root = api_root.rstrip("/")
        self._timeout_s = timeout_s

    def _bearer(self) -> str:
        if self._token is None:
            self._token = self._token_provider()
        return self._token

    def request(self, what: str, method: str, url: str, body: Any = None, *, token: bool = True) -> Any:
        """Send one JSON request; return the decoded answer (None for an empty one)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {self._bearer()}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self._timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            code = _error_code(exc.read())
            exc.close()
            raise PowerBIAPIError(what, exc.code, code) from None
        except urllib.error.URLError as exc:
            raise PowerBIAPIError(what, 0, type(exc.reason).__name__) from None
        return json.loads(raw) if raw.strip() else None

    def _group(self, workspace: str) -> str:
        return f"{self._root}/groups/{urllib.parse.quote(workspace)}"

    def datasets(self, workspace: str) -> list[dict[str, Any]]:
        answer = self.request("list datasets", "GET", f"{self._group(workspace)}/datasets")
        return list(answer.get("value", [])) if isinstance(answer, dict) else []

    def create_dataset(self, workspace: str, body: dict[str, Any], retention: str) -> dict[str, Any]:
        url = f"{self._group(workspace)}/datasets?defaultRetentionPolicy={urllib.parse.quote(retention)}"
        answer = self.request(f"create dataset ({body['defaultMode']})", "POST", url, body)
        if not isinstance(answer, dict) or not answer.get("id"):
            raise PowerBIAPIError("create dataset", 200, "NoDatasetIdInAnswer")
        return answer

    def tables(self, workspace: str, dataset_id: str) -> list[dict[str, Any]]:
        url = f"{self._group(workspace)}/datasets/{urllib.parse.quote(dataset_id)}/tables"
        answer = self.request("list tables", "GET", url)
        return list(answer.get("value", [])) if isinstance(answer, dict) else []

    def put_table(self, workspace: str, dataset_id: str, table: dict[str, Any]) -> None:
        q = urllib.parse.quote
        url = f"{self._group(workspace)}/datasets/{q(dataset_id)}/tables/{q(table['name'])}"
        self.request("update table schema", "PUT", url, table)

    def post_rows_rest(self, workspace: str, dataset_id: str, table: str, rows: list[dict[str, Any]]) -> None:
        url = rows_endpoint(workspace, dataset_id, table, self._root)
        self.request("post rows (REST)", "POST", url, {"rows": rows})

    def post_rows_push_url(self, push_url: str, rows: list[dict[str, Any]]) -> None:
        host = urllib.parse.urlsplit(push_url).hostname or "?"
        self.request(f"post rows (push URL at {host})", "POST", push_url, rows, token=False)


@dataclass(frozen=True)
class Provisioned:
    """Where the dataset is and what `provision` had to do."""

    workspace: str
    dataset_id: str
    table: str
    created: bool
    schema_updated: bool


class SchemaMismatchError(RuntimeError):
    """An existing table does not match ROW_SCHEMA and `--update-schema` was not given."""


def provision(
    client: PowerBIClient,
    workspace: str,
    *,
    name: str = DEFAULT_DATASET,
    table: str = DEFAULT_TABLE,
    mode: str = "Push",
    retention: str = "basicFIFO",
    update_schema: bool = False,
) -> Provisioned:
    """Find the dataset by name or create it; make sure its table has ROW_SCHEMA's columns."""
    existing = [d for d in client.datasets(workspace) if d.get("name") == name]
    if not existing:
        created = client.create_dataset(workspace, dataset_request(name, table, mode), retention)
        return Provisioned(workspace, str(created["id"]), table, created=True, schema_updated=False)
    dataset_id = str(existing[0]["id"])
    found = {str(t.get("name")): t for t in client.tables(workspace, dataset_id)}
    problems = ["no such table"] if table not in found else schema_differences(found[table].get("columns", []))
    if not problems:
        return Provisioned(workspace, dataset_id, table, created=False, schema_updated=False)
    if not update_schema:
        raise SchemaMismatchError(f"table {table!r} of dataset {name!r} differs: " + "; ".join(problems))
    client.put_table(workspace, dataset_id, table_definition(table))
    return Provisioned(workspace, dataset_id, table, created=False, schema_updated=True)


def settings_text(result: Provisioned) -> str:
    """What to do with the dataset: the REST endpoint, and how the push URL reaches the app."""
    verb = "created" if result.created else "found"
    lines = [
        f"dataset {result.dataset_id} {verb} in workspace {result.workspace}; table {result.table!r} matches "
        "shared.powerbi.ROW_SCHEMA" + (" (schema updated)" if result.schema_updated else ""),
        "",
        "REST rows endpoint (needs an Entra bearer token with Dataset.ReadWrite.All on every POST):",
        f"  {rows_endpoint(result.workspace, result.dataset_id, result.table)}",
        "",
        "The function app posts without a token, so POWERBI_PUSH_URL must be a push URL with a key, taken",
        "from the Power BI service (the semantic model's API info). Keep it out of app settings and history:",
        "  read -rs POWERBI_PUSH_URL && export POWERBI_PUSH_URL",
        "  python -m tools.provision_powerbi check --push-url-env POWERBI_PUSH_URL",
        '  azd env set POWERBI_PUSH_URL "$POWERBI_PUSH_URL" && azd provision   # stored in Key Vault',
        "Locally, put it in local.settings.json (git-ignored) as POWERBI_PUSH_URL.",
    ]
    return "\n".join(lines)


def schema_text(table: str) -> str:
    """The table definition, for the REST API and for typing into the service's form."""
    width = max(len(n) for n in ROW_SCHEMA)
    rows = "\n".join(f"  {n.ljust(width)}  {t}" for n, t in ROW_SCHEMA.items())
    return (
        f"table {table!r}, columns in order (name, Power BI data type):\n{rows}\n\n"
        f"REST body (PostDatasetInGroup):\n{json.dumps(dataset_request(DEFAULT_DATASET, table, 'Push'), indent=2)}"
    )


def default_token_provider() -> str:
    """An Entra access token for the Power BI API from DefaultAzureCredential (az login, env, managed identity)."""
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    try:
        return str(credential.get_token(SCOPE).token)
    finally:
        credential.close()


def parser() -> argparse.ArgumentParser:
    """Subcommands: schema, create, check."""
    p = argparse.ArgumentParser(prog="python -m tools.provision_powerbi", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    schema = sub.add_parser("schema", help="print the table definition; no network")
    schema.add_argument("--table", default=DEFAULT_TABLE)
    create = sub.add_parser("create", help="find or create the push dataset in a workspace")
    create.add_argument("--workspace", required=True, help="workspace (group) id")
    create.add_argument("--name", default=DEFAULT_DATASET, help="dataset name (default %(default)r)")
    create.add_argument("--table", default=DEFAULT_TABLE, help="table name (default %(default)r)")
    create.add_argument("--mode", choices=MODES, default="Push", help="defaultMode (default %(default)s)")
    create.add_argument("--retention", choices=RETENTION, default="basicFIFO", help="defaultRetentionPolicy")
    create.add_argument("--update-schema", action="store_true", help="replace a mismatched table's columns")
    check = sub.add_parser("check", help="push one marked row, by push URL or by the REST endpoint")
    check.add_argument("--push-url-env", metavar="NAME", help="environment variable holding a push URL with a key")
    check.add_argument("--workspace", help="workspace id (REST way)")
    check.add_argument("--dataset", help="dataset id (REST way)")
    check.add_argument("--table", default=DEFAULT_TABLE)
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    token_provider: Callable[[], str] = default_token_provider,
    opener: Opener | None = None,
    api_root: str = API_ROOT,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run one subcommand; 0 on success, 1 when Power BI refused, 2 for a schema mismatch or bad usage."""
    p = parser()
    args = p.parse_args(argv)
    if args.command == "schema":
        print(schema_text(args.table), file=out)
        return 0
    client = PowerBIClient(token_provider, opener=opener, api_root=api_root)
    try:
        if args.command == "create":
            result = provision(
                client,
                args.workspace,
                name=args.name,
                table=args.table,
                mode=args.mode,
                retention=args.retention,
                update_schema=args.update_schema,
            )
            print(settings_text(result), file=out)
            return 0
        if args.push_url_env:
            push_url = os.environ.get(args.push_url_env, "").strip()
            if not push_url:
                p.error(f"${args.push_url_env} is empty")
            client.post_rows_push_url(push_url, [sample_row()])
            print(f"push URL accepted a row with id {CHECK_ID!r}", file=out)
            return 0
        if not (args.workspace and args.dataset):
            p.error("check needs --push-url-env, or --workspace and --dataset")
        client.post_rows_rest(args.workspace, args.dataset, args.table, [sample_row()])
        print(f"REST endpoint accepted a row with id {CHECK_ID!r}", file=out)
    except SchemaMismatchError as exc:
        print(f"{exc}\nrerun with --update-schema to replace the table's columns", file=err)
        return 2
    except PowerBIAPIError as exc:
        hint = ""
        if exc.code == "FeatureDeprecatedError":
            hint = "\nPower BI no longer creates this kind of model here; try --mode Push, or see docs/deploy.md"
        print(f"power bi refused: {exc}{hint}", file=err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
