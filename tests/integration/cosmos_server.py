"""A local Cosmos DB (@vercel/cosmosdb-server) for tests; `devhost.cosmos_store` writes to it as the binding does."""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
from azure.cosmos import CosmosClient

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
