"""tools.provision_powerbi: dataset creation and schema checks against a stand-in for the Power BI REST API."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest

from shared.powerbi import ROW_SCHEMA
from tests.fakes.powerbi_server import FakePowerBI
from tools.provision_powerbi import (
    CHECK_ID,
    SCOPE,
    PowerBIAPIError,
    PowerBIClient,
    SchemaMismatchError,
    dataset_request,
    main,
    provision,
    rows_endpoint,
    sample_row,
    schema_differences,
)

unit = pytest.mark.unit

ROOT = "https://api.powerbi.test/v1.0/myorg"
TOKEN = "test-token"
WORKSPACE = "f089354e-8366-4e18-aea3-4cb4a3a50b48"
DATA_TYPES = {"int64", "double", "boolean", "datetime", "string", "decimal"}


class _Response:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def read(self) -> bytes:
        return self._body

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@dataclass
class FakePowerBIRest:
    """An opener that STANDS IN FOR THE POWER BI REST API and enforces the documented push-dataset contract.

    Not Power BI. It checks what the Push Datasets reference states
    (https://learn.microsoft.com/rest/api/power-bi/push-datasets): a bearer token on every call
    (401 without), PostDatasetInGroup with `name`, a known `defaultMode`, tables of named columns
    with known data types, at most 75 columns, `defaultRetentionPolicy` of None or basicFIFO, and
    an answer of 201 with the new id; GetTablesInGroup; PutTableInGroup whose body names the table in
    the path; PostRowsInGroup with `{"rows": [...]}` whose columns exist. `refuse_modes` answers
    creation of those modes with FeatureDeprecatedError, as tenants now do for streaming models.
    """

    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    refuse_modes: frozenset[str] = frozenset()

    def open(self, fullurl: urllib.request.Request, data: None = None, timeout: float = 0.0) -> _Response:
        request = fullurl
        method = request.get_method()
        parts = urllib.parse.urlsplit(request.full_url)
        self.calls.append((method, parts.path))
        if request.get_header("Authorization") != f"Bearer {TOKEN}":
            raise self._error(request, 401, "TokenExpired")
        body = json.loads(request.data) if isinstance(request.data, bytes) else None
        prefix = f"/v1.0/myorg/groups/{WORKSPACE}/datasets"
        if not parts.path.startswith(prefix):
            raise self._error(request, 404, "PowerBIEntityNotFound")
        rest = [urllib.parse.unquote(p) for p in parts.path[len(prefix) :].split("/") if p]
        if method == "GET" and not rest:
            return self._json({"value": list(self.datasets.values())})
        if method == "POST" and not rest:
            return self._create(request, parts.query, body)
        dataset = self.datasets.get(rest[0]) if rest else None
        if dataset is None:
            raise self._error(request, 404, "ItemNotFound")
        if method == "GET" and rest[1:] == ["tables"]:
            return self._json({"value": dataset["tables"]})
        if method == "PUT" and len(rest) == 3 and rest[1] == "tables":
            if not isinstance(body, dict) or body.get("name") != rest[2] or not self._columns_ok(body):
                raise self._error(request, 400, "InvalidRequest")
            dataset["tables"] = [t for t in dataset["tables"] if t["name"] != rest[2]] + [body]
            return self._json(body)
        if method == "POST" and len(rest) == 4 and rest[1] == "tables" and rest[3] == "rows":
            return self._post_rows(request, dataset, rest[2], body)
        raise self._error(request, 404, "PowerBIEntityNotFound")

    def _create(self, request: urllib.request.Request, query: str, body: Any) -> _Response:
        retention = urllib.parse.parse_qs(query).get("defaultRetentionPolicy", ["None"])[0]
        if retention not in ("None", "basicFIFO"):
            raise self._error(request, 400, "InvalidRequest")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body.get("tables"):
            raise self._error(request, 400, "InvalidRequest")
        mode = body.get("defaultMode", "Push")
        if mode not in ("Push", "PushStreaming", "Streaming", "AsAzure", "AsOnPrem"):
            raise self._error(request, 400, "InvalidRequest")
        if mode in self.refuse_modes:
            raise self._error(request, 400, "FeatureDeprecatedError")
        if not all(self._columns_ok(t) for t in body["tables"]):
            raise self._error(request, 400, "InvalidRequest")
        dataset_id = str(uuid.uuid4())
        self.datasets[dataset_id] = {
            "id": dataset_id,
            "name": body["name"],
            "defaultMode": mode,
            "addRowsAPIEnabled": True,
            "tables": body["tables"],
        }
        return self._json({"id": dataset_id, "name": body["name"], "defaultRetentionPolicy": retention}, 201)

    def _post_rows(self, request: urllib.request.Request, dataset: dict[str, Any], table: str, body: Any) -> _Response:
        tables = {t["name"]: t for t in dataset["tables"]}
        if table not in tables or not isinstance(body, dict) or not isinstance(body.get("rows"), list):
            raise self._error(request, 400, "InvalidRequest")
        names = {c["name"] for c in tables[table]["columns"]}
        if any(set(row) - names for row in body["rows"]):
            raise self._error(request, 400, "InvalidRequest")
        self.rows.setdefault(table, []).extend(body["rows"])
        return self._json({})

    @staticmethod
    def _columns_ok(table: dict[str, Any]) -> bool:
        columns = table.get("columns")
        return (
            isinstance(table.get("name"), str)
            and isinstance(columns, list)
            and 0 < len(columns) <= 75
            and all(isinstance(c.get("name"), str) and str(c.get("dataType")).lower() in DATA_TYPES for c in columns)
        )

    @staticmethod
    def _json(payload: Any, status: int = 200) -> _Response:
        assert status in (200, 201)
        return _Response(json.dumps(payload).encode())

    @staticmethod
    def _error(request: urllib.request.Request, status: int, code: str) -> urllib.error.HTTPError:
        payload = io.BytesIO(json.dumps({"error": {"code": code}}).encode())
        return urllib.error.HTTPError(request.full_url, status, code, Message(), payload)


def _client(fake: FakePowerBIRest, token: str = TOKEN) -> PowerBIClient:
    return PowerBIClient(lambda: token, opener=fake, api_root=ROOT)


@unit
def test_dataset_request_carries_every_row_schema_column_in_order() -> None:
    """The table sent to Power BI is ROW_SCHEMA, names and types, in column order."""
    body = dataset_request("Fraud scoring", "ScoredTransactions", "Push")
    columns = body["tables"][0]["columns"]
    assert [(c["name"], c["dataType"]) for c in columns] == list(ROW_SCHEMA.items())
    assert body["defaultMode"] == "Push"


@unit
def test_provision_creates_the_dataset_once_then_finds_it() -> None:
    """First run creates (POST with basicFIFO retention); a second run finds it and creates nothing."""
    fake = FakePowerBIRest()
    first = provision(_client(fake), WORKSPACE)
    assert first.created
    assert list(fake.datasets) == [first.dataset_id]
    second = provision(_client(fake), WORKSPACE)
    assert not second.created
    assert second.dataset_id == first.dataset_id
    assert sum(1 for method, _ in fake.calls if method == "POST") == 1


@unit
def test_mismatched_table_is_reported_then_fixed_on_request() -> None:
    """A table missing a column fails with the difference named; --update-schema PUTs ROW_SCHEMA."""
    fake = FakePowerBIRest()
    made = provision(_client(fake), WORKSPACE)
    table = fake.datasets[made.dataset_id]["tables"][0]
    table["columns"] = [c for c in table["columns"] if c["name"] != "top_reason"]
    with pytest.raises(SchemaMismatchError, match="missing column 'top_reason'"):
        provision(_client(fake), WORKSPACE)
    fixed = provision(_client(fake), WORKSPACE, update_schema=True)
    assert fixed.schema_updated
    assert schema_differences(fake.datasets[made.dataset_id]["tables"][0]["columns"]) == []


@unit
def test_schema_differences_names_type_and_extra_columns() -> None:
    """Type names compare case-insensitively; wrong types and unknown columns are listed."""
    columns = [{"name": n, "dataType": t.lower()} for n, t in ROW_SCHEMA.items()]
    assert schema_differences(columns) == []
    columns[0] = {"name": "id", "dataType": "Int64"}
    columns.append({"name": "surplus", "dataType": "String"})
    problems = schema_differences(columns)
    assert "column 'id' is Int64, not String" in problems
    assert "extra column 'surplus'" in problems


@unit
def test_every_call_carries_the_token_and_a_bad_token_is_refused() -> None:
    """The token provider is asked once per client; Power BI's 401 becomes a PowerBIAPIError without the token."""
    fake = FakePowerBIRest()
    asked: list[str] = []

    def provider() -> str:
        asked.append("x")
        return TOKEN

    provision(PowerBIClient(provider, opener=fake, api_root=ROOT), WORKSPACE)
    assert len(asked) == 1
    with pytest.raises(PowerBIAPIError) as exc:
        provision(_client(fake, token="stale"), WORKSPACE)
    assert exc.value.status == 401
    assert "stale" not in str(exc.value)


@unit
def test_rest_rows_endpoint_accepts_the_sample_row() -> None:
    """A row from `sample_row` goes through PostRowsInGroup into the provisioned table."""
    fake = FakePowerBIRest()
    made = provision(_client(fake), WORKSPACE)
    _client(fake).post_rows_rest(WORKSPACE, made.dataset_id, made.table, [sample_row()])
    assert fake.rows[made.table][0]["id"] == CHECK_ID
    assert rows_endpoint(WORKSPACE, made.dataset_id, made.table, ROOT).endswith(f"/tables/{made.table}/rows")


@unit
def test_cli_create_prints_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    """`create` prints the dataset id, the REST endpoint and how the push URL reaches Key Vault."""
    fake = FakePowerBIRest()
    out = io.StringIO()
    code = main(["create", "--workspace", WORKSPACE], token_provider=lambda: TOKEN, opener=fake, api_root=ROOT, out=out)
    assert code == 0
    (dataset_id,) = fake.datasets
    text = out.getvalue()
    assert f"dataset {dataset_id} created" in text
    assert f"/datasets/{dataset_id}/tables/ScoredTransactions/rows" in text
    assert "azd env set POWERBI_PUSH_URL" in text
    assert TOKEN not in text


@unit
def test_cli_reports_deprecated_modes_with_a_hint() -> None:
    """A tenant refusing PushStreaming creation yields status 1 and a pointer to Push or the successor."""
    fake = FakePowerBIRest(refuse_modes=frozenset({"PushStreaming"}))
    err = io.StringIO()
    code = main(
        ["create", "--workspace", WORKSPACE, "--mode", "PushStreaming"],
        token_provider=lambda: TOKEN,
        opener=fake,
        api_root=ROOT,
        out=io.StringIO(),
        err=err,
    )
    assert code == 1
    assert "FeatureDeprecatedError" in err.getvalue()
    assert "--mode Push" in err.getvalue()


@unit
def test_cli_schema_needs_no_network() -> None:
    """`schema` prints every column without asking for a token."""

    def no_token() -> str:
        raise AssertionError("schema must not sign in")

    out = io.StringIO()
    assert main(["schema"], token_provider=no_token, out=out) == 0
    for name, kind in ROW_SCHEMA.items():
        assert name in out.getvalue()
        assert kind in out.getvalue()


@unit
def test_scope_is_the_power_bi_api() -> None:
    """Tokens are requested for the Power BI service's resource."""
    assert SCOPE == "https://analysis.windows.net/powerbi/api/.default"


@pytest.mark.integration
def test_check_pushes_a_row_through_a_push_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """`check --push-url-env` posts a JSON array, no token, to the local server standing in for Power BI."""

    def no_token() -> str:
        raise AssertionError("the push URL way carries its key in the URL")

    with FakePowerBI(schema=ROW_SCHEMA) as fake:
        monkeypatch.setenv("PBI_URL", fake.url)
        out = io.StringIO()
        assert main(["check", "--push-url-env", "PBI_URL"], token_provider=no_token, out=out) == 0
        assert [r["id"] for r in fake.rows] == [CHECK_ID]
        assert fake.key not in out.getvalue()


@pytest.mark.integration
def test_check_with_a_wrong_key_fails_without_showing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused push URL reports the host and status, never the URL's key."""
    with FakePowerBI() as fake:
        wrong = fake.url.replace(fake.key, "not-the-key")
        monkeypatch.setenv("PBI_URL", wrong)
        err = io.StringIO()
        assert main(["check", "--push-url-env", "PBI_URL"], out=io.StringIO(), err=err) == 1
        assert "HTTP 403" in err.getvalue()
        assert "not-the-key" not in err.getvalue()
