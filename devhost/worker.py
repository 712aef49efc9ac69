"""Azure's Python worker engine in this process, driven the way the Functions host drives it.

Azure never calls a Python function directly: the worker indexes `function_app.py`, checks every
binding annotation, turns the host's protobuf messages into `azure.functions` objects and the
function's outputs back into messages. From Python 3.13 that engine is `azure-functions-runtime`,
a package the app pins in requirements.txt, so the engine here is the one Azure runs. This module
plays the .NET host toward it, the way Microsoft's own tests drive it: `worker_init_request`
(which indexes the app), `functions_metadata_request`, `function_load_request`, then one
`invocation_request` per call, each a real `StreamingMessage` round-tripped through bytes as gRPC
would carry it. What the host sends per trigger (and what comes back) was read from the host and
extension source (docs/worker.md, "Message shapes", names the files); builders for those shapes are
`devhost.host_messages`.

The engine keeps module-level state (one app per process), so there is one `Worker` per process:
`worker()`. Invocations run on the engine's event-loop thread, sync functions in its thread pool,
so calls from several threads run concurrently exactly as on Azure.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
HOST_VERSION = "4.1037.0"
"""The Functions host version this process plays (the one whose source the message shapes were read from)."""


class WorkerError(RuntimeError):
    """The engine answered a request with a Failure status (its message and exception type inside)."""


def protos() -> Any:
    """The host protocol's generated modules (installed into the venv by tools/install_worker_protos.py)."""
    try:
        import _functions_rpc
    except ImportError as exc:  # pragma: no cover - only without `make setup`
        raise ImportError(
            "the Functions host protocol modules are missing: run `make setup` (tools/install_worker_protos.py)"
        ) from exc
    return _functions_rpc


@dataclass(frozen=True, slots=True)
class _Request:
    """What the proxy worker hands the engine: the message, and `host`/`protos` properties."""

    name: str
    request: Any
    properties: Mapping[str, Any]


@dataclass
class Invocation:
    """One invocation's answer, decoded: outputs by binding name, `$return` and timings."""

    outputs: dict[str, Any]
    returned: Any
    seconds: float
    """Request bytes in to response bytes out, the engine's whole part."""
    response: Any = field(repr=False)

    def documents(self, name: str) -> list[dict[str, Any]]:
        """The documents set on a Cosmos DB output (empty when the function never set it, as the host sees it)."""
        value = self.outputs.get(name)
        return [] if value is None else list(value)


def decode_typed_data(data: Any) -> Any:
    """A `TypedData` as a Python value, as the host reads it (json parsed, http as a plain dict)."""
    kind = data.WhichOneof("data")
    if kind is None:
        return None
    if kind == "json":
        return orjson.loads(data.json)
    if kind == "http":
        http = data.http
        return {
            "status_code": int(http.status_code or 200),
            "headers": dict(http.headers),
            "body": decode_typed_data(http.body) if http.HasField("body") else b"",
        }
    if kind in ("collection_string", "collection_bytes", "collection_sint64", "collection_double"):
        return list(getattr(getattr(data, kind), kind.removeprefix("collection_")))
    return getattr(data, kind)


class Worker:
    """The engine, initialised on an app directory, with its functions loaded by name."""

    def __init__(self, app_dir: Path = ROOT) -> None:
        import azure_functions_runtime as engine

        self._engine = engine
        self._protos = protos()
        self.app_dir = app_dir
        if str(app_dir) not in sys.path:
            # The proxy worker puts the app's directory on sys.path before indexing.
            sys.path.insert(0, str(app_dir))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="worker-event-loop", daemon=True)
        self._thread.start()
        engine.start_threadpool_executor()
        self.function_ids: dict[str, str] = {}
        self.metadata: dict[str, Any] = {}
        self._init()

    # -- the host's side of the protocol ------------------------------------------------------------

    def _send(self, handler: Any, message: Any, name: str) -> Any:
        """One request to the engine, through bytes as gRPC carries it; the response also through bytes."""
        wire = self._protos.StreamingMessage.FromString(message.SerializeToString())
        request = _Request(name, wire, {"host": "127.0.0.1", "protos": self._protos})
        response = asyncio.run_coroutine_threadsafe(handler(request), self._loop).result()
        return type(response).FromString(response.SerializeToString())

    def _check(self, result: Any, what: str) -> None:
        if result.status != self._protos.StatusResult.Success:
            exc = result.exception
            raise WorkerError(f"{what}: {exc.message}" if exc.message else what)

    def _init(self) -> None:
        p = self._protos
        init = p.StreamingMessage(
            request_id=str(uuid.uuid4()),
            worker_init_request=p.WorkerInitRequest(
                host_version=HOST_VERSION,
                function_app_directory=str(self.app_dir),
                capabilities={"FunctionDataCache": "false"},
            ),
        )
        response = self._send(self._engine.worker_init_request, init, "worker_init_request")
        self._check(response.result, "WorkerInitRequest")
        meta_request = p.StreamingMessage(
            functions_metadata_request=p.FunctionsMetadataRequest(function_app_directory=str(self.app_dir))
        )
        metadata = self._send(self._engine.functions_metadata_request, meta_request, "functions_metadata_request")
        self._check(metadata.result, "FunctionsMetadataRequest")
        for fn in metadata.function_metadata_results:
            load = p.StreamingMessage(
                function_load_request=p.FunctionLoadRequest(function_id=fn.function_id, metadata=fn)
            )
            loaded = self._send(self._engine.function_load_request, load, "function_load_request")
            self._check(loaded.result, f"FunctionLoadRequest {fn.name}")
            self.function_ids[fn.name] = fn.function_id
            self.metadata[fn.name] = fn

    def bindings(self, name: str) -> list[dict[str, Any]]:
        """A function's bindings as the host receives them (the engine's `raw_bindings`, function.json style)."""
        return [orjson.loads(raw) for raw in self.metadata[name].raw_bindings]

    def invocation_request(
        self,
        name: str,
        inputs: Mapping[str, Any],
        trigger_metadata: Mapping[str, Any] | None = None,
        trace_parent: str | None = None,
    ) -> bytes:
        """The `StreamingMessage` the host sends to invoke `name`, as the bytes gRPC carries."""
        p = self._protos
        request = p.InvocationRequest(
            invocation_id=str(uuid.uuid4()),
            function_id=self.function_ids[name],
            input_data=[p.ParameterBinding(name=k, data=v) for k, v in inputs.items()],
            trigger_metadata=dict(trigger_metadata or {}),
            trace_context=p.RpcTraceContext(
                trace_parent=trace_parent or f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
            ),
        )
        wire: bytes = p.StreamingMessage(invocation_request=request).SerializeToString()
        return wire

    def invoke_bytes(self, wire: bytes) -> bytes:
        """The engine's whole part of one invocation: request bytes in, `InvocationResponse` bytes out."""
        message = self._protos.StreamingMessage.FromString(wire)
        request = _Request("invocation_request", message, {"host": "127.0.0.1", "protos": self._protos})
        response = asyncio.run_coroutine_threadsafe(self._engine.invocation_request(request), self._loop).result()
        out: bytes = response.SerializeToString()
        return out

    def invoke(
        self,
        name: str,
        inputs: Mapping[str, Any],
        trigger_metadata: Mapping[str, Any] | None = None,
        trace_parent: str | None = None,
    ) -> Invocation:
        """Invoke a function by name with `TypedData` inputs by binding name; raise `WorkerError` on failure."""
        wire = self.invocation_request(name, inputs, trigger_metadata, trace_parent)
        started = time.perf_counter()
        answer = self.invoke_bytes(wire)
        seconds = time.perf_counter() - started
        response = self._protos.InvocationResponse.FromString(answer)
        self._check(response.result, f"invocation of {name}")
        outputs = {b.name: decode_typed_data(b.data) for b in response.output_data}
        returned = decode_typed_data(response.return_value) if response.HasField("return_value") else None
        return Invocation(outputs, returned, seconds, response)


_lock = threading.Lock()
_worker: Worker | None = None


def worker() -> Worker:
    """The process's one engine on this app (started on first use; later calls share it)."""
    global _worker
    with _lock:
        if _worker is None:
            _worker = Worker(ROOT)
        return _worker


def check(app_dir: Path) -> list[str]:
    """Index and load the app in `app_dir` as Azure would; the loaded function names (raises WorkerError)."""
    return sorted(Worker(app_dir).function_ids)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m devhost.worker [APP_DIR]`: does the worker index and load this app? Exit 1 if not."""
    args = list(sys.argv[1:] if argv is None else argv)
    app_dir = Path(args[0]).resolve() if args else ROOT
    try:
        names = check(app_dir)
    except WorkerError as exc:
        print(f"refused by azure-functions-runtime: {exc}", file=sys.stderr)
        return 1
    print(f"{len(names)} functions indexed and loaded: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
