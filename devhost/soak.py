"""Soak run of the local pipeline: nothing lost, nothing duplicated, memory flat.

    python -m devhost.soak --events 1000000      # `make soak`
    python -m devhost.soak --events 50000        # the version `make test` runs

Resident memory is sampled once the run is warm (half the events) and at the end; the run fails if
it grew by 10% or more, if stored scored + rejected differs from generated, or if an id repeats.
Warm means past the bounded growth: the behaviour state kept in the worker process fills until every
account holds its 40 latest payments (10,000 accounts x ~3 KB, reached after ~400,000 transactions),
and only after that should memory stay flat. Progress goes to stderr every tenth of the run (the
report on stdout stays one JSON document); `--events` and the app settings are checked first, and
a run whose store would not fit in the temporary folder's free space is refused before it starts.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from devhost.cli import Parser, UsageError, app_settings, check_disk, fail, integer
from devhost.runner import LocalPipeline, RunOptions
from devhost.store import BYTES_PER_TRANSACTION, SQLiteStore

PROG = "python -m devhost.soak"

MAX_RSS_GROWTH = 0.10


def rss_bytes() -> int:
    """This process's resident set size now (Linux), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


@dataclass
class SoakReport:
    events: int
    generated: int
    stored_scored: int
    stored_rejected: int
    distinct_scored_ids: int
    rss_start_mb: float
    rss_end_mb: float
    events_per_s: float

    @property
    def rss_growth(self) -> float:
        return self.rss_end_mb / self.rss_start_mb - 1.0

    @property
    def problems(self) -> list[str]:
        found = []
        if self.stored_scored + self.stored_rejected != self.generated:
            found.append(f"stored {self.stored_scored + self.stored_rejected} of {self.generated} generated")
        if self.distinct_scored_ids != self.stored_scored:
            found.append(f"{self.stored_scored - self.distinct_scored_ids} duplicate ids")
        if self.rss_growth >= MAX_RSS_GROWTH:
            found.append(f"resident memory grew {self.rss_growth:.1%}")
        return found


class Progress:
    """A line on `out` each time another tenth of the run is stored: a long run is never silent."""

    def __init__(self, total: int, out: TextIO = sys.stderr, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = 0
        self._out = out
        self._clock = clock
        self._started = clock()
        self._next = 1

    def update(self, n: int) -> None:
        self.done += n
        while self._next <= 10 and self.done * 10 >= self._next * self.total:
            elapsed = self._clock() - self._started
            print(
                f"soak: {self.done:,} of {self.total:,} transactions stored ({self._next * 10}%, {elapsed:.0f} s)",
                file=self._out,
                flush=True,
            )
            self._next += 1


def soak(events: int, directory: Path, report: Callable[[int], None] | None = None) -> SoakReport:
    store = SQLiteStore(directory / "soak.sqlite")
    # A small replay window (just above the runner's in-flight backlog of two batches per partition):
    # retention filling up is bounded growth, but it would blur a 50k-event check.
    pipeline = LocalPipeline(store, RunOptions(events=events, retain_per_partition=2500))
    warm_after = max(events // 2, 1)
    done = 0
    start_rss: list[int] = []

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if report is not None:
            report(n)
        if not start_rss and done >= warm_after:
            start_rss.append(rss_bytes())

    with pipeline:
        summary = pipeline.run(progress=progress)
    end_rss = rss_bytes()
    ids = store.ids("scored")
    return SoakReport(
        events=events,
        generated=summary.generated,
        stored_scored=store.count("scored"),
        stored_rejected=store.count("rejected"),
        distinct_scored_ids=len(set(ids)),
        rss_start_mb=round((start_rss[0] if start_rss else end_rss) / 2**20, 1),
        rss_end_mb=round(end_rss / 2**20, 1),
        events_per_s=round(summary.transactions_per_s, 1),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(PROG, __doc__.splitlines()[0])
    parser.add_argument("--events", type=integer(1), default=1_000_000, help="transactions to run through")
    args = parser.parse_args(argv)
    try:
        app_settings({**os.environ, "BEHAVIOUR_STATE": "memory"})
        check_disk(
            args.events * BYTES_PER_TRANSACTION,
            Path(tempfile.gettempdir()),
            f"--events {args.events:,}",
            "lower --events, or set TMPDIR to a folder on a bigger disk",
        )
    except UsageError as exc:
        fail(PROG, str(exc))
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        report = soak(args.events, Path(tmp), Progress(args.events).update)
    print(json.dumps({**asdict(report), "rss_growth": round(report.rss_growth, 4)}, indent=2))
    for problem in report.problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
