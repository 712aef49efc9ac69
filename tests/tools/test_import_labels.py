"""tools.import_labels: history judged as RecordLabels judges it, known on its known_at days, then aggregated."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

import functions.labels as labels_function
from devhost.worker import Worker
from shared import caches
from shared.behaviour import days, merchants
from shared.behaviour.merchant_store import MemoryMerchantStore, get_merchant_store
from shared.contract import timestamps
from shared.labels.store import MemoryLabelStore, get_label_store
from tests.invoke import timer
from tools import import_labels

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
MAX_EARLY_MS = 8784 * 3_600_000
PROG = "python -m tools.import_labels: error: "


def label(i: int, **changes: Any) -> dict[str, Any]:
    """A valid label known `i % 20` days before NOW, at one of five merchants."""
    known = NOW - timedelta(days=i % 20, hours=1)
    return {
        "transaction_id": f"tx-{i}",
        "fraud": i % 3 == 0,
        "known_at": timestamps.format_many(np.asarray([int(known.timestamp() * 1000)]))[0],
        "merchant_id": f"m-{i % 5}",
        **changes,
    }


@pytest.fixture(autouse=True)
def memory_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Labels and merchant states in memory (as BEHAVIOUR_STATE=memory), both clocks at NOW."""
    for name in ("LABEL_STORE", "MERCHANT_STATE", "MERCHANT_RISK_DELAY_DAYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(labels_function, "utc_now", lambda: NOW)
    monkeypatch.setattr(import_labels, "utc_now", lambda: NOW)
    caches.reset_all()
    yield
    caches.reset_all()


def label_store() -> MemoryLabelStore:
    store = get_label_store()
    assert isinstance(store, MemoryLabelStore)
    return store


def merchant_store() -> MemoryMerchantStore:
    store = get_merchant_store()
    assert isinstance(store, MemoryMerchantStore)
    return store


def lines(*records: Any) -> list[tuple[int, bytes]]:
    return [(n, r if isinstance(r, bytes) else orjson.dumps(r)) for n, r in enumerate(records, start=1)]


def run(records: Sequence[Any]) -> import_labels.ImportReport:
    return import_labels.import_lines(lines(*records), label_store(), NOW, MAX_EARLY_MS)


# (the line, "field reason" it is rejected for)
BAD: list[tuple[Any, str]] = [
    (b"{not json", "body invalid_json"),
    ([label(1)], "body not_an_object"),
    ({**label(1), "knownat": "2026-11-01T00:00:00Z"}, "knownat unknown_field"),
    ({k: v for k, v in label(1).items() if k != "known_at"}, "known_at missing"),
    (label(1, known_at="2026-11-20T12:00:00.001Z"), "known_at known_later"),
    (label(1, known_at="2030-01-01T00:00:00Z"), "known_at too_early"),
    (label(1, known_at="yesterday"), "known_at invalid_value"),
    (label(1, fraud=1), "fraud wrong_type"),
    (label(1, merchant_id=""), "merchant_id out_of_range"),
    (label(1, source="rumour"), "source unknown_category"),
    ({**label(1), "transaction_id": None}, "transaction_id missing"),
]


@pytest.mark.parametrize(("line", "reason"), BAD, ids=[r for _, r in BAD])
def test_a_bad_label_is_rejected_with_its_reason(line: Any, reason: str) -> None:
    """Each fault as RecordLabels names it (plus known_later: not yet known at the import), the rest stored."""
    report = run([label(0), line, label(2)])
    assert report.rejected == {reason: 1}
    assert report.stored == 2
    assert report.shown[0].startswith(f"line 2: {reason} (")
    assert label_store().get("tx-1") is None
    assert not report.ok


def test_known_at_now_is_history_and_a_millisecond_later_is_not() -> None:
    """The boundary of known_later is the import's clock itself."""
    report = run([label(0, known_at="2026-11-20T12:00:00Z"), label(1, known_at="2026-11-20T12:00:00.001Z")])
    assert (report.stored, report.rejected) == (1, {"known_at known_later": 1})


def test_each_label_is_known_on_its_own_known_at_day() -> None:
    """Not the import's day (as POST /api/labels would date it): the day known_at names; recorded_at is the import."""
    report = run([label(i) for i in range(40)])
    assert report.stored == 40
    assert report.ok
    for i in range(40):
        stored = label_store().get(f"tx-{i}")
        assert stored is not None
        known_ms = timestamps.parse_ms(label(i)["known_at"])
        assert stored["known_day"] == int(days.day_number(np.asarray(known_ms)))
        assert stored["recorded_at"] == "2026-11-20T12:00:00.000Z"
        assert stored["imported"] is True
    today = int(days.day_number(np.asarray(int(NOW.timestamp() * 1000))))
    assert set(report.days) == set(range(today - 19, today + 1))
    assert report.days_text() == "known days 2026-11-01 to 2026-11-20 (20 with labels)"


def test_duplicates_and_conflicts_as_over_http() -> None:
    """A repeat with the same outcome is a duplicate, another a conflict; the first stored stays; twice is safe."""
    report = run([label(1), label(1), label(1, fraud=True), label(2)])
    assert (report.stored, report.duplicates, report.conflicts) == (2, 1, 1)
    assert report.shown == [
        "line 3: fraud label_conflict (this transaction's stored label says fraud=false; a label is final)"
    ]
    again = run([label(1), label(2)])
    assert (again.stored, again.duplicates, again.conflicts) == (0, 2, 0)
    stored = label_store().get("tx-1")
    assert stored is not None
    assert stored["fraud"] is False


def _states_equal_replay(sent: Sequence[dict[str, Any]]) -> None:
    """The merchant states give every payment the features `merchants.replay` (training) gives from `sent`."""
    ids = sorted({r["merchant_id"] for r in sent})
    states = merchant_store().read(ids)
    payments = [m for m in ids for _ in range(4)]
    t_ms = np.asarray(
        [int((NOW + timedelta(days=d)).timestamp() * 1000) for _ in ids for d in range(4)], dtype=np.int64
    )
    known = np.asarray([timestamps.parse_ms(r["known_at"]) for r in sent])
    fraud = np.asarray([r["fraud"] for r in sent])
    served = merchants.features_from_states(payments, t_ms, states, 7)
    replayed = merchants.replay(payments, t_ms, [r["merchant_id"] for r in sent], known, fraud, 7)
    assert np.array_equal(served, replayed)
    assert served[:, 0].sum() > 0, "the windows reach the imported labels"


def test_an_import_then_aggregate_labels_gives_the_training_replay(functions_worker: Worker) -> None:
    """Imported history, one AggregateLabels run through the worker: states as the training definition counts them."""
    sent = [label(i) for i in range(300)]
    report = import_labels.import_records(enumerate(sent, start=1), label_store(), NOW, MAX_EARLY_MS)
    assert report.stored == 300
    lines_out, applied = import_labels.check_aggregation(merchant_store(), report, NOW, reaggregate=False)
    assert applied
    assert lines_out == ["the next AggregateLabels run applies the imported days"]
    timer(functions_worker, "AggregateLabels")
    today = int(days.day_number(np.asarray(int(NOW.timestamp() * 1000))))
    assert merchant_store().read_progress().through == today - 1
    # Today's labels wait for the day to end, as over HTTP; the replay counts them only for later days.
    _states_equal_replay(sent)


def _cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, records: Sequence[Any], *argv: str) -> int:
    """main() on a file of `records`, with LABEL_STORE=cosmos standing for this process's memory stores."""
    path = tmp_path / "labels.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n\n")
    store, merchant = label_store(), merchant_store()
    monkeypatch.setenv("LABEL_STORE", "cosmos")
    monkeypatch.setenv("MERCHANT_STATE", "cosmos")
    caches.reset("settings")
    monkeypatch.setattr("shared.labels.store.get_label_store", lambda: store)
    monkeypatch.setattr("shared.behaviour.merchant_store.get_merchant_store", lambda: merchant)
    try:
        return import_labels.main([str(path), *argv])
    finally:
        monkeypatch.delenv("LABEL_STORE")
        monkeypatch.delenv("MERCHANT_STATE")
        caches.reset("settings")


def test_progress_past_the_import_is_said_and_reaggregate_moves_it_back(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An aggregation through yesterday would skip the imported days; --reaggregate makes the next run apply them."""
    timer(functions_worker, "AggregateLabels")  # the live app ran before the import: progress at yesterday
    through = merchant_store().read_progress().through
    assert through is not None
    sent = [label(i) for i in range(200)]
    assert _cli(monkeypatch, tmp_path, sent) == 1
    out = capsys.readouterr().out
    assert "so the next AggregateLabels run would not apply the imported days from 2026-11-01" in out
    assert "--reaggregate" in out
    assert out.splitlines()[-1].endswith("200 stored, 0 duplicate, 0 conflict, 0 rejected; "
                                         "known days 2026-11-01 to 2026-11-20 (20 with labels)")  # fmt: skip
    timer(functions_worker, "AggregateLabels")
    assert merchant_store().read(["m-0"]) == {}, "without --reaggregate the imported days stay unapplied"

    assert _cli(monkeypatch, tmp_path, sent, "--reaggregate") == 0
    out = capsys.readouterr().out
    assert "moved back from 2026-11-19 to 2026-10-31" in out
    assert "0 stored, 200 duplicate" in out
    assert merchant_store().read_progress().through == through - 19
    timer(functions_worker, "AggregateLabels")
    assert merchant_store().read_progress().through == through
    _states_equal_replay(sent)


def test_dry_run_judges_and_stores_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run: the same judgement and counts (repeats within the file included), nothing stored or moved."""
    path = tmp_path / "labels.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in [label(1), label(1), label(1, fraud=True), label(2, fraud=2)]))
    monkeypatch.setenv("LABEL_STORE", "memory")
    assert import_labels.main([str(path), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == (
        f"{path}: 1 would be stored, 1 duplicate, 1 conflict, 1 rejected (fraud wrong_type 1); "
        "known days 2026-11-19 to 2026-11-19 (1 with labels); dry run: nothing stored"
    )
    assert "line 4: fraud wrong_type" in captured.err
    assert label_store().get("tx-1") is None
    assert merchant_store().read_progress().through is None


def test_help_says_when_an_import_is_safe(capsys: pytest.CaptureFixture[str]) -> None:
    """--help: for history before scoring starts; after, it would change features already served."""
    with pytest.raises(SystemExit) as exit_:
        import_labels.main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "before scoring starts" in text
    assert "would change merchant features already served" in text
    assert "--reaggregate" in text
    assert "--dry-run" in text


# (arguments, app settings, what the one line says)
BAD_OPTIONS: list[tuple[list[str], dict[str, str], str]] = [
    ([], {}, "the following arguments are required: FILE"),
    (["{missing}"], {}, "FILE must be a readable file, got '{missing}'"),
    (["{file}", "--bogus"], {}, "unrecognized arguments: --bogus"),
    (["{file}"], {"LABEL_STORE": "off"}, "LABEL_STORE is off: there is no label store to import into"),
    (["{file}"], {"LABEL_STORE": "memory"}, "LABEL_STORE=memory keeps labels in this process only"),
    (["{file}"], {"LABEL_STORE": "tape"}, "LABEL_STORE must be one of cosmos, memory, off, got 'tape'"),
    (
        ["{file}", "--reaggregate"],
        {"LABEL_STORE": "cosmos", "MERCHANT_STATE": "off"},
        "--reaggregate needs the merchant store, but MERCHANT_STATE is off",
    ),
    (["{file}"], {"LABEL_STORE": "cosmos"}, "CosmosDBConnection"),
]


@pytest.mark.parametrize(("argv", "env", "message"), BAD_OPTIONS, ids=[m[:40] for _, _, m in BAD_OPTIONS])
def test_bad_option_or_setting(
    argv: list[str],
    env: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One line on stderr naming the option or setting, exit status 2, nothing stored."""
    file = tmp_path / "labels.jsonl"
    file.write_bytes(orjson.dumps(label(1)) + b"\n")
    names = {"file": str(file), "missing": str(tmp_path / "missing.jsonl")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CosmosDBConnection", raising=False)
    caches.reset("settings", "label store", "merchant store")
    with pytest.raises(SystemExit) as exit_:
        import_labels.main([a.format(**names) for a in argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(PROG)
    assert message.format(**names) in err
