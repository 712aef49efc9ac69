"""A local Cosmos DB (@vercel/cosmosdb-server) for tests, and a sink that writes to it like the output binding."""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Self, cast

import pytest
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "node_modules" / "@vercel" / "cosmosdb-server"

# The launcher instead of the package's own CLI: the CLI answers every request with
# "connection: close", so each SDK call pays a fresh TLS handshake (~25 ms; 100 upserts took
# 2.5 s instead of 0.13 s). keepAliveTimeout = 0 keeps idle sockets open, so the SDK never
# reuses one the server has just closed. Port 0 lets the OS pick a free port, which the
# launcher prints. When the parent closes our stdin (it exited, even by SIGKILL), we exit too.
LAUNCHER = """
const { createHttpsServer } = require(process.argv[1]);
const server = createHttpsServer({ keepAlive: true });
server.keepAliveTimeout = 0;
server.listen(0, "127.0.0.1", () => {
  console.log(`cosmosdb-server listening on 127.0.0.1:${server.address().port}`);
});
process.stdin.on("end", () => process.exit(0)).resume();
"""
_READY = re.compile(rb"cosmosdb-server listening on 127\.0\.0\.1:(\d+)")

# The server accepts any key; the SDK only needs one that decodes as base64.
KEY = base64.b64encode(b"cosmosdb-server accepts any key").decode("ascii")

SCORED = "scored"
REJECTED = "rejected"
# Rejected documents carry no account_id (a body that failed validation has none to trust), so
# that container is partitioned on /id: every document has one, and it is how rejects are read.
PARTITION_KEYS: Mapping[str, str] = MappingProxyType({SCORED: "/account_id", REJECTED: "/id"})

# Properties the server (and Cosmos DB) adds to every stored item.
SYSTEM_PROPERTIES = frozenset({"_rid", "_self", "_etag", "_ts", "_attachments", "_lsn"})
_FORBIDDEN_ID_CHARACTERS = frozenset("/\\?#")


def _services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def _missing_prerequisite() -> str | None:
    if shutil.which("node") is None:
        return "`node` is not on PATH"
    if not (PACKAGE_DIR / "package.json").is_file():
        return f"{PACKAGE_DIR.relative_to(REPO_ROOT)} is not installed"
    return None


class CosmosServer:
    """Runs @vercel/cosmosdb-server over HTTPS on 127.0.0.1 for the length of a `with` block."""

    key = KEY

    def __init__(self, *, log_dir: Path | None = None, startup_timeout: float = 30.0) -> None:
        self._log_dir = log_dir
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None

    @property
    def endpoint(self) -> str:
        if self._port is None:
            raise RuntimeError("CosmosServer is not running; use it as a context manager")
        return f"https://127.0.0.1:{self._port}/"

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return None if self._process is None else self._process.pid

    def client(self) -> CosmosClient:
        """A new SDK client for this server (its bundled certificate is self-signed and expired)."""
        return CosmosClient(self.endpoint, credential=self.key, connection_verify=False)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and wait until it answers; skip (or fail, under REQUIRE_SERVICES=1) if not installed."""
        missing = _missing_prerequisite()
        if missing is not None:
            message = f"cosmosdb-server is unavailable: {missing}. Run `make test`, which installs it."
            if _services_required():
                raise RuntimeError(message + " (REQUIRE_SERVICES=1 forbids skipping)")
            pytest.skip(message)
        log_dir = self._log_dir or Path(tempfile.mkdtemp(prefix="cosmosdb-server-"))
        self.log_path = log_dir / "cosmosdb-server.log"
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [shutil.which("node") or "node", "-e", LAUNCHER, str(PACKAGE_DIR)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
            )
        try:
            deadline = started + self._startup_timeout
            self._port = self._wait_for_port(deadline)
            self._wait_until_answering(deadline)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        logger.info("cosmosdb-server answered on port %d after %.2f s", self._port, self.startup_seconds)

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers); safe to call twice."""
        process, self._process, self._port = self._process, None, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stdin is not None:
            process.stdin.close()

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-2000:]

    def _wait_for_port(self, deadline: float) -> int:
        assert self._process is not None
        assert self.log_path is not None
        while True:
            ready = _READY.search(self.log_path.read_bytes())
            if ready:
                return int(ready.group(1))
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"cosmosdb-server exited with code {self._process.returncode}; log {self.log_path}:\n"
                    + self._log_tail()
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"cosmosdb-server did not start within {self._startup_timeout:.0f} s; "
                    f"log {self.log_path}:\n" + self._log_tail()
                )
            time.sleep(0.02)

    def _wait_until_answering(self, deadline: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        while True:
            try:
                with urllib.request.urlopen(self.endpoint, timeout=2, context=context) as response:
                    if response.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


def _as_json(document: Mapping[str, Any]) -> dict[str, Any]:
    # The worker sends output documents to the host as JSON text; a value that does not survive
    # that (a datetime, a set, NaN) must fail here as it would in Azure, not be fixed up by the SDK.
    try:
        text = json.dumps(dict(document), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"document {document.get('id')!r} is not valid JSON: {error}") from error
    body: dict[str, Any] = json.loads(text)
    return body


def _partition_key_value(body: Mapping[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.strip("/").split("/"):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


class CosmosSink:
    """Writes documents the way the Functions Cosmos DB output binding does: upsert each by id within its partition.

    Checks the server would let through but Cosmos DB would not treat the same way are made here,
    before anything is written, so a test cannot pass against the server and then fail in Azure.
    """

    def __init__(
        self, client: CosmosClient, database: str, container_partition_keys: Mapping[str, str] = PARTITION_KEYS
    ) -> None:
        self.database_name = database
        self._database = client.create_database_if_not_exists(database)
        self._partition_keys = dict(container_partition_keys)
        self._containers: dict[str, ContainerProxy] = {
            name: self._database.create_container_if_not_exists(name, partition_key=PartitionKey(path=path))
            for name, path in self._partition_keys.items()
        }

    def _container(self, name: str) -> ContainerProxy:
        try:
            return self._containers[name]
        except KeyError:
            raise ValueError(f"unknown container {name!r}; this sink has {sorted(self._containers)}") from None

    def _checked(self, container_name: str, document: Mapping[str, Any]) -> dict[str, Any]:
        body = _as_json(document)
        doc_id = body.get("id")
        if not isinstance(doc_id, str) or not doc_id or _FORBIDDEN_ID_CHARACTERS.intersection(doc_id):
            raise ValueError(f"document id {doc_id!r} is not a non-empty string without / \\ ? #")
        path = self._partition_keys[container_name]
        value = _partition_key_value(body, path)
        # cosmosdb-server files a null, missing, empty or zero partition key value under the
        # document's id, so null and missing would collide; Cosmos DB keeps them apart.
        usable = isinstance(value, str | int | float) and not isinstance(value, bool) and bool(value)
        if not usable or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(
                f"document {doc_id!r} has partition key {path} = {value!r}, which cosmosdb-server does not "
                f"store as Cosmos DB does; give {container_name!r} a partition key every document has"
            )
        return body

    def upsert(self, container_name: str, documents: Iterable[Mapping[str, Any]]) -> int:
        """Upsert every document (a `func.DocumentList` or plain dicts); returns how many were written.

        Like the worker, which serialises the whole list before the host writes any of it, nothing
        is written when one document is invalid.
        """
        if isinstance(documents, Mapping):
            raise TypeError("upsert takes a list of documents, not one document")
        container = self._container(container_name)
        bodies = [self._checked(container_name, document) for document in documents]
        for body in bodies:
            container.upsert_item(body)
        return len(bodies)

    def count(self, container_name: str) -> int:
        """How many items the container holds."""
        query = "SELECT VALUE COUNT(1) FROM c"
        (total,) = self._container(container_name).query_items(query, enable_cross_partition_query=True)
        return int(cast(Any, total))

    def ids(self, container_name: str) -> list[str]:
        """Every item's id, sorted; an id stored under two partition key values appears twice."""
        query = "SELECT VALUE c.id FROM c"
        return sorted(
            str(i) for i in self._container(container_name).query_items(query, enable_cross_partition_query=True)
        )

    def items(self, container_name: str) -> list[dict[str, Any]]:
        """Every item as written (system properties removed), sorted by id."""
        found = (
            {k: v for k, v in item.items() if k not in SYSTEM_PROPERTIES}
            for item in self._container(container_name).read_all_items()
        )
        return sorted(found, key=lambda item: (item["id"], json.dumps(item, sort_keys=True)))

    def get(self, container_name: str, doc_id: str, partition_key: str | float) -> dict[str, Any] | None:
        """The item with this id and partition key value, or None.

        A query rather than `read_item`: the server answers a point read of a missing id with a 500.
        """
        path = self._partition_keys[container_name].strip("/").split("/")
        field = "c" + "".join(f"[{json.dumps(part)}]" for part in path)
        query = f"SELECT * FROM c WHERE c.id = @id AND {field} = @pk"
        parameters: list[dict[str, Any]] = [{"name": "@id", "value": doc_id}, {"name": "@pk", "value": partition_key}]
        found = list(
            self._container(container_name).query_items(query, parameters=parameters, enable_cross_partition_query=True)
        )
        if not found:
            return None
        return {k: v for k, v in found[0].items() if k not in SYSTEM_PROPERTIES}
