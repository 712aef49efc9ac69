"""tools.send_events: batch planning, partition routing, pacing and the CLI, against a stand-in producer."""

from __future__ import annotations

import argparse
import io
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from shared.contract import schema as contract
from shared.contract.partitions import partition_for_key as partition_for
from shared.generation.generator import TransactionGenerator
from tools.batch_plan import MAX_BATCH_BYTES, PartitionMode, encoded_size, pack, route
from tools.send_events import EMULATOR_CONNECTION_STRING, ProducerLike, SendError, SendStats, main, run

pytestmark = pytest.mark.unit

PARTITIONS = ["0", "1", "2", "3"]


class StandInBatch:
    """Stands in for `EventDataBatch`: refuses an event that would take it past its byte limit.

    Its accounting is deliberately its own (body + 16 bytes, the SDK's worst-case framing), not
    `encoded_size`, so the tests do not grade the plan against itself.
    """

    OVERHEAD = 16

    def __init__(self, limit: int, partition_id: str | None) -> None:
        self.limit = limit
        self.partition_id = partition_id
        self.bodies: list[bytes] = []
        self._size = 0

    def add(self, event_data: Any) -> None:
        body = bytes(event_data)
        cost = len(body) + self.OVERHEAD
        if self._size + cost > self.limit:
            raise ValueError(f"EventDataBatch has reached its size limit: {self.limit}")
        self.bodies.append(body)
        self._size += cost

    def __len__(self) -> int:
        return len(self.bodies)

    @property
    def size_in_bytes(self) -> int:
        return self._size


class StandInProducer:
    """Stands in for Event Hubs and `EventHubProducerClient`: enforces the 1 MB batch limit and records sends.

    `fail_on` makes the n-th send (1-based) raise `SendError`, as the real wrapper does when the SDK gives up.
    """

    def __init__(self, partitions: list[str] | None = None, limit: int = MAX_BATCH_BYTES, fail_on: int = 0) -> None:
        self.partitions = partitions or list(PARTITIONS)
        self.limit = limit
        self.fail_on = fail_on
        self.sent: list[StandInBatch] = []
        self.closed = False

    def create_batch(self, *, partition_id: str | None = None, max_size_in_bytes: int | None = None) -> StandInBatch:
        assert partition_id is None or partition_id in self.partitions, partition_id
        assert max_size_in_bytes is None or max_size_in_bytes <= MAX_BATCH_BYTES, "Event Hubs refuses > 1 MB"
        return StandInBatch(min(self.limit, max_size_in_bytes or self.limit), partition_id)

    def send_batch(self, event_data_batch: Any) -> None:
        assert isinstance(event_data_batch, StandInBatch)
        assert len(event_data_batch) > 0, "never send an empty batch"
        assert event_data_batch.size_in_bytes <= MAX_BATCH_BYTES
        if self.fail_on and len(self.sent) + 1 == self.fail_on:
            raise SendError("send failed after retries: ServerBusyError")
        self.sent.append(event_data_batch)

    def get_partition_ids(self) -> list[str]:
        return list(self.partitions)

    def close(self) -> None:
        self.closed = True

    def bodies(self) -> list[bytes]:
        return [b for batch in self.sent for b in batch.bodies]


class FakeClock:
    """Monotonic time that only `sleep` moves on (plus a fixed cost per reading, if asked)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 100.0
        self.step = step
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def _check_producer(p: StandInProducer) -> ProducerLike:
    return p  # mypy: the stand-in satisfies the protocol the tool is written against


# ---- pure planning ------------------------------------------------------------------------------------


def test_encoded_size_matches_the_sdk_batch_accounting() -> None:
    """For plain bodies, `encoded_size` is exactly what the real EventDataBatch adds (offline, no network)."""
    eventhub = pytest.importorskip("azure.eventhub")
    for n in [0, 1, 100, 245, 246, 250, 251, 255, 256, 300, 372, 800, 4096, 70_000]:
        batch = eventhub.EventDataBatch()
        before = batch.size_in_bytes
        batch.add(eventhub.EventData(b"x" * n))
        assert batch.size_in_bytes - before == encoded_size(n), n


def test_pack_fills_the_real_sdk_batch_tightly() -> None:
    """Every planned batch fits a real 1 MiB EventDataBatch, and the next event would not have fitted."""
    eventhub = pytest.importorskip("azure.eventhub")
    rng = random.Random(7)
    bodies = [b"y" * rng.choice([40, 250, 256, 372, 800, 5000]) for _ in range(6000)]
    plan = pack([len(b) for b in bodies])
    assert len(plan.batches) > 2
    for k, planned in enumerate(plan.batches):
        batch = eventhub.EventDataBatch(max_size_in_bytes=MAX_BATCH_BYTES)
        for i in planned:
            batch.add(eventhub.EventData(bodies[i]))
        if k + 1 < len(plan.batches):
            with pytest.raises(ValueError, match="size limit"):
                batch.add(eventhub.EventData(bodies[plan.batches[k + 1][0]]))


def test_pack_keeps_order_and_limit_and_sets_aside_oversized() -> None:
    """Batches cover every fitting item once, in order, within the limit; items too big are reported."""
    sizes = [100, 100, 3000, 100, 50, 100]
    plan = pack(sizes, max_batch_bytes=300)
    assert plan.oversized == (2,)
    flat = [i for batch in plan.batches for i in batch]
    assert flat == [0, 1, 3, 4, 5]
    for batch in plan.batches:
        assert sum(encoded_size(sizes[i]) for i in batch) <= 300
    assert pack([], 300) == pack([], 300)
    assert pack([], 300).batches == ()


def test_pack_exact_fit_and_one_byte_over() -> None:
    """A batch may be filled to the byte; one more byte starts a new batch."""
    per_event = encoded_size(500)
    assert pack([500, 500], max_batch_bytes=2 * per_event).batches == ((0, 1),)
    assert pack([500, 500], max_batch_bytes=2 * per_event - 1).batches == ((0,), (1,))


def test_partition_for_is_stable_and_spreads() -> None:
    """One account always maps to one partition, and 10,000 accounts use every partition."""
    assert partition_for("acct-000042", PARTITIONS) == partition_for("acct-000042", list(PARTITIONS))
    spread = Counter(partition_for(f"acct-{i:06d}", PARTITIONS) for i in range(10_000))
    assert set(spread) == set(PARTITIONS)
    assert min(spread.values()) > 2000


def test_route_groups_by_partition_only_for_account_mode() -> None:
    """account_id mode groups indices per partition; the other modes leave the choice open."""
    accounts = ["acct-1", "acct-2", "acct-1", "acct-3"]
    assert route(accounts, PartitionMode.NONE, PARTITIONS) == [(None, [0, 1, 2, 3])]
    assert route(accounts, PartitionMode.ROUND_ROBIN, PARTITIONS) == [(None, [0, 1, 2, 3])]
    grouped = dict(route(accounts, PartitionMode.ACCOUNT, PARTITIONS))
    assert sum(len(v) for v in grouped.values()) == 4
    home = partition_for("acct-1", PARTITIONS)
    assert {0, 2} <= set(grouped[home])


# ---- sending through the stand-in ---------------------------------------------------------------------


def _send(producer: StandInProducer, count: int, **kwargs: Any) -> tuple[SendStats, StandInProducer]:
    stats = run(_check_producer(producer), TransactionGenerator(seed=11), count=count, **kwargs)
    return stats, producer


def test_run_sends_every_event_as_a_valid_transaction() -> None:
    """Each requested event arrives once, as a contract-valid JSON transaction, in batches within the limit."""
    stats, producer = _send(StandInProducer(limit=8192), 3000, max_batch_bytes=8192)
    bodies = producer.bodies()
    assert stats.events == len(bodies) == 3000
    assert stats.requested == 3000
    assert len({orjson.loads(b)["id"] for b in bodies}) == 3000
    for body in bodies[:200]:
        contract.validate(orjson.loads(body))
    assert stats.batches == len(producer.sent) > 1
    assert all(batch.size_in_bytes <= 8192 for batch in producer.sent)
    assert stats.per_partition == Counter({"any": 3000})
    assert stats.labelled_fraud == sum(orjson.loads(b)["is_fraud"] for b in bodies)


def test_run_default_batches_hold_about_a_megabyte() -> None:
    """With the default ceiling, a batch carries thousands of ~0.4 KB events, not a handful."""
    stats, producer = _send(StandInProducer(), 5000)
    assert stats.events == 5000
    assert max(len(b) for b in producer.sent) > 2000


def test_account_mode_keeps_each_account_on_one_partition() -> None:
    """Every event of an account lands on the partition `partition_for` names, in every batch."""
    _, producer = _send(StandInProducer(limit=16_384), 4000, mode=PartitionMode.ACCOUNT, max_batch_bytes=16_384)
    seen: dict[str, set[str | None]] = {}
    for batch in producer.sent:
        assert batch.partition_id is not None
        for body in batch.bodies:
            seen.setdefault(orjson.loads(body)["account_id"], set()).add(batch.partition_id)
    assert all(len(p) == 1 for p in seen.values())
    assert all(p == {partition_for(a, PARTITIONS)} for a, p in seen.items())


def test_round_robin_cycles_whole_batches_over_the_partitions() -> None:
    """Batches go to 0, 1, 2, 3, 0, ... in turn."""
    _, producer = _send(StandInProducer(limit=4096), 400, mode=PartitionMode.ROUND_ROBIN, max_batch_bytes=4096)
    targets = [b.partition_id for b in producer.sent]
    assert len(targets) >= 8
    assert targets == [PARTITIONS[i % 4] for i in range(len(targets))]


def test_sdk_disagreeing_with_the_plan_splits_the_batch_without_losing_events() -> None:
    """If the batch refuses an event the plan fitted, the batch is sent and the event starts a new one."""
    stats, producer = _send(StandInProducer(limit=4096), 500, max_batch_bytes=4096 + 2000)
    assert stats.events == 500
    assert stats.resplits > 0
    assert all(batch.size_in_bytes <= 4096 for batch in producer.sent)


def test_events_larger_than_a_batch_are_counted_not_sent() -> None:
    """A ceiling below one event's size sends nothing and says how many were skipped."""
    stats, producer = _send(StandInProducer(), 10, max_batch_bytes=200)
    assert stats.events == 0
    assert stats.oversized == 10
    assert producer.sent == []


def test_rate_paces_on_an_absolute_schedule() -> None:
    """3,000 events at 1,000/s take three seconds of sleeping, in small steps, never ahead of schedule."""
    clock = FakeClock()
    stats, _ = _send(StandInProducer(), 3000, rate=1000, clock=clock, sleep=clock.sleep)
    assert sum(clock.sleeps) == pytest.approx(3.0)
    assert len(clock.sleeps) == 3000 // 200
    assert stats.elapsed_s == pytest.approx(3.0)


def test_slow_sends_are_caught_up_instead_of_drifting() -> None:
    """When sending itself takes longer than the schedule allows, no sleep is added."""
    clock = FakeClock(step=0.5)
    _send(StandInProducer(), 1000, rate=1000, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_a_failed_send_propagates_with_partial_stats() -> None:
    """`SendError` stops the run; the stats passed in still say what went out before it."""
    stats = SendStats()
    producer = StandInProducer(limit=4096, fail_on=3)
    with pytest.raises(SendError):
        run(producer, TransactionGenerator(seed=1), count=500, max_batch_bytes=4096, stats=stats)
    assert stats.batches == 2
    assert stats.events == len(producer.bodies()) > 0


# ---- the command line ---------------------------------------------------------------------------------


class _Factory:
    """Records the arguments the CLI would have built a real client from, and hands out a stand-in."""

    def __init__(self, producer: StandInProducer) -> None:
        self.producer = producer
        self.args: argparse.Namespace | None = None

    def __call__(self, args: argparse.Namespace) -> tuple[ProducerLike, Callable[[bytes], Any]]:
        self.args = args
        return self.producer, bytes


class _Bar:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.closed = False

    def update(self, n: int) -> None:
        self.done += n

    def close(self) -> None:
        self.closed = True


def test_cli_sends_and_prints_a_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """--emulator with a count and partition mode sends that many and reports them."""
    monkeypatch.delenv("EVENTHUB_CONNECTION_STRING", raising=False)
    factory = _Factory(StandInProducer())
    bars: list[_Bar] = []

    def bar(total: int) -> _Bar:
        bars.append(_Bar(total))
        return bars[-1]

    out = io.StringIO()
    code = main(
        ["--emulator", "--count", "1200", "--partition-key", "account_id", "--seed", "3"],
        producer_factory=factory,
        progress_factory=bar,
        out=out,
    )
    assert code == 0
    assert factory.args is not None
    assert factory.args.emulator
    assert factory.args.partition_key is PartitionMode.ACCOUNT
    assert len(factory.producer.bodies()) == 1200
    assert factory.producer.closed
    assert bars[0].total == bars[0].done == 1200
    assert bars[0].closed
    text = out.getvalue()
    assert "sent 1,200 of 1,200 transactions in 1,200 events" in text
    assert "partitions: 0=" in text


def test_cli_reads_the_connection_string_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection string in the named variable is enough; it never appears in argv or the output."""
    secret = "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc="
    monkeypatch.setenv("MY_EH", secret)
    factory = _Factory(StandInProducer())
    out = io.StringIO()
    assert main(["--connection-string-env", "MY_EH", "--count", "5"], producer_factory=factory, out=out) == 0
    assert secret not in out.getvalue()


def test_cli_without_a_destination_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """No emulator, namespace or connection string: argparse exits with status 2 before any client exists."""
    monkeypatch.delenv("EVENTHUB_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("EventHubConnection__fullyQualifiedNamespace", raising=False)
    factory = _Factory(StandInProducer())
    with pytest.raises(SystemExit) as exc:
        main(["--count", "5"], producer_factory=factory)
    assert exc.value.code == 2
    assert factory.args is None


def test_cli_failed_send_exits_1_with_what_was_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A send that fails after retries ends the run with status 1 and a truthful summary."""
    monkeypatch.delenv("EVENTHUB_CONNECTION_STRING", raising=False)
    factory = _Factory(StandInProducer(limit=4096, fail_on=2))
    out = io.StringIO()
    code = main(
        ["--emulator", "--count", "300", "--max-batch-bytes", "4096"],
        producer_factory=factory,
        progress_factory=_Bar,
        out=out,
    )
    assert code == 1
    sent = len(factory.producer.bodies())
    assert f"sent {sent:,} of 300 transactions in {sent:,} events" in out.getvalue()
    assert factory.producer.closed


def test_emulator_connection_string_is_the_published_development_one() -> None:
    """The built-in emulator string targets localhost with the emulator flag, as Microsoft documents it."""
    assert "Endpoint=sb://localhost;" in EMULATOR_CONNECTION_STRING
    assert "UseDevelopmentEmulator=true" in EMULATOR_CONNECTION_STRING


@pytest.mark.parametrize(
    "argv",
    [["--emulator"], ["--namespace", "example.servicebus.windows.net"]],
    ids=["connection-string", "default-credential"],
)
def test_real_client_is_built_lazily_and_offline(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK client and credential are constructed (no network until a send) and closed cleanly."""
    eventhub = pytest.importorskip("azure.eventhub")
    pytest.importorskip("azure.identity")
    monkeypatch.delenv("EVENTHUB_CONNECTION_STRING", raising=False)
    from tools.send_events import parser, sdk_producer

    producer, make_event = sdk_producer(parser().parse_args(argv))
    assert make_event is eventhub.EventData
    producer.close()


def _records(producer: StandInProducer) -> list[tuple[str | None, dict[str, Any]]]:
    """(partition, transaction) for every transaction sent, envelopes opened, in send order."""
    out: list[tuple[str | None, dict[str, Any]]] = []
    for batch in producer.sent:
        for body in batch.bodies:
            value = orjson.loads(body)
            records = value["records"] if contract.is_envelope(value) else [value]
            out += [(batch.partition_id, r) for r in records]
    return out


def test_envelopes_carry_every_transaction_on_its_account_partition_in_order() -> None:
    """--records-per-event 100 with account_id: each envelope on Event Hubs' partition for its accounts, in order."""
    generated = TransactionGenerator(seed=11).generate(4000)
    stats, producer = _send(StandInProducer(), 4000, mode=PartitionMode.ACCOUNT, records_per_event=100)
    sent = _records(producer)
    assert stats.transactions == len(sent) == 4000
    assert stats.events == sum(len(b) for b in producer.sent) <= 4000 // 100 + 2 * len(PARTITIONS)
    assert sum(stats.per_partition.values()) == 4000
    for batch in producer.sent:
        for body in batch.bodies:
            value = orjson.loads(body)
            assert contract.is_envelope(value)
            assert len(value["records"]) <= 100
            assert {partition_for(r["account_id"], PARTITIONS) for r in value["records"]} == {batch.partition_id}
    expected: dict[str, list[str]] = {}
    for record in generated:
        expected.setdefault(record["account_id"], []).append(record["id"])
    got: dict[str, list[str]] = {}
    for _, record in sent:
        got.setdefault(record["account_id"], []).append(record["id"])
    assert got == expected


def test_envelopes_fit_the_stand_in_batch_limit() -> None:
    """Under a small batch ceiling the envelopes shrink to fit; the stand-in's own accounting refuses none."""
    stats, producer = _send(StandInProducer(limit=8192), 2000, max_batch_bytes=8192, records_per_event=500)
    assert stats.transactions == 2000
    assert stats.oversized == 0
    assert all(batch.size_in_bytes <= 8192 for batch in producer.sent)
    assert all(len(body) <= 8192 - 16 for batch in producer.sent for body in batch.bodies)


def test_full_envelopes_stay_under_the_event_limit() -> None:
    """At 2,000 records per event envelopes close at 1,000,000 bytes, under Event Hubs' 1 MB event limit."""
    stats, producer = _send(StandInProducer(), 5000, records_per_event=2000)
    assert stats.transactions == 5000
    assert max(len(body) for batch in producer.sent for body in batch.bodies) <= 1_000_000


def test_cli_records_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """--records-per-event reaches run(); the summary counts transactions and events apart."""
    monkeypatch.delenv("EVENTHUB_CONNECTION_STRING", raising=False)
    factory = _Factory(StandInProducer())
    out = io.StringIO()
    code = main(
        ["--emulator", "--count", "1000", "--records-per-event", "100"],
        producer_factory=factory,
        progress_factory=_Bar,
        out=out,
    )
    assert code == 0
    assert len(factory.producer.bodies()) == 10
    assert "sent 1,000 of 1,000 transactions in 10 events" in out.getvalue()
    with pytest.raises(SystemExit):
        main(["--emulator", "--records-per-event", "0"], producer_factory=factory, progress_factory=_Bar, out=out)


BAD_OPTIONS: list[tuple[list[str], str]] = [
    (["--emulator", "--count", "0"], "argument --count: must be a whole number >= 1, got '0'"),
    (["--emulator", "--count", "ten"], "argument --count: must be a whole number >= 1, got 'ten'"),
    (["--emulator", "--rate", "-1"], "argument --rate: must be a number >= 0, got '-1'"),
    (["--emulator", "--rate", "nan"], "argument --rate: must be a number >= 0, got 'nan'"),
    (["--emulator", "--fraud-rate", "1.5"], "argument --fraud-rate: must be a number >= 0 and <= 1, got '1.5'"),
    (
        ["--emulator", "--max-batch-bytes", "10"],
        "argument --max-batch-bytes: must be a whole number from 64 to 1,048,576, got '10'",
    ),
    (
        ["--emulator", "--max-batch-bytes", "2000000"],
        "argument --max-batch-bytes: must be a whole number from 64 to 1,048,576, got '2000000'",
    ),
    (["--emulator", "--records-per-event", "0"], "argument --records-per-event: must be a whole number >= 1, got '0'"),
    (["--emulator", "--seed", "-3"], "argument --seed: must be a whole number >= 0, got '-3'"),
    (
        ["--namespace", "https://ns.servicebus.windows.net/"],
        "argument --namespace: must be a host name such as <namespace>.servicebus.windows.net",
    ),
    (["--emulator", "--hub", " "], "argument --hub: must name an event hub"),
    (["--emulator", "--partition-key", "colour"], "argument --partition-key: invalid"),
    (["--count", "5"], "give --emulator, --namespace, or a connection string in $EVENTHUB_CONNECTION_STRING"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_cli_bad_option_is_one_line_and_exit_2(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad value: one line naming the option and what it must be, exit status 2, no client built."""
    monkeypatch.delenv("EVENTHUB_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("EventHubConnection__fullyQualifiedNamespace", raising=False)
    factory = _Factory(StandInProducer())
    with pytest.raises(SystemExit) as exc:
        main(argv, producer_factory=factory, progress_factory=_Bar, out=io.StringIO())
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("python -m tools.send_events: error: "), err
    assert err.count("\n") == 1, err
    assert message in err, err
    assert factory.args is None
