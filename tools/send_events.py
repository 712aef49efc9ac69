"""Send generated transactions to an Event Hub from outside the app, paced and packed into 1 MB batches.

The seed's "local generator", on the azure-eventhub SDK: `EventHubProducerClient` with
`DefaultAzureCredential` (azure-identity) against a namespace, or a connection string for the Event
Hubs emulator or a SAS key you hold. A connection string is read from an environment variable, never
from the command line, so it stays out of shell history and the process list.

    python -m tools.send_events --namespace <ns>.servicebus.windows.net --count 100000 --rate 2000
    python -m tools.send_events --emulator --count 1000 --partition-key account_id
    python -m tools.send_events --emulator --count 100000 --partition-key account_id --records-per-event 100

Partition choice (`--partition-key`):

- `none`: batches carry no partition; Event Hubs spreads them over the partitions.
- `account_id`: every event of one account goes to one partition, so the scorer sees an account's
  transactions in order. The partition is picked here, with the hash Event Hubs itself applies to a
  partition key (`shared.contract.partitions.partition_for_key`), so it is the partition partition key =
  `account_id` would give; but it is sent by partition id, not as a partition key: a batch holds one
  key only, and with ~50,000 accounts that would mean batches of one event.
- `round-robin`: whole batches go to the partition ids in turn.

Envelopes (`--records-per-event N`, N > 1): transactions are packed N to an event as
`{"records": [...]}` (shared.contract.envelopes), each event under 1 MB and within the batch ceiling. With
`account_id`, an envelope holds one partition's accounts only and goes to that partition.

Batches are planned by `tools.batch_plan` (pure, counting bytes as the SDK does); this module sends
them, paces the run and is the command line. It stays one module at ~400 lines because that is one
job: `main` only maps options onto `run`, its producer and its generator, so splitting the command
line from the send loop would give two modules that always change together.

The azure packages are imported only when a real client is built, so tests drive `run` with a
stand-in producer.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TextIO

import orjson

from devhost.cli import Parser, integer, number
from shared.generation.generator import TransactionGenerator
from tools.batch_plan import MAX_BATCH_BYTES, PartitionMode, events, pack, route

logger = logging.getLogger(__name__)

MAX_CHUNK: Final = 5_000
"""Events generated per step when sending as fast as possible."""
TICK_S: Final = 0.2
"""With a rate, each step generates about this many seconds' worth of events."""
EMULATOR_CONNECTION_STRING: Final = (
    "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
)
"""The Event Hubs emulator's fixed, published connection string; not a secret.
https://learn.microsoft.com/azure/event-hubs/test-locally-with-event-hub-emulator#interact-with-the-emulator"""
DEFAULT_CONNECTION_STRING_ENV: Final = "EVENTHUB_CONNECTION_STRING"
NAMESPACE_ENV: Final = "EventHubConnection__fullyQualifiedNamespace"
"""The app's own setting name, so a shell that exported local.settings values needs no --namespace."""


class SendError(RuntimeError):
    """Sending a batch failed after the client's own retries; the message never holds a credential."""


class BatchLike(Protocol):
    """The slice of `azure.eventhub.EventDataBatch` used here."""

    def add(self, event_data: Any) -> None: ...

    def __len__(self) -> int: ...

    @property
    def size_in_bytes(self) -> int: ...


class ProducerLike(Protocol):
    """The slice of `azure.eventhub.EventHubProducerClient` used here; tests pass a stand-in."""

    def create_batch(self, *, partition_id: str | None = None, max_size_in_bytes: int | None = None) -> BatchLike: ...

    def send_batch(self, event_data_batch: BatchLike) -> None: ...

    def get_partition_ids(self) -> list[str]: ...

    def close(self) -> None: ...


class Progress(Protocol):
    """What a progress bar needs to offer (tqdm does)."""

    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


class _NoProgress:
    def update(self, n: int) -> object:
        return None

    def close(self) -> None:
        return None


@dataclass
class SendStats:
    """What a run did, filled in as it goes so an interrupted run can still report."""

    requested: int = 0
    """Transactions asked for."""
    transactions: int = 0
    events: int = 0
    batches: int = 0
    payload_bytes: int = 0
    labelled_fraud: int = 0
    oversized: int = 0
    resplits: int = 0
    per_partition: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def summary(self, rate: float) -> str:
        """Human-readable final report."""
        achieved = self.transactions / self.elapsed_s if self.elapsed_s > 0 else 0.0
        target = f" (target {rate:,.0f}/s)" if rate > 0 else ""
        fraud_share = self.labelled_fraud / self.transactions if self.transactions else 0.0
        lines = [
            f"sent {self.transactions:,} of {self.requested:,} transactions in {self.events:,} events, "
            f"{self.batches:,} batches ({self.payload_bytes / 1e6:,.1f} MB of JSON) in {self.elapsed_s:,.1f} s: "
            f"{achieved:,.0f} transactions/s{target}",
            f"labelled fraud: {self.labelled_fraud:,} ({fraud_share:.1%})",
            "partitions: " + (", ".join(f"{p}={n:,}" for p, n in sorted(self.per_partition.items())) or "-"),
        ]
        if self.oversized:
            lines.append(f"skipped {self.oversized:,} transactions larger than a whole batch")
        if self.resplits:
            lines.append(f"{self.resplits:,} batches closed early because the SDK counted more bytes than planned")
        return "\n".join(lines)


class _Sender:
    """Adds planned events to SDK batches and sends them, recording what went where."""

    def __init__(
        self,
        producer: ProducerLike,
        make_event: Callable[[bytes], Any],
        max_batch_bytes: int,
        stats: SendStats,
    ) -> None:
        self._producer = producer
        self._make_event = make_event
        self._max_batch_bytes = max_batch_bytes
        self._stats = stats

    def _new(self, partition_id: str | None) -> BatchLike:
        if partition_id is None:
            return self._producer.create_batch(max_size_in_bytes=self._max_batch_bytes)
        return self._producer.create_batch(partition_id=partition_id, max_size_in_bytes=self._max_batch_bytes)

    def _flush(self, batch: BatchLike, partition_id: str | None, bodies: list[bytes], records: int) -> None:
        self._producer.send_batch(batch)
        self._stats.batches += 1
        self._stats.events += len(bodies)
        self._stats.transactions += records
        self._stats.payload_bytes += sum(len(b) for b in bodies)
        self._stats.per_partition[partition_id or "any"] += records

    def send(self, bodies: list[bytes], partition_id: str | None, counts: Sequence[int] | None = None) -> None:
        """Send one planned batch (`counts`: transactions per body); split it if the SDK disagrees with the plan."""
        counts = counts if counts is not None else [1] * len(bodies)
        batch = self._new(partition_id)
        in_batch: list[bytes] = []
        records = 0
        for body, count in zip(bodies, counts, strict=True):
            try:
                batch.add(self._make_event(body))
            except ValueError:
                if not in_batch:
                    self._stats.oversized += count
                    continue
                self._flush(batch, partition_id, in_batch, records)
                self._stats.resplits += 1
                batch, in_batch, records = self._new(partition_id), [], 0
                try:
                    batch.add(self._make_event(body))
                except ValueError:
                    self._stats.oversized += count
                    continue
            in_batch.append(body)
            records += count
        if in_batch:
            self._flush(batch, partition_id, in_batch, records)


def _chunks(count: int, rate: float) -> Iterator[int]:
    size = MAX_CHUNK if rate <= 0 else max(1, min(MAX_CHUNK, int(rate * TICK_S)))
    left = count
    while left > 0:
        step = min(size, left)
        yield step
        left -= step


def run(
    producer: ProducerLike,
    generator: TransactionGenerator,
    *,
    count: int,
    rate: float = 0.0,
    mode: PartitionMode = PartitionMode.NONE,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    records_per_event: int = 1,
    make_event: Callable[[bytes], Any] = bytes,
    stats: SendStats | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SendStats:
    """Generate `count` transactions and send them; `rate` is transactions per second, 0 for flat out.

    With `records_per_event` above 1 they travel as envelopes of up to that many records.

    Pacing follows an absolute schedule (event n leaves no earlier than start + n / rate), so a slow
    send is caught up on instead of drifting. `SendError` from the producer propagates; `stats` holds
    what was sent before it.
    """
    stats = stats if stats is not None else SendStats()
    stats.requested = count
    progress = progress or _NoProgress()
    partition_ids = producer.get_partition_ids() if mode is not PartitionMode.NONE else []
    sender = _Sender(producer, make_event, max_batch_bytes, stats)
    turn = 0
    generated = 0
    started = clock()
    for n in _chunks(count, rate):
        records = generator.generate(n)
        bodies = [orjson.dumps(r) for r in records]
        for partition_id, indices in route([r["account_id"] for r in records], mode, partition_ids):
            planned_events, too_large = events([bodies[i] for i in indices], records_per_event, max_batch_bytes)
            plan = pack([len(body) for body, _ in planned_events], max_batch_bytes)
            stats.oversized += too_large + sum(planned_events[i][1] for i in plan.oversized)
            for planned in plan.batches:
                target = partition_id
                if mode is PartitionMode.ROUND_ROBIN:
                    target = partition_ids[turn % len(partition_ids)]
                    turn += 1
                sender.send([planned_events[i][0] for i in planned], target, [planned_events[i][1] for i in planned])
        stats.labelled_fraud += sum(int(r["is_fraud"]) for r in records)
        generated += n
        progress.update(n)
        stats.elapsed_s = clock() - started
        if rate > 0:
            wait = started + generated / rate - clock()
            if wait > 0:
                sleep(wait)
    stats.elapsed_s = clock() - started
    return stats


# ---- the real client (azure-eventhub, azure-identity), imported only here ----------------------------


class _SdkProducer:
    """An `EventHubProducerClient` that reports failed sends as `SendError`."""

    def __init__(self, client: Any, credential: Any | None) -> None:
        self._client = client
        self._credential = credential

    def create_batch(self, *, partition_id: str | None = None, max_size_in_bytes: int | None = None) -> BatchLike:
        batch: BatchLike = self._client.create_batch(partition_id=partition_id, max_size_in_bytes=max_size_in_bytes)
        return batch

    def send_batch(self, event_data_batch: BatchLike) -> None:
        from azure.eventhub.exceptions import EventHubError

        try:
            self._client.send_batch(event_data_batch)
        except EventHubError as exc:
            # The SDK has already retried; its message names the error, not the credential.
            raise SendError(f"send failed after retries: {type(exc).__name__}: {exc}") from None

    def get_partition_ids(self) -> list[str]:
        return list(self._client.get_partition_ids())

    def close(self) -> None:
        self._client.close()
        if self._credential is not None:
            self._credential.close()


def sdk_producer(args: argparse.Namespace) -> tuple[ProducerLike, Callable[[bytes], Any]]:
    """Build the real producer from parsed arguments, and the `EventData` constructor to go with it."""
    from azure.eventhub import EventData, EventHubProducerClient

    connection_string = EMULATOR_CONNECTION_STRING if args.emulator else os.environ.get(args.connection_string_env)
    if connection_string:
        client = EventHubProducerClient.from_connection_string(connection_string, eventhub_name=args.hub)
        return _SdkProducer(client, None), EventData
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    client = EventHubProducerClient(
        fully_qualified_namespace=args.namespace, eventhub_name=args.hub, credential=credential
    )
    return _SdkProducer(client, credential), EventData


def _tqdm(total: int) -> Progress:
    from tqdm import tqdm

    bar: Progress = tqdm(total=total, unit="ev", unit_scale=True, file=sys.stderr, disable=not sys.stderr.isatty())
    return bar


def _namespace(raw: str) -> str:
    """`--namespace`: a host name, as the SDK takes it (no scheme, no path)."""
    name = raw.strip()
    if not name or "/" in name or ":" in name:
        raise argparse.ArgumentTypeError(f"must be a host name such as <namespace>.servicebus.windows.net, got {raw!r}")
    return name


def _hub(raw: str) -> str:
    if not raw.strip():
        raise argparse.ArgumentTypeError("must name an event hub")
    return raw.strip()


def parser() -> argparse.ArgumentParser:
    """Command-line options (defaults shown in --help; a bad value is one line, exit 2); env defaults as the app's."""
    p = Parser("python -m tools.send_events", __doc__.splitlines()[0])
    auth = p.add_argument_group("destination (first match: --emulator, connection-string variable, --namespace)")
    auth.add_argument("--emulator", action="store_true", help="the local Event Hubs emulator (docker-compose.yml)")
    auth.add_argument(
        "--connection-string-env",
        default=DEFAULT_CONNECTION_STRING_ENV,
        metavar="NAME",
        help="environment variable holding a connection string (default %(default)s)",
    )
    auth.add_argument(
        "--namespace",
        type=_namespace,
        default=os.environ.get(NAMESPACE_ENV),
        help="<namespace>.servicebus.windows.net, with DefaultAzureCredential "
        "(default: $EventHubConnection__fullyQualifiedNamespace)",
    )
    p.add_argument("--hub", type=_hub, default=os.environ.get("EVENT_HUB_NAME", "transactions"), help="event hub name")
    p.add_argument("--count", type=integer(1), default=1000, help="transactions to send")
    p.add_argument("--rate", type=number(0), default=0.0, help="transactions per second; 0 sends as fast as possible")
    p.add_argument(
        "--records-per-event",
        type=integer(1),
        default=1,
        metavar="N",
        help='transactions per event; above 1, {"records": [...]} envelopes under 1 MB',
    )
    p.add_argument(
        "--partition-key",
        type=PartitionMode,
        choices=list(PartitionMode),
        default=PartitionMode.NONE,
        help="none, account_id (per-account order) or round-robin",
    )
    p.add_argument(
        "--max-batch-bytes",
        type=integer(64, MAX_BATCH_BYTES),
        default=MAX_BATCH_BYTES,
        help="batch ceiling (Event Hubs takes at most 1 MiB)",
    )
    p.add_argument("--fraud-rate", type=number(0, 1), default=0.10, help="share of fraud")
    p.add_argument("--seed", type=integer(0), default=None, help="seed for a reproducible stream")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    producer_factory: Callable[[argparse.Namespace], tuple[ProducerLike, Callable[[bytes], Any]]] = sdk_producer,
    progress_factory: Callable[[int], Progress] = _tqdm,
    out: TextIO = sys.stdout,
) -> int:
    """Parse arguments, send, print the summary; 0 when every event went out, 1 otherwise."""
    p = parser()
    args = p.parse_args(argv)
    has_connection_string = bool(os.environ.get(args.connection_string_env))
    if not (args.emulator or has_connection_string or args.namespace):
        p.error(f"give --emulator, --namespace, or a connection string in ${args.connection_string_env}")
    producer, make_event = producer_factory(args)
    stats = SendStats(requested=args.count)
    bar = progress_factory(args.count)
    code = 0
    try:
        run(
            producer,
            TransactionGenerator(fraud_rate=args.fraud_rate, seed=args.seed),
            count=args.count,
            rate=args.rate,
            mode=args.partition_key,
            max_batch_bytes=args.max_batch_bytes,
            records_per_event=args.records_per_event,
            make_event=make_event,
            stats=stats,
            progress=bar,
        )
    except SendError as exc:
        logger.error("stopping: %s", exc)  # noqa: TRY400  # the SDK's message is the whole story
        code = 1
    except KeyboardInterrupt:
        code = 1
    finally:
        bar.close()
        producer.close()
    if stats.transactions < stats.requested:
        code = 1
    print(stats.summary(args.rate), file=out)
    return code


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
