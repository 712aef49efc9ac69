"""Measure ScoreTransactions through the worker engine at 1/10/100/500 records per event, override on and off.

    .venv/bin/python -m tools.measure_envelopes [--transactions 5000] [--repeats 7]

Every figure is an invocation of the real function through `azure-functions-runtime` (devhost.worker)
with host-shaped messages (zone-less enqueued times, as the host sends them): request bytes in to
response bytes out, best of `--repeats`. The same transactions are used for every row, and ratios
are printed against the single-event row of the same run, with the library's parser, so the figures
compare on one machine at one moment. Event Hubs units follow from the measured event sizes:
1 TU = 1,000 events/s or 1 MB/s ingress, ingress billed per 64 KB unit.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from shared.envelopes import pack_envelopes


@dataclass(frozen=True)
class Row:
    """One configuration's measurement."""

    records_per_event: int
    fast_time: bool
    events: int
    transactions: int
    seconds: float
    mean_event_bytes: float

    @property
    def us_per_transaction(self) -> float:
        return self.seconds / self.transactions * 1e6

    @property
    def transactions_per_s(self) -> float:
        return self.transactions / self.seconds

    def units_per_10k(self) -> tuple[float, float]:
        """(throughput units, 64 KB ingress units per second) for 10,000 transactions/s."""
        events_per_s = 10_000 / self.records_per_event
        mb_per_s = events_per_s * self.mean_event_bytes / 1e6
        tus = max(events_per_s / 1000, mb_per_s)
        ingress = events_per_s * math.ceil(self.mean_event_bytes / 65_536)
        return tus, ingress


def measure(records_per_event: int, fast_time: bool, records: Sequence[dict[str, object]], repeats: int) -> Row:
    """Best-of-`repeats` invocation time for `records` packed `records_per_event` to an event."""
    from devhost.host_messages import eventhub_input
    from devhost.worker import worker
    from functions import eventhub_time
    from shared.settings import get_settings

    os.environ["ENQUEUED_TIME_PARSER"] = "fast" if fast_time else "library"
    get_settings.cache_clear()
    eventhub_time.install()
    engine = worker()
    if records_per_event == 1:
        bodies = [orjson.dumps(r) for r in records]
    else:
        bodies = [e.body for e in pack_envelopes(records, records_per_event, ["0"])]
    times = []
    for _ in range(repeats):
        result = engine.invoke("ScoreTransactions", *eventhub_input(bodies, partition="0"))
        assert len(result.documents("scored")) + len(result.documents("rejected")) == len(records)
        times.append(result.seconds)
    return Row(records_per_event, fast_time, len(bodies), len(records), min(times), statistics.fmean(map(len, bodies)))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; return 0."""
    p = argparse.ArgumentParser(prog="python -m tools.measure_envelopes", description=__doc__.splitlines()[0])
    p.add_argument("--transactions", type=int, default=5000, help="transactions per invocation")
    p.add_argument("--repeats", type=int, default=7, help="invocations per row; the best counts")
    args = p.parse_args(argv)
    from shared.generator import TransactionGenerator

    records = TransactionGenerator(seed=11).generate(args.transactions)
    rows = []
    for size in (1, 10, 100, 500):
        for fast in (False, True):
            # Warm-up invocation first: the model loads once per process.
            measure(size, fast, records[: max(size, 50)], 1)
            rows.append(measure(size, fast, records, args.repeats))
    base = rows[0]
    print(f"ScoreTransactions through azure-functions-runtime, {args.transactions} transactions per invocation")
    print(
        "records/event  parser   events  µs/tx   tx/s/process  vs base  bytes/event  TU per 10k tx/s  ingress units/s"
    )
    for r in rows:
        tus, ingress = r.units_per_10k()
        print(
            f"{r.records_per_event:>13}  {'fast' if r.fast_time else 'library':<7} {r.events:>7}  "
            f"{r.us_per_transaction:6.2f}  {r.transactions_per_s:12,.0f}  {base.seconds / r.seconds:6.1f}x  "
            f"{r.mean_event_bytes:11,.0f}  {tus:15.2f}  {ingress:15,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
