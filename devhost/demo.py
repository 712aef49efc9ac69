"""`make demo`: the whole pipeline on this machine, no cloud, with a live dashboard and the HTTP functions on a port.

The app's own functions run end to end (generate → partitioned stream → score → store → change
feed → publish) inside Azure's worker engine (`azure-functions-runtime`, see devhost/worker.py), this
process playing the Functions host; its HTTP functions answer on a local port with the host's
routing and key check (devhost/functions_host.py). Every option and setting is checked before
anything starts (a bad one is one line and exit status 2). Run by a person in a terminal, the
dashboard and the functions stay up after the run until Ctrl-C; in CI or with output piped, the demo
exits when the run ends. However it ends (the run over, Ctrl-C, SIGTERM, an error), what it started
stops with it. Documents go to an embedded SQLite store by default, or to any Cosmos DB endpoint
when `CosmosDBConnection` (a connection string) is set; rows go to Power BI when `POWERBI_PUSH_URL`
is set, and always to the local dashboard.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Final
from urllib.parse import urlsplit

from devhost.cli import Parser, UsageError, app_settings, check_disk, fail, integer, number, port, writable_folder
from devhost.dashboard import DashboardServer
from devhost.dashboard_state import DashboardState
from devhost.functions_host import FunctionsHost, FunctionsServer, new_key
from devhost.runner import ROOT, LocalPipeline, RunOptions, host_event_hub_options
from devhost.store import BYTES_PER_TRANSACTION, SQLiteStore
from devhost.summary import RunSummary
from devhost.worker import worker
from devhost.writes import Store
from shared.behaviour import merchants
from shared.settings import KEY_VAULT_REFERENCE_PREFIX

logger = logging.getLogger(__name__)

PROG: Final = "python -m devhost.demo"
MAX_BATCH: Final = 4000
"""The stream keeps 10,000 events per partition; two batches in flight plus a generated chunk must fit."""
KEY_FILE: Final = "functions-key"
_MODEL_UNAVAILABLE: Final = "model:model_unavailable"
DEFAULT_LABEL_HISTORY_DAYS: Final = 14
"""About 17 s of start-up on a 2-core VM (30 days: about 50 s): the 7-day window up to 7 days ago, filled."""


def _rate(raw: str) -> float:
    value = number(0, what="0 (as fast as possible) or at least 1 transaction per second")(raw)
    if 0 < value < 1:
        # Slower than one a second, a default run would take most of a day: almost surely a typo.
        raise argparse.ArgumentTypeError(
            f"must be 0 (as fast as possible) or at least 1 transaction per second, got {raw!r}"
        )
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    try:
        host = host_event_hub_options()
    except (OSError, ValueError, TypeError) as exc:
        fail(PROG, f"host.json extensions.eventHubs maxEventBatchSize and prefetchCount must be whole numbers ({exc})")
    parser = Parser(PROG, __doc__.splitlines()[0])
    parser.add_argument("--events", type=integer(1), default=60_000, help="transactions to generate")
    parser.add_argument("--rate", type=_rate, default=3000.0, help="transactions per second; 0 = as fast as possible")
    parser.add_argument(
        "--records-per-event",
        type=integer(1, 2000),
        default=1,
        help='transactions per Event Hubs event: 1 sends bare transactions, more sends {"records": [...]} envelopes',
    )
    parser.add_argument("--partitions", type=integer(1, 1024), default=4, help="event stream partitions")
    parser.add_argument(
        "--duration",
        type=number(0, above=True),
        default=None,
        help="stop generating after this many seconds, even if not all --events are sent (default: %(default)s: none)",
    )
    parser.add_argument(
        "--batch-size", type=integer(1, MAX_BATCH), default=host["max_batch"], help="events per invocation (host.json)"
    )
    parser.add_argument("--prefetch", type=integer(1), default=host["prefetch"], help="events read ahead (host.json)")
    parser.add_argument(
        "--label-history-days",
        type=integer(0, merchants.KEEP_DAYS),
        default=DEFAULT_LABEL_HISTORY_DAYS,
        help="before the run, generate this many days of the stream before now (not scored), import their labels "
        "known by now and aggregate them, so merchant risk has a past; 0 = none",
    )
    parser.add_argument(
        "--store",
        choices=("auto", "sqlite", "cosmos"),
        default="auto",
        help="auto: Cosmos DB when CosmosDBConnection is set, else SQLite",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / ".data", help="where the SQLite store and the functions key live"
    )
    parser.add_argument("--keep-data", action="store_true", help="append to the existing store instead of a fresh one")
    parser.add_argument("--port", type=port, default=8050, help="dashboard port on 127.0.0.1 (0 = any free port)")
    parser.add_argument(
        "--functions-port", type=port, default=7071, help="HTTP functions port on 127.0.0.1 (0 = any free port)"
    )
    parser.add_argument("--no-dashboard", action="store_true", help="serve no dashboard")
    end = parser.add_mutually_exclusive_group()
    end.add_argument(
        "--keep-serving", action="store_true", help="keep serving after the run (default in a terminal outside CI)"
    )
    end.add_argument("--exit", action="store_true", help="exit when the run ends, even in a terminal")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="show the functions' own log lines and each HTTP call")
    return parser.parse_args(argv)


def _uses_cosmos(kind: str, env: Mapping[str, str]) -> bool:
    return kind == "cosmos" or (kind == "auto" and bool(env.get("CosmosDBConnection", "").strip()))


def _reachable(setting: str, url: str, timeout_s: float = 5.0) -> None:
    """A UsageError unless `url`'s host takes a TCP connection within `timeout_s`: the SDK would retry for minutes."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{setting} names {parts.hostname}:{port}, which does not answer ({reason})") from None


def preflight(args: argparse.Namespace, env: Mapping[str, str]) -> RunOptions:
    """Every check that needs no running part: options together, app settings, the model, then folder, disk, network.

    The checks that only read come first, so a bad setting leaves nothing behind (not even the data folder).
    """
    from shared.loopback import connection_string_endpoint
    from shared.publishing.push import PowerBIPushClient
    from shared.scoring.model import ARTIFACT_NAME, METADATA_NAME

    if args.port and args.port == args.functions_port:
        raise UsageError(f"--functions-port must differ from --port (both are {args.port})")
    cosmos = _uses_cosmos(args.store, env)
    connection = env.get("CosmosDBConnection", "").strip()
    if cosmos and not connection:
        raise UsageError("--store cosmos needs CosmosDBConnection set to AccountEndpoint=...;AccountKey=...;")
    endpoint = connection_string_endpoint(connection)
    if cosmos and (not endpoint.startswith(("https://", "http://")) or "AccountKey=" not in connection):
        raise UsageError("CosmosDBConnection must be a connection string AccountEndpoint=https://...;AccountKey=...;")
    state = env.get("BEHAVIOUR_STATE", "").strip().lower() or None
    if state == "cosmos" and not cosmos:
        raise UsageError(
            "BEHAVIOUR_STATE=cosmos needs the Cosmos DB store (CosmosDBConnection); use memory or off here"
        )
    # The settings as the worker will read them, with the two the demo sets for its own stream.
    chosen = {
        "GENERATOR_RECORDS_PER_EVENT": str(args.records_per_event),
        "EVENT_HUB_PARTITION_COUNT": str(args.partitions),
        "BEHAVIOUR_STATE": state or ("cosmos" if cosmos else "memory"),
    }
    settings = app_settings({**env, **chosen})
    for name in (ARTIFACT_NAME, METADATA_NAME):
        if not (settings.model_dir / name).is_file():
            raise UsageError(
                f"MODEL_DIR must be a folder holding {ARTIFACT_NAME} and {METADATA_NAME}; "
                f"{settings.model_dir} has no {name}"
            )
    if settings.powerbi_push_url is not None:
        try:
            PowerBIPushClient(settings.powerbi_push_url, settings.powerbi_timeout_s)
        except ValueError:
            # Never echo the value: a push URL carries its key.
            raise UsageError("POWERBI_PUSH_URL must be an https:// URL (plain http only to a loopback host)") from None
    writable_folder("--data-dir", args.data_dir)
    if cosmos:
        _reachable("CosmosDBConnection", endpoint)
    else:
        planned = args.events if args.duration is None or not args.rate else min(args.events, args.rate * args.duration)
        check_disk(
            int(planned) * BYTES_PER_TRANSACTION,
            args.data_dir,
            f"--events {args.events:,}",
            "lower --events (or set --duration), or point --data-dir at a bigger disk",
        )
    return RunOptions(
        events=args.events,
        rate=args.rate or None,
        partitions=args.partitions,
        duration_s=args.duration,
        max_batch=args.batch_size,
        prefetch=args.prefetch,
        records_per_event=args.records_per_event,
        behaviour_state=state,
    )


def open_store(kind: str, data_dir: Path, keep: bool) -> Store:
    """The embedded store, or Cosmos DB through the SDK when its connection string is set."""
    connection = os.environ.get("CosmosDBConnection", "")  # noqa: SIM112 - the app's own setting name
    if _uses_cosmos(kind, os.environ):
        from azure.cosmos import CosmosClient

        from devhost.cosmos_store import CosmosStore
        from shared.loopback import connection_string_endpoint, is_loopback_url

        # Emulators on this machine use self-signed certificates; never skip checks for a remote host.
        verify = not is_loopback_url(connection_string_endpoint(connection))
        client = CosmosClient.from_connection_string(connection, connection_verify=verify)
        database = os.environ.get("COSMOS_DATABASE", "fraud")
        print(f"store: Cosmos DB database {database!r}")
        return CosmosStore(client, database)
    path = data_dir / "pipeline.sqlite"
    if not keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(f"store: SQLite {path}")
    return SQLiteStore(path)


def where_stored(store: Store) -> str:
    """Where the run's documents are and how to read them, for the closing summary."""
    if isinstance(store, SQLiteStore):
        shown = os.path.relpath(store.path) if store.path.is_relative_to(Path.cwd()) else str(store.path)
        return (
            f"stored in {shown}: table c_scored ({store.count('scored'):,} documents) and c_rejected "
            f"({store.count('rejected'):,}), one JSON document per row in column body; for example\n"
            f"  sqlite3 {shown} \"SELECT id, json_extract(CAST(body AS TEXT), '$.fraud_probability') "
            f'FROM c_scored LIMIT 5"\n'
            "the next run starts a fresh store unless --keep-data (README: Querying what a run stored)"
        )
    database = getattr(store, "database_name", "?")
    return f"stored in Cosmos DB database {database!r}, containers scored and rejected"


def keep_serving(args: argparse.Namespace, interactive: bool, env: Mapping[str, str]) -> bool:
    """Whether to keep serving after the run: asked for, or a person at a terminal outside CI."""
    if args.no_dashboard or args.exit:
        return False
    if args.keep_serving:
        return True
    return interactive and env.get("CI", "").lower() not in ("true", "1")


def _started[S: (DashboardServer, FunctionsServer)](make: Callable[[int], S], what: str, port: int) -> S:
    """Started on the requested port, or on any free one if that port is taken."""
    try:
        return make(port).start()
    except OSError:
        print(f"port {port} is busy; serving the {what} on a free port instead")
        return make(0).start()


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[list[int]]:
    """SIGTERM and SIGHUP end the demo as Ctrl-C does (KeyboardInterrupt), so every `finally` runs."""
    received: list[int] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _report(summary: RunSummary, store: Store) -> None:
    s = summary.as_dict()
    print(
        f"\ngenerated {s['generated']:,}  scored {s['scored']:,}  rejected {s['rejected']:,}  flagged {s['flagged']:,}"
        f"  published {s['published']:,}  (transactions, sent in {s['events']:,} events)\n"
        f"precision {s['precision']:.3f}  recall {s['recall']:.3f} (against the generator's labels)\n"
        f"{s['transactions_per_s']:,.0f} transactions/s over {s['elapsed_s']:.1f} s; enqueue→stored latency "
        f"p50 {s['latency_p50_s'] * 1000:.0f} ms, p99 {s['latency_p99_s'] * 1000:.0f} ms"
    )
    print(where_stored(store))


def _run(args: argparse.Namespace, options: RunOptions) -> int:
    with contextlib.ExitStack() as stack:
        store = open_store(args.store, args.data_dir, args.keep_data)
        if isinstance(store, SQLiteStore):
            stack.callback(store.close)
        state = DashboardState()
        pipeline = stack.enter_context(LocalPipeline(store, options, observer=state))
        print("functions: run in Azure's worker engine (azure-functions-runtime), this process playing the host")
        if args.label_history_days:
            print(f"label history: generating {args.label_history_days} days before now...", flush=True)
            print(pipeline.label_history(args.label_history_days).line())
        key = new_key()
        key_file = args.data_dir / KEY_FILE
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        host = FunctionsHost(worker(), key, sink=pipeline.outputs)
        functions = _started(lambda p: FunctionsServer(host, port=p), "HTTP functions", args.functions_port)
        stack.callback(functions.stop)
        print(f"http functions: {functions.url}/  key (x-functions-key header or ?code=): {key}  (also in {key_file})")
        for function in functions.host.functions:
            print(f"  {function.describe()}")
        if not args.no_dashboard:
            dashboard = _started(lambda p: DashboardServer(state, port=p), "dashboard", args.port)
            stack.callback(dashboard.stop)
            print(f"dashboard: {dashboard.url}")
        push_url = os.environ.get("POWERBI_PUSH_URL", "").strip()
        if not push_url:
            print("power bi: POWERBI_PUSH_URL not set; rows go to the local dashboard only")
        elif push_url.startswith(KEY_VAULT_REFERENCE_PREFIX):
            print("power bi: POWERBI_PUSH_URL is a Key Vault reference, which only Azure resolves; dashboard only")
        else:
            # The host only: the URL carries the dataset's key.
            print(
                f"power bi: rows go to {urlsplit(push_url).hostname} and the local dashboard; a failing push is "
                f"retried per PublishToPowerBI's @retry, and after the run for up to {options.publish_drain_s:.0f} s"
            )

        from tqdm import tqdm

        try:
            with tqdm(total=options.events, unit="tx", disable=args.no_progress, smoothing=0.1) as bar:
                pipeline.run(progress=bar.update)
        finally:
            state.mark_finished()
            _report(pipeline.summary, store)
            flagged, by_merchant = pipeline.summary.flagged, pipeline.flagged_for_merchant
            print(f"merchant risk: {by_merchant:,} of {flagged:,} flagged payments explained by frauds at the merchant")
        summary = pipeline.summary
        code = 0
        if summary.scored == 0 and summary.rejected_reasons.get(_MODEL_UNAVAILABLE):
            print(
                "every transaction was rejected as model_unavailable: the model in MODEL_DIR does not load "
                "(the log above says why; `make train` rebuilds it)",
                file=sys.stderr,
            )
            code = 1
        if keep_serving(args, sys.stdin.isatty() and sys.stdout.isatty(), os.environ):
            # Inside the suppress before saying so: a signal that follows the words ends the serving, not the run.
            with contextlib.suppress(KeyboardInterrupt):
                print("\nthe run is over; the dashboard and the HTTP functions stay up (what they are sent is scored)")
                print("press Ctrl-C to stop", flush=True)
                pipeline.serve(threading.Event())
        return code


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        options = preflight(args, os.environ)
    except UsageError as exc:
        fail(PROG, str(exc))
    with _signals_interrupt() as received:
        try:
            return _run(args, options)
        except KeyboardInterrupt:
            signum = received[-1] if received else signal.SIGINT
            print(
                f"\nstopped by {signal.Signals(signum).name}; everything the demo started has stopped", file=sys.stderr
            )
            return 128 + signum
        except Exception:  # the boundary: say it, with the traceback in the log; the `with` blocks have cleaned up
            logger.exception("the demo stopped on an error; everything it started has stopped")
            return 1


if __name__ == "__main__":
    sys.exit(main())
