"""Benchmark of scoring (issue: scoring at the speed of the model): the seed's path, ours, and the floor.

In one run, on the same generated events, at batch sizes 1, 10, 100 and 1000, single-threaded:

1. seed, per event: for each event `json.loads` -> one-row DataFrame -> drop the non-feature
   columns -> the scikit-learn reference pipeline's `predict` (the seed's web-service `run()`);
2. seed, per batch: the same with one DataFrame per batch;
3. ours: `ScoreTransactions` called directly as a Python callable, given `EventHubEvent`s built by
   the library's converter outside the timed region, until both outputs are set (reasons included).
   Azure never calls it like this; it is the baseline for the next path;
4. worker: `ScoreTransactions` as Azure runs it, through the worker engine `azure-functions-runtime`:
   host-shaped InvocationRequest bytes in, InvocationResponse bytes out (benchmarks/worker_path.py),
   with the engine's time split into input conversion, function and output encoding;
5. floor: the bare booster's `inplace_predict` on an already-encoded float32 matrix.

One benchmark and its report, past 400 lines because the five paths must run in one process on the
same events for their ratios to mean anything (the worker path's machinery is in worker_path.py).

The paths run interleaved, in rounds, so that a slow spell of a shared machine lands on all
of them rather than on one. Then cold start (a fresh process in a venv holding only
requirements.txt: import `function_app`, load the model, score a first batch of 1,000) and the
size requirements.txt installs into that venv.

    python -m benchmarks.bench_scoring [--quick] [--skip-venv]
"""

from __future__ import annotations

import os

# Single-threaded, whatever the machine: set before NumPy or XGBoost load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
# Our real path, behavioural features included, with the states in the process (the Cosmos DB round
# trip is I/O, measured apart with the rest of the state's cost by benchmarks/bench_state.py).
os.environ["BEHAVIOUR_STATE"] = "memory"

import argparse  # noqa: E402 - after the thread settings on purpose
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import orjson  # noqa: E402

from benchmarks.machine import machine  # noqa: E402
from benchmarks.worker_path import Split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZES = (1, 10, 100, 1000)
N_EVENTS = 100_000
SEND_SIZE = 100
"""Events a producer sends in one call; Event Hubs stamps them with one enqueued time."""
SEED_DROP = ("id", "timestamp", "account_id", "is_fraud")
PATHS = ("seed per event", "seed per batch", "ours", "worker", "floor")
# Batches per path and batch size for a full run; each path takes a few seconds at each size.
COUNTS: dict[int, dict[str, int]] = {
    1: {"seed per event": 1000, "seed per batch": 1000, "ours": 3000, "worker": 1000, "floor": 3000},
    10: {"seed per event": 100, "seed per batch": 500, "ours": 2000, "worker": 500, "floor": 2000},
    100: {"seed per event": 10, "seed per batch": 200, "ours": 1000, "worker": 150, "floor": 1000},
    1000: {"seed per event": 3, "seed per batch": 50, "ours": 200, "worker": 20, "floor": 500},
}
ROUNDS = 5
TARGET_EVENTS_PER_S = 150_000
TARGET_P99_BATCH_100_MS = 2.0
TARGET_COLD_S, TARGET_COLD_MB = 0.5, 120.0
TARGET_INSTALLED_MB = 300.0

Runner = Callable[[int], float]
"""Scores the path's next batch of the given size; returns the timed seconds."""


@dataclass
class Timing:
    """Per-batch latencies of one path at one batch size."""

    batch: int
    seconds: list[float] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.batch * len(self.seconds) / sum(self.seconds)

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return 1000.0 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Cursor:
    """Hands out consecutive slices of the events, wrapping around."""

    def __init__(self, total: int) -> None:
        self.total, self.start = total, 0

    def take(self, size: int) -> slice:
        if self.start + size > self.total:
            self.start = 0
        taken = slice(self.start, self.start + size)
        self.start += size
        return taken


def seed_frame(pd: Any, records: list[dict[str, Any]]) -> Any:
    """The seed's DataFrame of a batch, with the behavioural columns the pipeline also takes as "history unknown".

    The reference pipeline is the bundled model as scikit-learn; it expects the behavioural and
    merchant-risk features too, which a client of the seed's design has no way to know, so they get
    the values scoring uses when history is unknown: an account's first payment, a merchant with no
    labels (a few NumPy calls, a small share of this path).
    """
    import numpy as np

    from shared.behaviour import merchants
    from shared.behaviour.features import no_history
    from shared.scoring.encoding import behaviour_columns, merchant_columns

    df = pd.DataFrame(records).drop(columns=[*SEED_DROP, "merchant_id"], errors="ignore")
    unknown = np.zeros((len(df), len(merchants.FEATURES)), dtype=np.float64)
    for name, values in {**behaviour_columns(no_history(df)), **merchant_columns(unknown)}.items():
        df[name] = values
    # The pipeline was fitted on months as Python ints in an object column; JSON gives int64.
    df["month"] = df["month"].astype(object)
    return df


def seed_runners(bodies: Sequence[bytes]) -> tuple[Runner, Runner]:
    """The seed's scoring: json.loads, a pandas DataFrame, the full scikit-learn pipeline's predict."""
    import joblib
    import pandas as pd

    from shared.settings import get_settings

    pipeline = joblib.load(get_settings().model_dir / "reference_pipeline.joblib")
    pipeline.set_params(model__n_jobs=1)

    def frame(records: list[dict[str, Any]]) -> Any:
        return seed_frame(pd, records)

    event_cursor, batch_cursor = Cursor(len(bodies)), Cursor(len(bodies))

    def per_event(size: int) -> float:
        batch = bodies[event_cursor.take(size)]
        started = time.perf_counter()
        for body in batch:
            pipeline.predict(frame([json.loads(body)]))
        return time.perf_counter() - started

    def per_batch(size: int) -> float:
        batch = bodies[batch_cursor.take(size)]
        started = time.perf_counter()
        pipeline.predict(frame([json.loads(body) for body in batch]))
        return time.perf_counter() - started

    per_batch(10)  # first calls import and warm up pandas and scikit-learn code paths
    return per_event, per_batch


@dataclass
class OursStats:
    scored: int = 0
    flagged: int = 0
    flagged_with_reasons: int = 0
    host_decode_s: float = 0.0
    host_events: int = 0


def ours_runner(bodies: Sequence[bytes], stats: OursStats) -> Runner:
    """ScoreTransactions called directly; the events are built by the library's converter, untimed."""
    from benchmarks.direct import Out, context, documents, eventhub_events
    from functions.score import score_transactions

    start = datetime.now(UTC)
    enqueued = [start + timedelta(milliseconds=i // SEND_SIZE) for i in range(len(bodies))]
    cursor = Cursor(len(bodies))
    sequence = 0

    def run(size: int) -> float:
        nonlocal sequence
        taken = cursor.take(size)
        decode_started = time.perf_counter()
        events = eventhub_events(list(bodies[taken]), enqueued[taken], first_sequence_number=sequence)
        stats.host_decode_s += time.perf_counter() - decode_started
        stats.host_events += size
        sequence += size
        scored, rejected = Out[Any](), Out[Any]()
        started = time.perf_counter()
        score_transactions(events, scored, rejected, context())
        seconds = time.perf_counter() - started
        docs = documents(scored)
        if len(docs) + len(documents(rejected)) != size or any("reasons" not in d for d in docs):
            raise SystemExit("ScoreTransactions lost an event or wrote a document without reasons")
        stats.scored += len(docs)
        stats.flagged += sum(d["is_flagged"] for d in docs)
        stats.flagged_with_reasons += sum(bool(d["is_flagged"] and d["reasons"]) for d in docs)
        return seconds

    run(1000)  # loads the model, as the first batch of a worker does
    return run


def worker_runner(bodies: Sequence[bytes], splits: dict[int, Split]) -> Runner:
    """ScoreTransactions through the worker engine: request bytes built untimed, bytes in to bytes out timed."""
    from _functions_rpc import InvocationResponse, StatusResult

    from benchmarks.worker_path import instrumented, invoke_timed, request_bytes
    from devhost.worker import worker

    engine = worker()
    start = datetime.now(UTC)
    enqueued = [start + timedelta(milliseconds=i // SEND_SIZE) for i in range(len(bodies))]
    cursor = Cursor(len(bodies))
    sequence = 0

    def run(size: int) -> float:
        nonlocal sequence
        taken = cursor.take(size)
        wire = request_bytes(engine, bodies[taken], enqueued[taken], sequence)
        sequence += size
        split = splits.setdefault(size, Split())
        with instrumented(split):
            answer = invoke_timed(engine, wire, split, size)
        response = InvocationResponse.FromString(answer)
        if response.result.status != StatusResult.Success:
            raise SystemExit(f"ScoreTransactions failed in the worker: {response.result.exception.message}")
        return split.totals[-1]

    run(1000)
    splits.clear()  # the warm-up batch is not a figure
    return run


def floor_runner(bodies: Sequence[bytes]) -> Runner:
    """The bare booster on an already-encoded float32 matrix: the model's own speed."""
    from shared.contract.schema import validate
    from shared.scoring.encoding import encode, transactions_to_columns
    from shared.scoring.model import load_model
    from shared.settings import get_settings

    model = load_model(get_settings().model_dir)
    x = encode(transactions_to_columns([validate(orjson.loads(b)) for b in bodies]), model.spec)
    booster, cursor = model.booster, Cursor(len(bodies))

    def run(size: int) -> float:
        matrix = x[cursor.take(size)]
        started = time.perf_counter()
        booster.inplace_predict(matrix, validate_features=False)
        return time.perf_counter() - started

    run(1000)
    return run


@dataclass
class TelemetryCost:
    """ScoreTransactions at one batch size with telemetry off (the default) and on, interleaved."""

    batch: int
    off: list[float] = field(default_factory=list)
    on: list[float] = field(default_factory=list)
    links: int = 0

    def line(self) -> str:
        off_ms, on_ms = 1000 * statistics.median(self.off), 1000 * statistics.median(self.on)
        mean_off, mean_on = 1000 * statistics.mean(self.off), 1000 * statistics.mean(self.on)
        return (
            f"telemetry at batch {self.batch}, {len(self.off)} batches each, interleaved: off (default, no "
            f"connection string) p50 {off_ms:.3f} ms, mean {mean_off:.3f}; on (OpenTelemetry SDK, in-memory "
            f"metric reader and tracer, span parented to the invocation's traceparent, {self.links} producer "
            f"links per span) p50 {on_ms:.3f} ms, mean "
            f"{mean_on:.3f}; overhead per batch {on_ms - off_ms:+.3f} ms at p50 ({(on_ms - off_ms) / off_ms:+.1%}), "
            f"{mean_on - mean_off:+.3f} ms mean"
        )


def telemetry_cost(bodies: Sequence[bytes], batches: int, size: int = 1000) -> TelemetryCost:
    """ScoreTransactions with `get_telemetry()` as deployed without a connection string, and with it on.

    On: the real `OpenTelemetryTelemetry` over SDK providers whose reader and exporter keep
    everything in memory, so what is timed is our instrumentation and the SDK's bookkeeping, not a
    network export (the Azure Monitor exporter sends from its own background thread). Every event
    carries a producer `Diagnostic-Id`, one per send of SEND_SIZE events, as traced producers set it.
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import functions.score as score_module
    from benchmarks.direct import Out, context, eventhub_events
    from shared.telemetry import CONNECTION_SETTING, MAX_LINKS, OpenTelemetryTelemetry, get_telemetry

    if get_telemetry().enabled:
        raise SystemExit(f"unset {CONNECTION_SETTING} to measure telemetry off")
    spans, tracer_provider = InMemorySpanExporter(), TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    on = OpenTelemetryTelemetry(MeterProvider(metric_readers=[InMemoryMetricReader()]), tracer_provider)
    fn = score_module.score_transactions
    start = datetime.now(UTC)
    cursor, cost = Cursor(len(bodies)), TelemetryCost(size)
    properties = [
        {"Diagnostic-Id": f"00-{i // SEND_SIZE + 1:032x}-{i // SEND_SIZE + 1:016x}-01"} for i in range(len(bodies))
    ]
    for k in range(2 * batches):
        taken = cursor.take(size)
        enqueued = [start + timedelta(milliseconds=i // SEND_SIZE) for i in range(taken.start, taken.stop)]
        events = eventhub_events(list(bodies[taken]), enqueued, properties=properties[taken])
        telemetry_on = k % 4 in (1, 2)  # off, on, on, off, ...: neither always goes first
        # Patched where the function looks it up, as tests/functions/test_score.py does.
        namespace = vars(score_module)
        if telemetry_on:
            namespace["get_telemetry"] = lambda: on
        try:
            started = time.perf_counter()
            fn(events, Out[Any](), Out[Any](), context())
            (cost.on if telemetry_on else cost.off).append(time.perf_counter() - started)
        finally:
            namespace["get_telemetry"] = get_telemetry
        spans.clear()
    cost.links = min(MAX_LINKS, -(-size // SEND_SIZE))
    return cost


def measure(runners: dict[str, Runner], scale: float) -> dict[str, list[Timing]]:
    """Every path at every batch size, interleaved: ROUNDS rounds, each running a share of every path."""
    timings = {name: [Timing(size) for size in BATCH_SIZES] for name in PATHS}
    for k, size in enumerate(BATCH_SIZES):
        counts = {name: max(1, round(n * scale)) for name, n in COUNTS[size].items()}
        rounds = min(ROUNDS, *counts.values())
        for r in range(rounds):
            order = PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]  # rotate who goes first
            for name in order:
                share = counts[name] // rounds + (1 if r < counts[name] % rounds else 0)
                timings[name][k].seconds.extend(runners[name](size) for _ in range(share))
    return timings


def report(timings: dict[str, list[Timing]]) -> list[str]:
    lines = [f"{'path':<16}{'batch':>6}{'batches':>9}{'events/s':>12}{'p50 ms':>10}{'p99 ms':>10}"]
    for name in PATHS:
        for t in timings[name]:
            lines.append(
                f"{name:<16}{t.batch:>6}{len(t.seconds):>9}{t.events_per_s:>12,.0f}"
                f"{t.percentile_ms(0.5):>10.3f}{t.percentile_ms(0.99):>10.3f}"
            )
    lines.append("")
    lines.append(
        f"{'ratios (events/s)':<20}{'ours/seed-batch':>17}{'ours/seed-event':>17}{'ours/floor':>12}"
        f"{'worker/seed-batch':>19}"
    )
    for m, sb, se, f, w in zip(
        timings["ours"],
        timings["seed per batch"],
        timings["seed per event"],
        timings["floor"],
        timings["worker"],
        strict=True,
    ):
        lines.append(
            f"  batch {m.batch:<12}{m.events_per_s / sb.events_per_s:>17.2f}"
            f"{m.events_per_s / se.events_per_s:>17.1f}{m.events_per_s / f.events_per_s:>12.3f}"
            f"{w.events_per_s / sb.events_per_s:>19.2f}"
        )
    return lines


COLD_START_CHILD = r"""
import json, resource, sys, time
from datetime import UTC, datetime
bodies = open(sys.argv[1], "rb").read().splitlines()
t0 = time.perf_counter()
import azure.functions
ta = time.perf_counter()
import function_app
from functions.score import score_transactions
from benchmarks.direct import Out, context, eventhub_events
t1 = time.perf_counter()
imported = sorted(m for m in ("xgboost", "sklearn", "pandas", "scipy") if m in sys.modules)
events = eventhub_events(bodies, [datetime.now(UTC)] * len(bodies))
t2 = time.perf_counter()
scored, rejected = Out(), Out()
score_transactions(events, scored, rejected, context())
t3 = time.perf_counter()
print(json.dumps({
    "import_s": t1 - t0, "azure_functions_s": ta - t0, "first_batch_s": t3 - t2,
    "documents": len(scored.get()) + len(rejected.get()),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "imported_by_function_app": imported,
}))
"""
# Linux keeps a process's peak RSS across exec, and a child forked from this (large) benchmark
# process starts with its parent's. A shell that forks once more gives the child a clean count.
FRESH_PROCESS = ("/bin/sh", "-c", '"$0" "$@"; exit $?')


def site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def sizes(site: Path) -> dict[str, int]:
    """Bytes per top-level entry of site-packages (files only, symlinks not followed)."""
    out: dict[str, int] = {}
    for path in site.rglob("*"):
        if path.is_file() and not path.is_symlink():
            top = path.relative_to(site).parts[0]
            out[top] = out.get(top, 0) + path.stat().st_size
    return out


@dataclass
class Installed:
    total_mb: float
    """What `pip install -r requirements.txt` added to a fresh venv (pip and setuptools excluded)."""
    largest: list[tuple[str, float]]
    cuda_files: list[str]


def fresh_venv(directory: Path) -> tuple[Path, Installed]:
    """A venv holding requirements.txt and nothing else; its python and what the install added."""
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    python = directory / "bin" / "python"
    site = site_packages(python)
    before = sizes(site)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir",
         "-r", str(ROOT / "requirements.txt")],
        check=True,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    added = {name: size for name, size in sizes(site).items() if name not in before}
    largest = sorted(added.items(), key=lambda kv: -kv[1])[:6]
    cuda = [str(p.relative_to(site)) for p in site.rglob("*") if "cuda" in p.name.lower() or "nvidia" in p.name.lower()]
    installed = Installed(sum(added.values()) / 1e6, [(name, size / 1e6) for name, size in largest], cuda)
    return python, installed


def cold_start(python: Path, bodies: Sequence[bytes], runs: int) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl") as fh:
        fh.write(b"\n".join(bodies[:1000]))
        fh.flush()
        results = []
        for _ in range(runs):
            started = time.perf_counter()
            out = subprocess.run(
                [*FRESH_PROCESS, str(python), "-c", COLD_START_CHILD, fh.name],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["process_s"] = time.perf_counter() - started
            results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the batches: a smoke run, not figures")
    parser.add_argument("--skip-venv", action="store_true", help="no fresh venv: skip cold start and installed size")
    parser.add_argument("--seed", type=int, default=2026, help="generator seed of the benchmark's events")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    from shared.generation.generator import TransactionGenerator

    bodies = [orjson.dumps(r) for r in TransactionGenerator(seed=args.seed).generate(N_EVENTS)]
    stats = OursStats()
    # Ours first: its first batch loads the model (and freezes the startup heap, as in a worker),
    # so every path below runs in the same process state.
    ours = ours_runner(bodies, stats)
    per_event, per_batch = seed_runners(bodies)
    splits: dict[int, Split] = {}
    runners = {
        "seed per event": per_event,
        "seed per batch": per_batch,
        "ours": ours,
        "worker": worker_runner(bodies, splits),
        "floor": floor_runner(bodies),
    }

    from shared.scoring.model import load_model
    from shared.settings import get_settings

    model = load_model(get_settings().model_dir)
    print(f"machine: {machine()}")
    print(
        f"model: {model.version}, {model.metadata['model_size']['trees']} trees of depth "
        f"{model.metadata['hyperparameters']['max_depth']}, threshold {model.threshold:.4f}; events: "
        f"{len(bodies):,} generated (seed {args.seed}), one enqueued time per send of {SEND_SIZE}"
    )
    print("single-threaded: OMP/OpenBLAS/MKL threads 1, booster nthread 1, seed pipeline n_jobs 1")
    print(f"paths interleaved in up to {ROUNDS} rounds per batch size")
    print()
    timings = measure(runners, 0.1 if args.quick else 1.0)
    for line in report(timings):
        print(line)
    print()
    print("through the worker engine (azure-functions-runtime, what Azure runs), µs per event by step:")
    print(
        f"{'batch':>7}{'total':>9}{'convert':>9}{'function':>10}{'encode':>8}{'rest':>8}{'  worker/direct (events/s)'}"
    )
    for t_worker, t_direct in zip(timings["worker"], timings["ours"], strict=True):
        us = splits[t_worker.batch].per_transaction_us()
        print(
            f"{t_worker.batch:>7}{us['total']:>9.1f}{us['input conversion']:>9.1f}{us['function']:>10.1f}"
            f"{us['output encoding']:>8.1f}{us['rest']:>8.1f}{t_worker.events_per_s / t_direct.events_per_s:>14.3f}"
        )
    print(telemetry_cost(bodies, batches=20 if args.quick else 150).line())
    host_us = stats.host_decode_s / stats.host_events * 1e6
    print(
        f"flagged: {stats.flagged / stats.scored:.1%} of scored events, {stats.flagged_with_reasons:,} of "
        f"{stats.flagged:,} with reasons (the rest have no field pushing toward fraud); building the "
        f"EventHubEvents with the worker's converter (the host's work, untimed): {host_us:.0f} µs/event"
    )

    ours_1000 = timings["ours"][-1]
    seed_batch_1000, seed_event_1000 = timings["seed per batch"][-1], timings["seed per event"][-1]
    p99_100 = timings["ours"][BATCH_SIZES.index(100)].percentile_ms(0.99)
    verdicts = [
        ("batch 1000 events/s", f"{ours_1000.events_per_s:,.0f}", f">= {TARGET_EVENTS_PER_S:,}",
         ours_1000.events_per_s >= TARGET_EVENTS_PER_S),
        ("batch 1000 ours/seed-batch", f"{ours_1000.events_per_s / seed_batch_1000.events_per_s:.2f}x", ">= 2.5x",
         ours_1000.events_per_s >= 2.5 * seed_batch_1000.events_per_s),
        ("batch 1000 ours/seed-event", f"{ours_1000.events_per_s / seed_event_1000.events_per_s:,.0f}x", ">= 750x",
         ours_1000.events_per_s >= 750 * seed_event_1000.events_per_s),
        ("batch 100 p99", f"{p99_100:.3f} ms", f"<= {TARGET_P99_BATCH_100_MS} ms", p99_100 <= TARGET_P99_BATCH_100_MS),
    ]  # fmt: skip

    if not args.skip_venv:
        with tempfile.TemporaryDirectory(prefix="bench-venv-") as tmp:
            python, installed = fresh_venv(Path(tmp) / "venv")
            runs = cold_start(python, bodies, runs=1 if args.quick else 5)
        keys = ("import_s", "azure_functions_s", "first_batch_s", "process_s")
        median = {key: statistics.median(r[key] for r in runs) for key in keys}
        peak = max(r["peak_rss_mb"] for r in runs)
        cold = median["import_s"] + median["first_batch_s"]
        print()
        print(
            f"cold start, median of {len(runs)} fresh processes in a venv with requirements.txt only: import "
            f"function_app {median['import_s'] * 1000:.0f} ms (of which azure.functions, which the worker has "
            f"loaded before it imports the app, {median['azure_functions_s'] * 1000:.0f} ms) + load the model "
            "and score a first 1,000 "
            f"{median['first_batch_s'] * 1000:.0f} ms = {cold * 1000:.0f} ms; peak RSS (getrusage) {peak:.0f} MB; the "
            f"whole process, interpreter start and building the events included: {median['process_s'] * 1000:.0f} "
            f"ms; modules importing function_app loaded: {', '.join(runs[0]['imported_by_function_app']) or 'none'} "
            "(of xgboost, sklearn, pandas, scipy)"
        )
        print(
            f"installed by requirements.txt: {installed.total_mb:.0f} MB (largest: "
            + ", ".join(f"{name} {mb:.0f}" for name, mb in installed.largest)
            + f"); CUDA or NVIDIA files: {len(installed.cuda_files) or 'none'}"
        )
        verdicts += [
            ("cold start", f"{cold * 1000:.0f} ms", f"<= {TARGET_COLD_S * 1000:.0f} ms", cold <= TARGET_COLD_S),
            ("cold start peak RSS", f"{peak:.0f} MB", f"<= {TARGET_COLD_MB:.0f} MB", peak <= TARGET_COLD_MB),
            ("installed size", f"{installed.total_mb:.0f} MB", f"<= {TARGET_INSTALLED_MB:.0f} MB",
             installed.total_mb <= TARGET_INSTALLED_MB and not installed.cuda_files),
        ]  # fmt: skip

    print()
    print("targets:")
    for name, measured, target, met in verdicts:
        print(f"  {name:<28}{measured:>14}  target {target:<12} {'met' if met else 'MISSED'}")
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
