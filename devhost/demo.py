"""`make demo`: the whole pipeline on this machine, no cloud, with a live dashboard.

The app's own functions run end to end (generate → partitioned stream → score → store → change
feed → publish) inside Azure's worker engine (`azure-functions-runtime`, see devhost/worker.py), this
process playing the Functions host. Run by a person in a terminal, the dashboard stays up after the run
until Ctrl-C; in CI or with output piped, the demo exits when the run ends. Documents go to an embedded SQLite
store by default, or to any Cosmos DB endpoint when `CosmosDBConnection` (a connection string) is
set; rows go to Power BI when `POWERBI_PUSH_URL` is set, and always to the local dashboard.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from devhost.dashboard import DashboardServer
from devhost.dashboard_state import DashboardState
from devhost.runner import ROOT, LocalPipeline, RunOptions, host_event_hub_options
from devhost.store import SQLiteStore
from devhost.writes import Store

logger = logging.getLogger(__name__)


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    host = host_event_hub_options()
    parser = argparse.ArgumentParser(prog="python -m devhost.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=_positive_int, default=60_000, help="transactions to generate")
    parser.add_argument("--rate", type=float, default=3000.0, help="transactions per second; 0 = as fast as possible")
    parser.add_argument(
        "--records-per-event",
        type=_positive_int,
        default=1,
        help='transactions per Event Hubs event: 1 sends bare transactions, more sends {"records": [...]} envelopes',
    )
    parser.add_argument("--partitions", type=_positive_int, default=4, help="event stream partitions")
    parser.add_argument("--duration", type=float, default=None, help="stop generating after this many seconds")
    parser.add_argument("--batch-size", type=_positive_int, default=host["max_batch"], help="from host.json")
    parser.add_argument("--prefetch", type=_positive_int, default=host["prefetch"], help="from host.json")
    parser.add_argument("--store", choices=("auto", "sqlite", "cosmos"), default="auto")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data", help="where the SQLite store lives")
    parser.add_argument("--keep-data", action="store_true", help="append to the existing store instead of a fresh one")
    parser.add_argument("--port", type=int, default=8050, help="dashboard port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument(
        "--keep-serving", action="store_true", help="keep the dashboard up after the run (default in a terminal)"
    )
    parser.add_argument("--exit", action="store_true", help="exit when the run ends, even in a terminal")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="show the functions' own log lines")
    return parser.parse_args(argv)


def open_store(kind: str, data_dir: Path, keep: bool) -> Store:
    """The embedded store, or Cosmos DB through the SDK when its connection string is set."""
    connection = os.environ.get("CosmosDBConnection", "")  # noqa: SIM112 - the app's own setting name
    if kind == "cosmos" or (kind == "auto" and connection):
        if not connection:
            raise SystemExit("--store cosmos needs CosmosDBConnection (AccountEndpoint=...;AccountKey=...;)")
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


def keep_serving(args: argparse.Namespace, interactive: bool, env: Mapping[str, str]) -> bool:
    """Whether to keep the dashboard up after the run: asked for, or a person at a terminal outside CI."""
    if args.no_dashboard or args.exit:
        return False
    if args.keep_serving:
        return True
    return interactive and env.get("CI", "").lower() not in ("true", "1")


def _serve(state: DashboardState, port: int) -> DashboardServer:
    """The dashboard on the requested port, or on any free one if that port is taken."""
    try:
        return DashboardServer(state, port=port).start()
    except OSError:
        print(f"port {port} is busy; serving the dashboard on a free port instead")
        return DashboardServer(state, port=0).start()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    options = RunOptions(
        events=args.events,
        rate=args.rate or None,
        partitions=args.partitions,
        duration_s=args.duration,
        max_batch=args.batch_size,
        prefetch=args.prefetch,
        records_per_event=args.records_per_event,
    )
    store = open_store(args.store, args.data_dir, args.keep_data)
    state = DashboardState()
    server = None if args.no_dashboard else _serve(state, args.port)
    print("functions: run in Azure's worker engine (azure-functions-runtime), this process playing the host")
    if server:
        print(f"dashboard: {server.url}")
    if not os.environ.get("POWERBI_PUSH_URL"):
        print("power bi: POWERBI_PUSH_URL not set; rows go to the local dashboard only")
    pipeline = LocalPipeline(store, options, observer=state)

    from tqdm import tqdm

    with pipeline, tqdm(total=options.events, unit="tx", disable=args.no_progress, smoothing=0.1) as bar:
        summary = pipeline.run(progress=bar.update)
    state.mark_finished()

    s = summary.as_dict()
    print(
        f"\ngenerated {s['generated']:,}  scored {s['scored']:,}  rejected {s['rejected']:,}  flagged {s['flagged']:,}"
        f"  published {s['published']:,}  (transactions, sent in {s['events']:,} events)\n"
        f"precision {s['precision']:.3f}  recall {s['recall']:.3f} (against the generator's labels)\n"
        f"{s['transactions_per_s']:,.0f} transactions/s over {s['elapsed_s']:.1f} s; enqueue→stored latency "
        f"p50 {s['latency_p50_s'] * 1000:.0f} ms, p99 {s['latency_p99_s'] * 1000:.0f} ms"
    )
    if server and keep_serving(args, sys.stdin.isatty() and sys.stdout.isatty(), os.environ):
        print(f"\nthe run is over; the dashboard stays up at {server.url} -- press Ctrl-C to stop")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    if server:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
