"""infra/, azure.yaml and the emulator files, checked as far as a machine without the Bicep compiler allows.

The Bicep compiler cannot be installed here (its installers download a binary), so these tests read the
templates with a small Bicep-aware parser: comments and strings are understood, objects and arrays are
parsed into Python values, expressions are kept as text. On top of that they check what matters to
the app: every setting the code reads is set, identity-based connection forms only, a role assignment
for each binding connection, the Power BI URL as a Key Vault reference, module parameters and outputs
that line up. They do not prove that Azure accepts the templates: `az bicep build` and `azd provision`
were not run by this repository's CI.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

# Built-in role definition ids, from https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Azure Event Hubs Data Sender": "2b629674-e913-4c01-ae53-ef4638d8f975",
    "Azure Event Hubs Data Receiver": "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
# A Cosmos DB data-plane role, assigned with sqlRoleAssignments (https://learn.microsoft.com/azure/cosmos-db/how-to-setup-rbac).
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"

# ---- a small Bicep reader --------------------------------------------------------------------------------


class BicepSyntaxError(ValueError):
    """The reader met something outside the subset it understands."""


def strip_comments(text: str) -> str:
    """Blank out // and /* */ comments, leaving strings ('...', with \\' escapes, and '''...''') intact."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("'''", i):
            end = text.find("'''", i + 3)
            end = n if end < 0 else end + 3
            out.append(text[i:end])
            i = end
        elif text[i] == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _skip(text: str, i: int, newlines: bool = True) -> int:
    while i < len(text) and (text[i] in " \t\r" or (newlines and text[i] == "\n")):
        i += 1
    return i


def _string_end(text: str, i: int) -> int:
    """Index just past the string literal starting at i."""
    if text.startswith("'''", i):
        return text.index("'''", i + 3) + 3
    j = i + 1
    while text[j] != "'":
        j += 2 if text[j] == "\\" else 1
    return j + 1


def _balanced_end(text: str, i: int) -> int:
    """Index just past the bracket group opening at i, skipping strings."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = [pairs[text[i]]]
    j = i + 1
    while stack:
        c = text[j]
        if c == "'":
            j = _string_end(text, j)
            continue
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")]}" and c != stack.pop():
            raise BicepSyntaxError(f"unbalanced {c!r} at {j}")
        j += 1
    return j


def _scalar(text: str, i: int) -> tuple[str, int]:
    """An expression up to a newline, comma or closing bracket at nesting depth 0."""
    j = i
    while j < len(text):
        c = text[j]
        if c == "'":
            j = _string_end(text, j)
        elif c in "([{":
            j = _balanced_end(text, j)
        elif c in "\n,)]}":
            break
        else:
            j += 1
    return text[i:j].strip(), j


def parse_value(text: str, i: int) -> tuple[Any, int]:
    """Parse an object literal, an array literal or an expression (kept as text) at i."""
    i = _skip(text, i)
    if text[i] == "{":
        return _object(text, i)
    if text[i] == "[":
        if text[_skip(text, i + 1) :].startswith("for "):
            end = _balanced_end(text, i)
            return text[i:end], end
        return _array(text, i)
    return _scalar(text, i)


def _object(text: str, i: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    i += 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if text[i] == "}":
            return result, i + 1
        if text[i] == "'":
            end = _string_end(text, i)
            key = text[i + 1 : end - 1]
        else:
            match = re.compile(r"[A-Za-z_$][\w$]*").match(text, i)
            if match is None:
                raise BicepSyntaxError(f"expected a property name at {text[i : i + 30]!r}")
            key, end = match.group(), match.end()
        i = _skip(text, end, newlines=False)
        if text[i] != ":":
            raise BicepSyntaxError(f"expected ':' after {key!r} (nested resource declarations are not supported)")
        result[key], i = parse_value(text, i + 1)


def _array(text: str, i: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    i += 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if text[i] == "]":
            return result, i + 1
        value, i = parse_value(text, i)
        result.append(value)


@dataclass
class Decl:
    """One top-level declaration."""

    kind: str
    name: str
    target: str = ""
    type: str = ""
    value: Any = None
    existing: bool = False
    condition: str | None = None
    decorators: list[str] = field(default_factory=list)


_HEAD = re.compile(
    r"(?P<kind>param|var|output|resource|module)[ \t]+(?P<name>\w+)[ \t]*"
    r"(?:'(?P<target>[^'\n]*)'[ \t]*)?(?P<rest>[^=\n]*)(?P<eq>=)?",
)


def parse_bicep(source: str) -> dict[str, Decl]:
    """Top-level declarations by name (resources and modules by symbolic name; outputs as `output:<name>`)."""
    text = strip_comments(source)
    decls: dict[str, Decl] = {}
    decorators: list[str] = []
    i = _skip(text, 0)
    while i < len(text):
        if text[i] == "@":
            match = re.compile(r"@[\w.]+").match(text, i)
            assert match is not None
            end = _balanced_end(text, match.end()) if text[match.end() : match.end() + 1] == "(" else match.end()
            decorators.append(text[i:end])
            i = _skip(text, end)
            continue
        if text.startswith("targetScope", i):
            _, i = _scalar(text, text.index("=", i) + 1)
            i = _skip(text, i)
            continue
        head = _HEAD.match(text, i)
        if head is None:
            raise BicepSyntaxError(f"unexpected text at {text[i : i + 40]!r}")
        rest = head["rest"].strip()
        existing = rest.endswith("existing")
        decl = Decl(
            head["kind"],
            head["name"],
            head["target"] or "",
            rest.removesuffix("existing").strip(),
            existing=existing,
            decorators=decorators,
        )
        decorators = []
        i = head.end()
        if head["eq"]:
            i = _skip(text, i)
            if text.startswith("if", i) and text[_skip(text, i + 2)] == "(":
                start = _skip(text, i + 2)
                end = _balanced_end(text, start)
                decl.condition = text[start + 1 : end - 1].strip()
                i = end
            decl.value, i = parse_value(text, i)
        # Outputs have a namespace of their own (an output may share a param's name).
        key = f"output:{decl.name}" if decl.kind == "output" else decl.name
        if key in decls:
            raise BicepSyntaxError(f"{decl.name!r} declared twice")
        decls[key] = decl
        i = _skip(text, i)
    return decls


def literal(expression: Any) -> str:
    """The value of a plain single-quoted string expression; fails the test for anything else."""
    assert isinstance(expression, str), expression
    assert re.fullmatch(r"'[^'$]*'", expression), f"not a plain string literal: {expression}"
    return expression[1:-1]


@cache
def bicep(relative: str) -> dict[str, Decl]:
    return parse_bicep((INFRA / relative).read_text(encoding="utf-8"))


def of_kind(decls: dict[str, Decl], kind: str) -> dict[str, Decl]:
    return {d.name: d for d in decls.values() if d.kind == kind}


def module_file(decl: Decl) -> str:
    assert decl.kind == "module"
    return decl.target


# ---- what the code reads -------------------------------------------------------------------------------


def _local_settings() -> dict[str, str]:
    values: dict[str, str] = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    return values


@cache
def _bindings() -> list[dict[str, Any]]:
    from devhost.worker import worker

    w = worker()  # the bindings as the host receives them from the worker engine
    found: list[dict[str, Any]] = []
    for name in w.function_ids:
        found.extend(w.bindings(name))
    return found


def _settings_py_names() -> set[str]:
    """Names shared/settings.py reads: the second argument of every `_helper(env, "NAME", ...)` call."""
    tree = ast.parse((ROOT / "shared" / "settings.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "env"
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            names.add(node.args[1].value)
    return names


def _placeholders() -> set[str]:
    return {m for b in _bindings() for v in b.values() if isinstance(v, str) for m in re.findall(r"%(\w+)%", v)}


def _connections() -> dict[str, set[str]]:
    """Connection setting prefix -> binding types using it; the host's own storage counts as one."""
    found: dict[str, set[str]] = {"AzureWebJobsStorage": {"host"}}
    for binding in _bindings():
        if binding.get("connection"):
            found.setdefault(str(binding["connection"]), set()).add(str(binding["type"]))
    return found


LOCAL_ONLY = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}
"""Local forms: Flex Consumption sets the worker runtime in functionAppConfig; storage uses its identity form."""


def _required_settings() -> set[str]:
    return (set(_local_settings()) - LOCAL_ONLY) | _placeholders() | _settings_py_names()


def _app_settings() -> dict[str, Any]:
    value = bicep("main.bicep")["appSettings"].value
    assert isinstance(value, dict)
    return value


# ---- the parser itself ---------------------------------------------------------------------------------


def test_reader_handles_comments_strings_and_nesting() -> None:
    """Comments vanish, '//' inside strings survives, objects and arrays nest, conditions are kept."""
    source = """
    // a comment with { braces }
    @description('a // not-a-comment, with { brace }')
    param name string = 'x'
    /* block
       comment */
    var settings = {
      a: 'https://host/path'
      'b-c': concat('x', '}')
      list: [
        { path: '/*' }
        'y'
      ]
      single: { k: 1, j: [1, 2] }
    }
    resource r 'Microsoft.X/y@2024-01-01' existing = {
      name: name
    }
    module m 'modules/m.bicep' = if (!empty(name)) {
      name: 'm'
      params: { p: r.id }
    }
    output o string = m.outputs.value
    """
    decls = parse_bicep(source)
    assert decls["name"].decorators == ["@description('a // not-a-comment, with { brace }')"]
    assert decls["name"].value == "'x'"
    settings = decls["settings"].value
    assert settings["a"] == "'https://host/path'"
    assert settings["b-c"] == "concat('x', '}')"
    assert settings["list"] == [{"path": "'/*'"}, "'y'"]
    assert settings["single"] == {"k": "1", "j": ["1", "2"]}
    assert decls["r"].existing
    assert decls["r"].target == "Microsoft.X/y@2024-01-01"
    assert decls["m"].condition == "!empty(name)"
    assert decls["m"].value["params"] == {"p": "r.id"}
    assert decls["output:o"].value == "m.outputs.value"
    with pytest.raises(BicepSyntaxError):
        parse_bicep("var x = {\n  resource y 'Microsoft.X/y@2024-01-01' = {}\n}")


def test_every_template_file_parses() -> None:
    """All Bicep files in infra/ are within the reader's subset, and every module file exists."""
    files = sorted(INFRA.rglob("*.bicep"))
    assert len(files) >= 8
    for path in files:
        decls = bicep(str(path.relative_to(INFRA)))
        for module in of_kind(decls, "module").values():
            assert (path.parent / module_file(module)).is_file(), module.target


# ---- settings ------------------------------------------------------------------------------------------


def test_the_code_reads_what_we_think_it_reads() -> None:
    """The collected names cover local.settings, the bindings' %SETTING%s and shared/settings.py."""
    required = _required_settings()
    assert {"EVENT_HUB_NAME", "EVENT_HUB_CONSUMER_GROUP", "GENERATOR_SCHEDULE", "COSMOS_LEASE_CONTAINER"} <= required
    assert {"POWERBI_PUSH_URL", "GENERATE_MAX_COUNT", "FRAUD_THRESHOLD"} <= _settings_py_names()
    assert set(_connections()) == {"AzureWebJobsStorage", "EventHubConnection", "CosmosDBConnection"}


def test_every_setting_the_code_reads_is_set_by_the_template() -> None:
    """Each name from local.settings.json.example, the bindings and shared/settings.py is an app setting."""
    missing = sorted(_required_settings() - set(_app_settings()))
    assert missing == []


def test_connections_use_identity_forms_only() -> None:
    """Each binding connection is configured as `<prefix>__<property>`; none as a connection string."""
    settings = _app_settings()
    expected = {
        "EventHubConnection": "EventHubConnection__fullyQualifiedNamespace",
        "CosmosDBConnection": "CosmosDBConnection__accountEndpoint",
        "AzureWebJobsStorage": "AzureWebJobsStorage__accountName",
    }
    for prefix in _connections():
        assert prefix not in settings, f"{prefix} would be a connection string"
        assert expected[prefix] in settings, prefix
    assert settings["EventHubConnection__fullyQualifiedNamespace"] == "eventHubs.outputs.fullyQualifiedNamespace"
    assert settings["CosmosDBConnection__accountEndpoint"] == "cosmos.outputs.endpoint"
    assert settings["AzureWebJobsStorage__accountName"] == "storage.outputs.name"


def test_no_keys_in_app_settings_or_anywhere_in_the_templates() -> None:
    """No listKeys/connection-string functions in any template; no key material in app settings."""
    for path in INFRA.rglob("*.bicep"):
        text = strip_comments(path.read_text())
        for forbidden in ("listKeys(", "listConnectionStrings(", "listkeys(", "primaryKey", "AccountKey="):
            assert forbidden not in text, f"{forbidden} in {path.name}"
    for name, value in _app_settings().items():
        assert "SharedAccessKey" not in value, name
        assert "AccountKey" not in value, name
        if name.endswith("CONNECTION_STRING"):
            # Application Insights' connection string names the resource; with local auth off at the
            # resource it cannot ingest without the identity token configured next to it.
            assert name == "APPLICATIONINSIGHTS_CONNECTION_STRING"
            assert _app_settings()["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "'Authorization=AAD'"
            ai = bicep("modules/monitoring.bicep")["appInsights"].value
            assert ai["properties"]["DisableLocalAuth"] == "true"


def test_services_refuse_key_authentication() -> None:
    """Storage shared keys and Event Hubs SAS are off; Cosmos local auth is off by default."""
    storage = bicep("modules/storage.bicep")["storage"].value
    assert storage["properties"]["allowSharedKeyAccess"] == "false"
    namespace = bicep("modules/eventhubs.bicep")["namespace"].value
    assert namespace["properties"]["disableLocalAuth"] == "true"
    assert bicep("main.bicep")["cosmosDisableLocalAuth"].value == "true"
    account = bicep("modules/cosmos.bicep")["account"].value
    assert account["properties"]["disableLocalAuth"] == "disableLocalAuth"


def test_powerbi_push_url_is_a_key_vault_reference() -> None:
    """POWERBI_PUSH_URL is '' or an @Microsoft.KeyVault(SecretUri=...) reference to the secret the vault holds."""
    main = bicep("main.bicep")
    value = _app_settings()["POWERBI_PUSH_URL"]
    assert "@Microsoft.KeyVault(SecretUri=${keyVault.outputs.powerBiSecretUri})" in value
    assert value.startswith("empty(powerBiPushUrl) ? '' :")
    assert "@secure()" in main["powerBiPushUrl"].decorators
    vault = bicep("modules/keyvault.bicep")
    assert "@secure()" in vault["powerBiPushUrl"].decorators
    secret = vault["pushUrl"]
    assert secret.target.startswith("Microsoft.KeyVault/vaults/secrets@")
    assert secret.value["properties"]["value"] == "powerBiPushUrl"
    assert secret.value["name"] == "secretName"
    assert vault["output:powerBiSecretUri"].value == "'${vault.properties.vaultUri}secrets/${secretName}'"
    assert vault["vault"].value["properties"]["enableRbacAuthorization"] == "true"


def test_app_settings_reach_the_function_app_after_its_roles() -> None:
    """main.bicep hands appSettings to the appsettings module, which writes them to the app's `appsettings`."""
    main = bicep("main.bicep")
    module = main["settings"]
    assert module_file(module) == "modules/appsettings.bicep"
    assert module.value["params"] == {"appName": "functionApp.outputs.name", "settings": "appSettings"}
    assert module.value["dependsOn"] == ["appRoles"]
    mod = bicep("modules/appsettings.bicep")
    config = mod["appSettings"]
    assert config.target.startswith("Microsoft.Web/sites/config@")
    assert config.value["name"] == "'appsettings'"
    assert config.value["properties"] == "settings"
    assert config.value["parent"] == "app"
    assert mod["app"].existing
    assert mod["app"].value["name"] == "appName"


# ---- roles ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    role: str
    scope_type: str
    principal: str


def _assignments() -> Iterator[Assignment]:
    roles = bicep("modules/roles.bicep")
    role_ids = roles["roles"].value
    by_symbol = {name: d.target.split("@")[0] for name, d in of_kind(roles, "resource").items()}
    for decl in of_kind(roles, "resource").values():
        props = decl.value.get("properties", {}) if isinstance(decl.value, dict) else {}
        if decl.target.startswith("Microsoft.Authorization/roleAssignments@"):
            match = re.fullmatch(
                r"subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions', roles\.(\w+)\)",
                props["roleDefinitionId"],
            )
            assert match, props["roleDefinitionId"]
            role = literal(role_ids[match.group(1)])
            yield Assignment(role, by_symbol[decl.value["scope"]], props["principalId"])
        elif decl.target.startswith("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@"):
            assert props["roleDefinitionId"] == "'${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributor}'"
            assert props["scope"] == "cosmos.id"
            assert decl.value["parent"] == "cosmos"
            yield Assignment(
                literal(roles["cosmosDataContributor"].value),
                by_symbol["cosmos"],
                props["principalId"],
            )


def test_role_ids_are_the_documented_built_in_roles() -> None:
    """Each role id in roles.bicep is the id Microsoft documents for the role its comment names."""
    role_ids = {k: literal(v) for k, v in bicep("modules/roles.bicep")["roles"].value.items()}
    by_name = {
        "storageBlobDataOwner": "Storage Blob Data Owner",
        "storageQueueDataContributor": "Storage Queue Data Contributor",
        "storageTableDataContributor": "Storage Table Data Contributor",
        "eventHubsDataSender": "Azure Event Hubs Data Sender",
        "eventHubsDataReceiver": "Azure Event Hubs Data Receiver",
        "keyVaultSecretsUser": "Key Vault Secrets User",
        "monitoringMetricsPublisher": "Monitoring Metrics Publisher",
    }
    assert {k: BUILT_IN_ROLES[v] for k, v in by_name.items()} == role_ids
    assert literal(bicep("modules/roles.bicep")["cosmosDataContributor"].value) == COSMOS_DATA_CONTRIBUTOR


def test_each_binding_connection_has_a_role_for_the_app_identity() -> None:
    """EventHubConnection: sender + receiver on the hub; CosmosDBConnection: Cosmos data contributor;
    AzureWebJobsStorage: blob owner (+ queue, table) on the account; the Key Vault reference and
    Entra-authenticated telemetry get theirs. Every assignment goes to the roles module's principal,
    which main.bicep sets to the function app's system-assigned identity."""
    needed = {
        "host": {
            ("Storage Blob Data Owner", "Microsoft.Storage/storageAccounts"),
            ("Storage Queue Data Contributor", "Microsoft.Storage/storageAccounts"),
            ("Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
        },
        "eventHub": {("Azure Event Hubs Data Sender", "Microsoft.EventHub/namespaces/eventhubs")},
        "eventHubTrigger": {("Azure Event Hubs Data Receiver", "Microsoft.EventHub/namespaces/eventhubs")},
        "cosmosDB": {(COSMOS_DATA_CONTRIBUTOR, "Microsoft.DocumentDB/databaseAccounts")},
        "cosmosDBTrigger": {(COSMOS_DATA_CONTRIBUTOR, "Microsoft.DocumentDB/databaseAccounts")},
    }
    names = {v: k for k, v in BUILT_IN_ROLES.items()}
    granted = {(names.get(a.role, a.role), a.scope_type) for a in _assignments()}
    assert all(a.principal == "principalId" for a in _assignments())
    for connection, types in _connections().items():
        for binding_type in types:
            assert binding_type in needed, f"no role mapping for a {binding_type} binding on {connection}"
            assert needed[binding_type] <= granted, (connection, binding_type)
    assert ("Key Vault Secrets User", "Microsoft.KeyVault/vaults") in granted
    assert ("Monitoring Metrics Publisher", "Microsoft.Insights/components") in granted

    main = bicep("main.bicep")
    app_roles = main["appRoles"]
    assert module_file(app_roles) == "modules/roles.bicep"
    assert app_roles.condition is None
    assert app_roles.value["params"]["principalId"] == "functionApp.outputs.principalId"
    assert app_roles.value["params"]["principalType"] == "'ServicePrincipal'"
    app = bicep("modules/functionapp.bicep")
    assert app["app"].value["identity"] == {"type": "'SystemAssigned'"}
    assert app["output:principalId"].value == "app.identity.principalId"


# ---- resources -----------------------------------------------------------------------------------------


def test_flex_consumption_python_313_with_identity_deployment_storage() -> None:
    """FC1 plan; runtime python 3.13 in functionAppConfig; package read with the system identity."""
    app = bicep("modules/functionapp.bicep")
    assert app["plan"].value["sku"] == {"tier": "'FlexConsumption'", "name": "'FC1'"}
    config = app["app"].value["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "'python'", "version": "'3.13'"}
    assert config["deployment"]["storage"]["type"] == "'blobContainer'"
    assert config["deployment"]["storage"]["authentication"] == {"type": "'SystemAssignedIdentity'"}
    assert literal(app["app"].value["kind"]) == "functionapp,linux"
    assert "FUNCTIONS_WORKER_RUNTIME" not in _app_settings()


def test_partition_count_is_a_parameter() -> None:
    """eventHubPartitionCount flows from main.bicep (and main.parameters.json) to the hub."""
    main = bicep("main.bicep")
    assert main["eventHubPartitionCount"].kind == "param"
    assert main["eventHubPartitionCount"].type == "int"
    assert main["eventHubs"].value["params"]["partitionCount"] == "eventHubPartitionCount"
    hub = bicep("modules/eventhubs.bicep")["hub"].value
    assert hub["properties"]["partitionCount"] == "partitionCount"
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert isinstance(parameters["eventHubPartitionCount"]["value"], int)
    # The generators group accounts by partition: they get the hub's real count, not a second copy of it.
    assert _app_settings()["EVENT_HUB_PARTITION_COUNT"] == "string(eventHubPartitionCount)"


def _document_keys(path: Path) -> set[str]:
    """String keys of every dict literal in a module: the fields the documents it builds can have."""
    tree = ast.parse(path.read_text())
    return {
        key.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }


def test_cosmos_containers_partition_keys_and_indexing() -> None:
    """Every container on the code's partition key path (scored and profiles on /account_id, rejected,
    labels, merchants and leases on /id); scored and rejected index only queried fields."""
    from shared.behaviour import merchant_store
    from shared.contract.partitions import COSMOS_PARTITION_KEY_PATHS
    from shared.labels import store as label_store
    from shared.publishing.rows import ROW_SCHEMA

    paths = {
        **COSMOS_PARTITION_KEY_PATHS,
        "labels": label_store.PARTITION_KEY,
        "merchants": merchant_store.PARTITION_KEY,
    }

    main = bicep("main.bicep")
    cosmos = bicep("modules/cosmos.bicep")
    local = _local_settings()
    containers = {
        symbol
        for symbol, decl in of_kind(cosmos, "resource").items()
        if decl.target.startswith("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@")
    }
    assert containers == set(paths)
    for symbol, path in paths.items():
        resource = cosmos[symbol].value["properties"]["resource"]
        assert resource["partitionKey"]["paths"] == [f"'{path}'"], symbol
    names = {
        "scored": ("cosmosScoredContainerName", "COSMOS_SCORED_CONTAINER"),
        "rejected": ("cosmosRejectedContainerName", "COSMOS_REJECTED_CONTAINER"),
        "profiles": ("cosmosProfilesContainerName", "COSMOS_PROFILES_CONTAINER"),
        "labels": ("cosmosLabelsContainerName", "COSMOS_LABELS_CONTAINER"),
        "merchants": ("cosmosMerchantsContainerName", "COSMOS_MERCHANTS_CONTAINER"),
        "leases": ("cosmosLeaseContainerName", "COSMOS_LEASE_CONTAINER"),
    }
    for symbol, (param, setting) in names.items():
        assert literal(main[param].value) == local[setting], symbol
    fields = {"scored": set(ROW_SCHEMA), "rejected": _document_keys(ROOT / "shared" / "scoring" / "documents.py")}
    for symbol, known in fields.items():
        policy = cosmos[symbol].value["properties"]["resource"]["indexingPolicy"]
        assert {"path": "'/*'"} in policy["excludedPaths"], symbol
        included = [literal(p["path"]) for p in policy["includedPaths"]]
        assert included, symbol
        for path in included:
            assert re.fullmatch(r"/(\w+)/\?", path), path
            assert path.split("/")[1] in known, f"{symbol} indexes {path}, which its documents do not have"
    assert "indexingPolicy" not in cosmos["leases"].value["properties"]["resource"]


def test_profiles_container_is_a_point_read_store_that_indexes_nothing() -> None:
    """Behaviour state: id = partition key = account_id, read by id only, so every path is excluded; the
    mode stays 'consistent' because the SDK's read_items queries by id, which 'none' could not serve."""
    from shared.behaviour.store import profile_document

    cosmos = bicep("modules/cosmos.bicep")
    resource = cosmos["profiles"].value["properties"]["resource"]
    assert resource["partitionKey"]["paths"] == ["'/account_id'"]
    document = profile_document("acct-1", {}, "2026-01-01T00:00:00.000Z")
    assert document["id"] == document["account_id"] == "acct-1"
    policy = resource["indexingPolicy"]
    assert literal(policy["indexingMode"]) == "consistent"
    assert policy["includedPaths"] == []
    assert policy["excludedPaths"] == [{"path": "'/*'"}]
    assert "compositeIndexes" not in policy
    # No TTL: an account idle for a while must still find its state (features reach back 30 days).
    assert "defaultTtl" not in resource
    options = cosmos["profiles"].value["properties"]["options"]
    assert options["autoscaleSettings"]["maxThroughput"] == "profilesMaxThroughput"
    main = bicep("main.bicep")
    params = main["cosmos"].value["params"]
    assert params["profilesContainerName"] == "cosmosProfilesContainerName"
    assert params["profilesMaxThroughput"] == "cosmosProfilesMaxThroughput"
    assert main["cosmosProfilesMaxThroughput"].type == "int"
    assert cosmos["output:profilesContainerName"].value == "profiles.name"


def test_behaviour_state_settings_reach_the_app() -> None:
    """The profiles container and BEHAVIOUR_STATE are app settings; the template offers only the stores
    that survive instances coming and going, and its defaults are the code's."""
    from shared.settings import Settings

    settings = _app_settings()
    main = bicep("main.bicep")
    assert settings["COSMOS_PROFILES_CONTAINER"] == "cosmos.outputs.profilesContainerName"
    assert settings["COSMOS_DATABASE"] == "cosmos.outputs.databaseName"
    assert settings["BEHAVIOUR_STATE"] == "behaviourState"
    state = main["behaviourState"]
    assert "@allowed(['cosmos', 'off'])" in state.decorators
    defaults = Settings()
    assert literal(state.value) == defaults.behaviour_state == "cosmos"
    assert literal(main["cosmosProfilesContainerName"].value) == defaults.profiles_container
    assert literal(main["cosmosDatabaseName"].value) == defaults.cosmos_database
    for allowed in ("cosmos", "off"):
        assert Settings.from_env({"BEHAVIOUR_STATE": allowed}).behaviour_state == allowed


def test_labels_container_indexes_only_what_the_aggregation_queries() -> None:
    """Labels: id = partition key = transaction id, only `known_day` indexed (the aggregation's query filters
    on it), no TTL; merchants: read and written by id only, so nothing indexed."""
    from datetime import UTC, datetime

    from shared.behaviour.merchant_store import merchant_document, progress_document
    from shared.labels import contract
    from shared.labels.store import KNOWN_ON_QUERY

    cosmos = bicep("modules/cosmos.bicep")
    labels = cosmos["labels"].value["properties"]["resource"]
    policy = labels["indexingPolicy"]
    assert [literal(p["path"]) for p in policy["includedPaths"]] == ["/known_day/?"]
    assert {"path": "'/*'"} in policy["excludedPaths"]
    assert "defaultTtl" not in labels
    assert "c.known_day = @day" in KNOWN_ON_QUERY
    label = contract.validate({"transaction_id": "t-1", "fraud": True, "known_at": "2026-01-01T00:00:00Z"}, 0, 10**15)
    document = contract.document(label, datetime(2026, 1, 2, tzinfo=UTC))
    assert document["id"] == document["transaction_id"] == "t-1"
    assert isinstance(document["known_day"], int)
    merchants = cosmos["merchants"].value["properties"]["resource"]
    assert merchants["indexingPolicy"]["includedPaths"] == []
    assert merchants["indexingPolicy"]["excludedPaths"] == [{"path": "'/*'"}]
    assert literal(merchants["indexingPolicy"]["indexingMode"]) == "consistent"
    assert merchant_document("_aggregation", {}, "now")["id"] != progress_document(0, "now")["id"]
    for symbol in ("labels", "merchants"):
        assert cosmos[f"output:{symbol}ContainerName"].value == f"{symbol}.name"
        assert bicep("main.bicep")["cosmos"].value["params"][f"{symbol}ContainerName"] == (
            f"cosmos{symbol.capitalize()}ContainerName"
        )


def test_label_settings_reach_the_app() -> None:
    """LABEL_STORE, MERCHANT_STATE, the delay, the containers and the aggregation schedule are app settings
    whose template defaults are the code's; the template offers only the stores that outlive instances."""
    from shared.settings import Settings

    settings = _app_settings()
    main = bicep("main.bicep")
    defaults = Settings()
    assert settings["COSMOS_LABELS_CONTAINER"] == "cosmos.outputs.labelsContainerName"
    assert settings["COSMOS_MERCHANTS_CONTAINER"] == "cosmos.outputs.merchantsContainerName"
    assert literal(main["cosmosLabelsContainerName"].value) == defaults.labels_container
    assert literal(main["cosmosMerchantsContainerName"].value) == defaults.merchants_container
    for setting, param, default in (
        ("LABEL_STORE", "labelStore", defaults.label_store),
        ("MERCHANT_STATE", "merchantState", defaults.merchant_state),
    ):
        assert settings[setting] == param
        assert "@allowed(['cosmos', 'off'])" in main[param].decorators
        assert literal(main[param].value) == default == "cosmos"
    assert settings["MERCHANT_RISK_DELAY_DAYS"] == "merchantRiskDelayDays"
    assert int(literal(main["merchantRiskDelayDays"].value)) == defaults.merchant_risk_delay_days == 7
    assert settings["LABEL_AGGREGATION_SCHEDULE"] == "labelAggregationSchedule"
    schedule = literal(main["labelAggregationSchedule"].value)
    assert schedule == _local_settings()["LABEL_AGGREGATION_SCHEDULE"] == "0 5 * * * *"
    assert "LABEL_AGGREGATION_SCHEDULE" in _placeholders()


def test_the_state_store_client_connects_like_the_bindings() -> None:
    """shared/behaviour/store.py builds its SDK client from the CosmosDBConnection settings: on Azure the
    identity form the template sets (the app's system identity, so no client id), locally the
    connection string the emulator settings hold."""
    tree = ast.parse((ROOT / "shared" / "behaviour" / "store.py").read_text())
    read = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "env"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert read == {"CosmosDBConnection", "CosmosDBConnection__accountEndpoint", "CosmosDBConnection__clientId"}
    settings = _app_settings()
    assert settings["CosmosDBConnection__accountEndpoint"] == "cosmos.outputs.endpoint"
    assert "CosmosDBConnection__clientId" not in settings
    assert bicep("modules/functionapp.bicep")["app"].value["identity"] == {"type": "'SystemAssigned'"}
    emulator = json.loads((ROOT / "emulators" / "local.settings.emulators.json").read_text())["Values"]
    assert "AccountEndpoint=" in emulator["CosmosDBConnection"]


def test_api_versions_are_dated_and_not_preview() -> None:
    """Every resource uses a GA API version."""
    for path in INFRA.rglob("*.bicep"):
        for decl in of_kind(bicep(str(path.relative_to(INFRA))), "resource").values():
            assert re.fullmatch(r"[\w.]+(/\w+)+@\d{4}-\d{2}-\d{2}", decl.target), (path.name, decl.target)


# ---- wiring between files ------------------------------------------------------------------------------


def test_module_parameters_and_outputs_line_up() -> None:
    """What a compiler would catch: unknown or missing module params, and references to absent outputs."""
    for path in [INFRA / "main.bicep"]:
        decls = bicep(path.name)
        modules = of_kind(decls, "module")
        for name, module in modules.items():
            target = bicep(module_file(module))
            params = of_kind(target, "param")
            given = set(module.value["params"])
            required = {n for n, d in params.items() if d.value is None}
            assert given <= set(params), (name, sorted(given - set(params)))
            assert required <= given, (name, sorted(required - given))
        text = strip_comments(path.read_text())
        for symbol, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", text):
            assert symbol in modules, symbol
            assert output in of_kind(bicep(module_file(modules[symbol])), "output"), f"{symbol}.outputs.{output}"


_KEYWORDS = {"true", "false", "null"}


def _expression_code(expression: str) -> str:
    """The expression with string literals removed, except the code inside their ${...} holes."""
    out: list[str] = []
    i = 0
    while i < len(expression):
        if expression[i] != "'":
            out.append(expression[i])
            i += 1
            continue
        end = _string_end(expression, i)
        body = expression[i + 1 : end - 1]
        out.extend(f" {hole} " for hole in re.findall(r"\$\{([^}]*)\}", body))
        i = end
    return "".join(out)


def _values(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _values(item)
    elif isinstance(value, str):
        yield value


def test_every_identifier_a_template_uses_is_declared() -> None:
    """Another compiler check: names in expressions are params, vars, resources or modules of the same file."""
    for path in INFRA.rglob("*.bicep"):
        decls = bicep(str(path.relative_to(INFRA)))
        declared = {d.name for d in decls.values() if d.kind != "output"}
        for decl in decls.values():
            expressions = list(_values(decl.value)) + ([decl.condition] if decl.condition else [])
            for expression in expressions:
                code = _expression_code(expression)
                for name in re.findall(r"(?<![\w.$])([A-Za-z_]\w*)(?!\w|\s*\()", code):
                    assert name in declared or name in _KEYWORDS, f"{path.name}: {decl.name} uses undeclared {name!r}"


def test_parameters_file_matches_main() -> None:
    """main.parameters.json names only main.bicep params and gives every param without a default."""
    main = of_kind(bicep("main.bicep"), "param")
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(parameters) <= set(main)
    assert {n for n, d in main.items() if d.value is None} <= set(parameters)
    assert parameters["powerBiPushUrl"]["value"] == "${POWERBI_PUSH_URL}"


def _simple_yaml(text: str) -> dict[str, Any]:
    """Nested `key: value` maps only, which is all azure.yaml uses."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        if value.strip():
            stack[-1][1][key] = value.strip()
        else:
            child: dict[str, Any] = {}
            stack[-1][1][key] = child
            stack.append((indent, child))
    return root


def test_azure_yaml_points_at_infra_and_the_function_app() -> None:
    """azd provisions infra/main.bicep and deploys this folder to the app tagged with the service name."""
    config = _simple_yaml((ROOT / "azure.yaml").read_text())
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    ((service, spec),) = config["services"].items()
    assert spec == {"project": ".", "language": "python", "host": "function"}
    main = bicep("main.bicep")
    assert literal(main["serviceName"].value) == service
    assert main["functionApp"].value["params"]["serviceName"] == "serviceName"
    assert (INFRA / f"{config['infra']['module']}.bicep").is_file()


def _tagged_with_service(path: Path) -> list[str]:
    """Resource types in one template whose `tags` mention azd-service-name."""
    decls = bicep(str(path.relative_to(INFRA)))
    return [
        d.target.split("@")[0]
        for d in of_kind(decls, "resource").values()
        if isinstance(d.value, dict) and "azd-service-name" in str(d.value.get("tags", ""))
    ]


def test_exactly_one_resource_carries_the_azd_service_tag() -> None:
    """The function app, and not its Flex plan, carries azd-service-name.

    azd up to 1.23.3 counts every resource in the group with the tag and refuses to deploy when it finds
    two ("expecting only '1' resource tagged ... found '2'"; AZURE-REVIEW.md A1). The tags every module
    gets from main.bicep must therefore be the plain environment tags, and one resource adds the service.
    """
    main = bicep("main.bicep")
    assert "azd-service-name" not in str(main["tags"].value)
    for name, module in of_kind(main, "module").items():
        assert module.value["params"].get("tags", "tags") == "tags", f"module {name} gets more than the env tags"
    assert main["rg"].value["tags"] == "tags"
    tagged = [t for path in sorted(INFRA.rglob("*.bicep")) for t in _tagged_with_service(path)]
    assert tagged == ["Microsoft.Web/sites"]
    app = bicep("modules/functionapp.bicep")
    assert app["plan"].value["tags"] == "tags"
    assert app["app"].value["tags"] == "union(tags, { 'azd-service-name': serviceName })"


def test_developer_roles_take_the_principal_type_from_azd() -> None:
    """AZURE_PRINCIPAL_TYPE reaches developerRoles; without it a service principal running azd fails with
    UnmatchedPrincipalType (AZURE-REVIEW.md A2). Its default stays User for a person."""
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE=User}"
    main = bicep("main.bicep")
    assert literal(main["principalType"].value) == "User"
    assert main["developerRoles"].value["params"]["principalType"] == "principalType"
    assert main["developerRoles"].value["params"]["principalId"] == "principalId"


def test_the_two_role_modules_run_one_after_the_other() -> None:
    """developerRoles waits for appRoles: two Cosmos sqlRoleAssignments at once on one account can fail
    with an exclusive-lock conflict (AZURE-REVIEW.md B1)."""
    main = bicep("main.bicep")
    assert "appRoles" in main["developerRoles"].value.get("dependsOn", [])
    sql = [
        d
        for d in of_kind(bicep("modules/roles.bicep"), "resource").values()
        if d.target.startswith("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@")
    ]
    assert len(sql) == 1


def test_location_is_an_azd_location_prompt() -> None:
    """azd asks for the region with its location picker; the description names the Flex region list."""
    location = bicep("main.bicep")["location"]
    assert "@metadata({ azd: { type: 'location' } })" in location.decorators
    assert any("list-flexconsumption-locations" in d for d in location.decorators)


def test_local_runs_get_a_consumer_group_of_their_own() -> None:
    """A local func start must not join the deployed scorer's consumer group (AZURE-REVIEW.md B6)."""
    main = bicep("main.bicep")
    scorer, local = literal(main["eventHubConsumerGroup"].value), literal(main["eventHubLocalConsumerGroup"].value)
    assert scorer != local
    hubs = bicep("modules/eventhubs.bicep")
    groups = [
        d.value["name"]
        for d in of_kind(hubs, "resource").values()
        if d.target.startswith("Microsoft.EventHub/namespaces/eventhubs/consumergroups@")
    ]
    assert sorted(groups) == ["consumerGroupName", "localConsumerGroupName"]
    assert main["eventHubs"].value["params"]["localConsumerGroupName"] == "eventHubLocalConsumerGroup"
    assert main["output:EVENT_HUB_LOCAL_CONSUMER_GROUP"].value == "eventHubs.outputs.localConsumerGroupName"


def test_telemetry_follows_the_functions_opentelemetry_guide() -> None:
    """host.json turns on the host's OpenTelemetry mode and the app sets PYTHON_ENABLE_OPENTELEMETRY, so
    worker logs are not forwarded twice; the worker's own distro setup stays off because the app does it
    (AZURE-REVIEW.md B2; learn.microsoft.com/azure/azure-functions/opentelemetry-howto)."""
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    settings = _app_settings()
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "'true'"
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in settings
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "'Authorization=AAD'"


# ---- emulators ------------------------------------------------------------------------------------------


def test_emulator_files_match_the_app_settings() -> None:
    """The emulator's hub and consumer group, the emulator settings and the Cosmos script agree with the app."""
    sys_path_script = ROOT / "emulators" / "create_cosmos_containers.py"
    config = json.loads((ROOT / "emulators" / "eventhubs-config.json").read_text())
    ((namespace,),) = [config["UserConfig"]["NamespaceConfig"]]
    ((hub,),) = [namespace["Entities"]]
    emulator = json.loads((ROOT / "emulators" / "local.settings.emulators.json").read_text())["Values"]
    local = _local_settings()
    assert hub["Name"] == emulator["EVENT_HUB_NAME"] == local["EVENT_HUB_NAME"]
    assert [g["Name"] for g in hub["ConsumerGroups"]] == [emulator["EVENT_HUB_CONSUMER_GROUP"]]
    assert int(hub["PartitionCount"]) >= 1
    # Same settings as the example, with each identity form replaced by its connection-string form.
    identity = {k for k in local if "__" in k}
    assert set(emulator) == (set(local) - identity) | {k.split("__")[0] for k in identity}
    assert "UseDevelopmentEmulator=true" in emulator["EventHubConnection"]
    assert emulator["CosmosDBConnection"].startswith("AccountEndpoint=https://localhost:8081/")
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./emulators/eventhubs-config.json:/Eventhubs_Emulator/ConfigFiles/Config.json" in compose
    assert "NOT exercised by\n# this repository's CI" in compose

    import importlib.util

    spec = importlib.util.spec_from_file_location("create_cosmos_containers", sys_path_script)
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cosmos = bicep("modules/cosmos.bicep")
    template = [
        (
            local[setting],
            literal(cosmos[symbol].value["properties"]["resource"]["partitionKey"]["paths"][0]),
        )
        for symbol, setting in [
            ("scored", "COSMOS_SCORED_CONTAINER"),
            ("rejected", "COSMOS_REJECTED_CONTAINER"),
            ("history", "COSMOS_HISTORY_CONTAINER"),
            ("profiles", "COSMOS_PROFILES_CONTAINER"),
            ("labels", "COSMOS_LABELS_CONTAINER"),
            ("merchants", "COSMOS_MERCHANTS_CONTAINER"),
            ("leases", "COSMOS_LEASE_CONTAINER"),
        ]
    ]
    assert script.containers({}) == template


def test_reader_dates_are_not_in_the_future() -> None:
    """Guard against a typo'd API version such as 2042-01-01: none is later than today."""
    today = datetime.now(UTC).date().isoformat()
    for path in INFRA.rglob("*.bicep"):
        for decl in of_kind(bicep(str(path.relative_to(INFRA))), "resource").values():
            assert decl.target.split("@")[1] <= today, decl.target
