"""Benchmark: per-transaction cost through the worker now against a baseline commit, both measured in one run.

    python -m benchmarks.bench_since [--baseline 4d5b66e] [--accounts 2000] [--history 40] [--invocations 20]
        [--records-per-event 100] [--events-per-delivery 10] [--rounds 3] [--quick]

Issue 17 asks that scoring through the worker at 100 records per event stay within 2x of the
per-transaction cost of "today", commit 4d5b66e, the last before its work (account day windows,
the binary state, merchant risk, a bigger model). Figures from other days on this shared VM cannot
be compared, so the baseline is measured again in the same run: a temporary detached `git worktree`
of it (removed at the end, even on error), and `benchmarks/since_child.py` in a fresh process of
this venv's python per tree and round (the trees share package names, so never one process for
both). The two processes of a round warm up, then take turns invocation by invocation (A B, B A,
A B...), the other one idle meanwhile: a slow spell of this shared VM lands on both sides alike,
which whole runs one after the other did not manage (their ratio moved 0.5-1.7x between rounds).

Both sides score the same transactions: the generator's accounts that have at least `--history`
payments before the timed part, all of those payments played through the worker untimed (every
state full, as in steady state), then the accounts' next payments in event time order, timed per
invocation from request bytes to response bytes (`devhost.worker` `invoke_bytes`). A tree
without merchant risk gets the records without `merchant_id` (the fields its contract has, so the
path its producers took), the other with it and a full merchant state for every merchant named.
Every record must come back scored, none rejected, or the run fails: a fast failure is no speed.
A last, instrumented run per side (not in the ratio) says where the time goes.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from benchmarks.machine import machine
from devhost.cli import Parser, UsageError, fail, integer

PROG = "python -m benchmarks.bench_since"
ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "since_child.py"
BASELINE = "4d5b66e"
"""The last commit before issue 17's work began (3d17777 is its first)."""
TARGET_RATIO = 2.0
MAX_PER_INVOCATION = 50_000
"""MAX_TRANSACTIONS_PER_INVOCATION's default in both trees: past it the scorer rejects events."""
START = datetime(2026, 10, 1, tzinfo=UTC)
"""Event time of the first generated payment: fixed, so every run scores the same records."""
POPULATION_FACTOR = 2.5
"""Population per account measured: enough that `--accounts` of them reach `--history` within ~4 weeks at 40."""
CHUNK = 20_000
MERCHANT_STORE = Path("shared/behaviour/merchant_store.py")
"""A tree holding this has merchant risk: its records carry `merchant_id` and its merchant store is filled."""
QUICK = {"accounts": 40, "history": 5, "invocations": 2, "events_per_delivery": 2, "rounds": 1}
CHILD_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
"""All the children inherit: app settings in this shell must not reach one side only."""


@dataclass(frozen=True)
class Workload:
    """The records both sides score: warm-up payments (untimed), then the timed ones."""

    warm: list[dict[str, Any]]
    timed: list[dict[str, Any]]
    accounts: int
    prior: list[int]
    """Payments before the timed part, per account measured."""


@dataclass(frozen=True)
class Run:
    """One child's answer."""

    side: str
    seconds: list[float]
    transactions: list[int]
    scored: int
    rejected: int
    merchants: int
    histories: dict[str, int]
    steps: dict[str, float]
    phases: list[str]

    def per_tx_us(self) -> list[float]:
        return [s / n * 1e6 for s, n in zip(self.seconds, self.transactions, strict=True)]


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


def commit_of(rev: str, option: str) -> str:
    """The full commit `rev` names; a UsageError when this repository does not hold it."""
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise UsageError(
            f"{option} {rev!r} is not a commit in this repository (a shallow clone? `git fetch --unshallow` gets it)"
        )
    return done.stdout.strip()


@contextmanager
def worktree(commit: str, into: Path) -> Iterator[Path]:
    """A detached worktree of `commit` at `into`, removed (and pruned) however the block ends."""
    git("worktree", "add", "--detach", "--quiet", str(into), commit)
    try:
        yield into
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(into)], cwd=ROOT, capture_output=True, check=False)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True, check=False)
        shutil.rmtree(into, ignore_errors=True)


def workload(accounts: int, history: int, timed: int, seed: int) -> Workload:
    """The first `accounts` of the generator's accounts to reach `history` payments, with all their payments until
    then (the warm-up) and their next `timed` payments, in event time order."""
    from shared.generation.generator import TransactionGenerator

    generator = TransactionGenerator(seed=seed, accounts=round(accounts * POPULATION_FACTOR), start=START)
    counts: Counter[str] = Counter()
    chosen: dict[str, None] = {}
    seen: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    while not rest:
        chunk = generator.generate(CHUNK)
        for i, record in enumerate(chunk):
            seen.append(record)
            counts[record["account_id"]] += 1
            if counts[record["account_id"]] == history:
                chosen[record["account_id"]] = None
                if len(chosen) == accounts:
                    rest = chunk[i + 1 :] or generator.generate(CHUNK)
                    break
    warm = [r for r in seen if r["account_id"] in chosen]
    later: list[dict[str, Any]] = []
    while len(later) < timed:
        later.extend(r for r in rest if r["account_id"] in chosen)
        rest = generator.generate(CHUNK)
    return Workload(warm, later[:timed], accounts, sorted(counts[a] for a in chosen))


def write_records(path: Path, records: Sequence[dict[str, Any]], merchant_id: bool) -> None:
    """JSON Lines, one record a line; without `merchant_id` for a tree whose contract predates it."""
    with path.open("wb") as out:
        for record in records:
            if not merchant_id:
                record = {k: v for k, v in record.items() if k != "merchant_id"}
            out.write(orjson.dumps(record) + b"\n")


def child_env() -> dict[str, str]:
    """The children's environment: the same for both sides, account and merchant states in the process."""
    env = {name: os.environ[name] for name in CHILD_ENV if name in os.environ}
    env.update(
        BEHAVIOUR_STATE="memory",
        MERCHANT_STATE="memory",
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


class Child:
    """One side's process (`since_child.py` in one tree), driven one timed invocation at a time."""

    def __init__(self, side: str, tree: Path, records: Path, warm: int, args: Any, folder: Path, split: bool) -> None:
        self.side = side
        self.out = folder / f"{side}.json"
        self.log = folder / f"{side}.stderr"
        options = {
            "--tree": tree,
            "--records": records,
            "--warm": warm,
            "--per-event": args.records_per_event,
            "--per-delivery": args.events_per_delivery,
            "--out": self.out,
        }
        command = [sys.executable, "-P", str(CHILD), *(str(x) for pair in options.items() for x in pair)]
        if (tree / MERCHANT_STORE).exists():
            command.append("--merchants")
        if split:
            command.append("--split")
        with self.log.open("w") as err:
            self.process = subprocess.Popen(
                command, cwd=tree, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
            )

    def failure(self) -> RuntimeError:
        """What went wrong, from the child's last line on stderr, once it has ended."""
        code = self.process.wait()
        lines = self.log.read_text().strip().splitlines()
        return RuntimeError(f"the {self.side} run failed: {lines[-1] if lines else f'exit status {code}'}")

    def expect(self, word: str) -> None:
        """Read the child's next word; its failure if that is not `word`."""
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != word:
            raise self.failure()

    def step(self) -> None:
        """One timed invocation, and its check that every record came back scored."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write("go\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise self.failure() from None
        self.expect("ok")

    def finish(self) -> Run:
        """The child's figures, once it has ended well."""
        if self.process.wait() != 0:
            raise self.failure()
        raw = orjson.loads(self.out.read_bytes())
        return Run(self.side, **{f.name: raw[f.name] for f in fields(Run) if f.name != "side"})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


def run_round(
    k: int, trees: dict[str, Path], files: dict[str, Path], warm: int, args: Any, folder: Path, split: bool
) -> dict[str, Run]:
    """Both sides in fresh processes, warmed up, then taking turns invocation by invocation (A B, B A, ...)."""
    folder.mkdir()
    children: dict[str, Child] = {}
    try:
        # The warm-ups overlap (untimed); the timed invocations never do: the side not invoked waits on its stdin.
        for side, tree in trees.items():
            children[side] = Child(side, tree, files[side], warm, args, folder, split)
        for child in children.values():
            child.expect("ready")
        sides = list(children.values())
        for i in range(args.invocations):
            for child in sides if (i + k) % 2 == 0 else sides[::-1]:
                child.step()
        return {side: child.finish() for side, child in children.items()}
    finally:
        for child in children.values():
            child.stop()


def _quick(argv: Sequence[str] | None) -> bool:
    return "--quick" in (sys.argv[1:] if argv is None else argv)


def parse(argv: Sequence[str] | None) -> Any:
    parser = Parser(PROG, __doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="the commit measured against (issue 17's 'today')")
    parser.add_argument(
        "--current", default=None, help="a commit measured as the current side instead of the checkout as it stands"
    )
    parser.add_argument("--accounts", type=integer(1, 100_000), default=2000, help="accounts scored")
    parser.add_argument("--history", type=integer(1, 1000), default=40, help="payments per account before timing")
    parser.add_argument("--invocations", type=integer(1), default=20, help="timed invocations per run")
    parser.add_argument("--records-per-event", type=integer(1, 5000), default=100, help="records per envelope")
    parser.add_argument("--events-per-delivery", type=integer(1, 1000), default=10, help="events per invocation")
    parser.add_argument(
        "--rounds", type=integer(1, 50), default=3, help="fresh pairs of processes, one after the other"
    )
    parser.add_argument("--seed", type=integer(0), default=17, help="the generator's seed")
    parser.add_argument("--no-split", action="store_true", help="skip the instrumented run that splits the time")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a seconds-long check: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()),
    )
    if _quick(argv):
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    per_invocation = args.records_per_event * args.events_per_delivery
    if per_invocation > MAX_PER_INVOCATION:
        fail(
            PROG,
            f"--records-per-event x --events-per-delivery is {per_invocation:,} transactions per invocation; "
            f"the scorer takes at most {MAX_PER_INVOCATION:,} (MAX_TRANSACTIONS_PER_INVOCATION)",
        )
    return args


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        baseline = commit_of(args.baseline, "--baseline")
        current = commit_of(args.current, "--current") if args.current else None
    except UsageError as exc:
        fail(PROG, str(exc))
    # A SIGTERM ends through the `finally` blocks, so the worktree goes with the run.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        started = time.perf_counter()
        per_invocation = args.records_per_event * args.events_per_delivery
        work = workload(args.accounts, args.history, args.invocations * per_invocation, args.seed)
        with tempfile.TemporaryDirectory(prefix="bench-since-") as tmp:
            folder = Path(tmp)
            with worktree(baseline, folder / "baseline") as base_tree:
                if current:
                    with worktree(current, folder / "current") as cur_tree:
                        return measure(args, work, folder, base_tree, cur_tree, baseline, current, started)
                return measure(args, work, folder, base_tree, ROOT, baseline, None, started)
    finally:
        signal.signal(signal.SIGTERM, previous)


def measure(
    args: Any,
    work: Workload,
    folder: Path,
    base_tree: Path,
    cur_tree: Path,
    baseline: str,
    current: str | None,
    started: float,
) -> int:
    """The interleaved rounds, the instrumented runs, and the report."""
    trees = {"baseline": base_tree, "current": cur_tree}
    files: dict[str, Path] = {}
    for side, tree in trees.items():
        files[side] = folder / f"{side}.jsonl"
        write_records(files[side], [*work.warm, *work.timed], (tree / MERCHANT_STORE).exists())
    load_start = os.getloadavg()
    runs: dict[str, list[Run]] = {"baseline": [], "current": []}
    try:
        for k in range(args.rounds):
            for side, run in run_round(k, trees, files, len(work.warm), args, folder / f"round-{k}", False).items():
                runs[side].append(run)
        splits = {} if args.no_split else run_round(0, trees, files, len(work.warm), args, folder / "split", True)
    except RuntimeError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    report(args, work, runs, splits, baseline, current, load_start, started)
    return 0


def _describe(commit: str) -> str:
    return git("log", "-1", "--format=%h %cs %s", commit)


def _changed() -> int:
    """Files changed but not committed in the checkout where the app's code lives."""
    status = git("status", "--porcelain", "--", "shared", "functions", "devhost", "model", "function_app.py")
    return len(status.splitlines())


def _verdict(ratio: float) -> str:
    return "met" if ratio <= TARGET_RATIO else f"missed by {ratio / TARGET_RATIO - 1:.0%}"


def report(
    args: Any,
    work: Workload,
    runs: dict[str, list[Run]],
    splits: dict[str, Run],
    baseline: str,
    current: str | None,
    load_start: tuple[float, float, float],
    started: float,
) -> None:
    """Print the figures: per round, per side, the ratio against the target, and where the time goes."""
    per_invocation = args.records_per_event * args.events_per_delivery
    first, last = work.warm[0]["timestamp"], work.warm[-1]["timestamp"]
    span = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds() / 86400
    merchants = max(r.merchants for r in runs["current"])
    # Each invocation reads the states of the accounts and merchants it names once: their count drives its cost.
    batches = [work.timed[i : i + per_invocation] for i in range(0, len(work.timed), per_invocation)]
    distinct = {
        key: statistics.fmean(len({r.get(key) for r in b}) / len(b) for b in batches)
        for key in ("account_id", "merchant_id")
    }
    here = f"the checkout as it stands ({_describe('HEAD')}; {_changed()} files changed, uncommitted, under the app)"
    print(f"machine: {machine()}; load average at start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    print(f"baseline: {_describe(baseline)} (a temporary worktree)")
    print(f"current:  {_describe(current) + ' (a temporary worktree)' if current else here}")
    print(
        f"workload: {work.accounts:,} accounts with {work.prior[0]}-{work.prior[-1]} payments before the timed part "
        f"(median {statistics.median(work.prior):.0f}; {len(work.warm):,} played through the worker untimed, "
        f"{span:.1f} days of event time); {len(work.timed):,} timed payments, their next, in {args.invocations} "
        f"invocations of {args.events_per_delivery} events of {args.records_per_event} records "
        f"({per_invocation:,} transactions each; {distinct['account_id']:.2f} distinct accounts and "
        f"{distinct['merchant_id']:.2f} merchants per transaction within one)"
    )
    print(
        f"each round: a fresh process of {Path(sys.executable).name} {sys.version.split()[0]} per tree, the two "
        "taking turns invocation by invocation; ScoreTransactions in the venv's azure-functions-runtime (the same "
        "engine for both), account states "
        f"in memory, OMP/OpenBLAS/MKL threads 1; merchant risk on the current side: {merchants:,} merchants with "
        "full label states (its records carry merchant_id; the baseline's do not, as its contract had no such field)"
    )
    print()
    print(
        f"{'round':>5} {'side':<9} {'µs/tx':>8} {'tx/s':>9} {'scored':>9} {'rejected':>8}  (median of its invocations)"
    )
    for k in range(args.rounds):
        for side in ("baseline", "current"):
            run = runs[side][k]
            us = statistics.median(run.per_tx_us())
            print(f"{k + 1:>5} {side:<9} {us:8.2f} {1e6 / us:>9,.0f} {run.scored:>9,} {run.rejected:>8,}")
    print()
    medians = {side: statistics.median([u for run in rs for u in run.per_tx_us()]) for side, rs in runs.items()}
    print(f"{'side':<9} {'µs/tx':>8} {'tx/s':>9} {'scored':>9} {'rejected':>8}  documents say")
    for side, rs in runs.items():
        us = medians[side]
        said: Counter[str] = Counter()
        for run in rs:
            said.update(run.histories)
        words = ", ".join(f"{k} {v:,}" for k, v in sorted(said.items()))
        scored, rejected = sum(r.scored for r in rs), sum(r.rejected for r in rs)
        print(f"{side:<9} {us:8.2f} {1e6 / us:>9,.0f} {scored:>9,} {rejected:>8,}  {words}")
    ratio = medians["current"] / medians["baseline"]
    rounds = [
        statistics.median(c.per_tx_us()) / statistics.median(b.per_tx_us())
        for b, c in zip(runs["baseline"], runs["current"], strict=True)
    ]
    print(
        f"ratio current / baseline, µs per transaction (median over every timed invocation of each side): "
        f"{ratio:.2f}x; target <= {TARGET_RATIO:.1f}x: {_verdict(ratio)}"
    )
    print(f"ratio round by round: {' '.join(f'{r:.2f}x' for r in rounds)}")
    if splits:
        _split_table(splits)
    end = os.getloadavg()
    print(
        f"(benchmark took {time.perf_counter() - started:.0f} s; load average at the end {end[0]:.2f} {end[1]:.2f} "
        f"{end[2]:.2f}: other work on this machine slows both sides; taking turns spreads it over both)"
    )


def _split_table(splits: dict[str, Run]) -> None:
    from benchmarks.since_child import ENGINE_STEPS, PHASES

    print()
    print("where the time goes, µs per transaction (one instrumented run per side, not in the ratio):")
    n = {side: sum(run.transactions) for side, run in splits.items()}

    def us(side: str, slot: str) -> float:
        return splits[side].steps.get(slot, 0.0) / n[side] * 1e6

    totals: dict[str, float | None] = {side: sum(run.seconds) / n[side] * 1e6 for side, run in splits.items()}
    rows: list[tuple[str, dict[str, float | None]]] = []
    engine = [slot for _, slot in ENGINE_STEPS]
    for slot in engine:
        rows.append((slot, {side: us(side, slot) for side in splits}))
        if slot == "engine: function":
            phases = list(dict.fromkeys(slot for _, _, slot in PHASES))
            for phase in phases:
                cells = {side: us(side, phase) if phase in splits[side].phases else None for side in splits}
                rows.append((f"  {phase}", cells))
            rows.append(
                (
                    "  the rest of the function",
                    {side: us(side, slot) - sum(us(side, p) for p in phases) for side in splits},
                )
            )
    rows.append(
        (
            "engine: the rest (protobuf, loop hops)",
            {s: (totals[s] or 0.0) - sum(us(s, e) for e in engine) for s in splits},
        )
    )
    rows.append(("whole invocation", totals))
    print(f"  {'':<40} {'baseline':>9} {'current':>9} {'difference':>10}")
    for label, cells in rows:
        a, b = cells.get("baseline"), cells.get("current")
        shown = [f"{v:9.2f}" if v is not None else f"{'-':>9}" for v in (a, b)]
        diff = f"{(b or 0.0) - (a or 0.0):+10.2f}"
        print(f"  {label:<40} {shown[0]} {shown[1]} {diff}")


if __name__ == "__main__":
    raise SystemExit(main())
