"""Import historical labels (months of chargebacks) before scoring starts: `python -m tools.import_labels FILE`.

Why: merchant risk counts the labels known more than MERCHANT_RISK_DELAY_DAYS before a payment's
day. A bank going live has months of confirmed outcomes, but POST /api/labels dates every label
from the moment it is recorded (so a late label never changes features already served): sent
today, a year of chargebacks would feed no payment for a week, and only as if all known today.
This import stores each label known on its own `known_at`'s day instead.

When it is safe: for history **before scoring starts** (going live, a demo). Imported after
payments were scored, it changes the merchant features of days already served: the scores in the
`scored` container would no longer be what the stored labels give, which the HTTP path never
allows. Labels learnt after go-live go to POST /api/labels.

FILE is JSON Lines: one label per line, exactly as the labels contract takes it
(`shared/labels/contract.py`; blank lines are skipped). Each label is judged as RecordLabels judges
it (the same settings), and refused if its `known_at` is after now (`known_later`: send it to the
HTTP path). Stored as the HTTP path stores: once per transaction, a repeat with the same outcome a
duplicate (importing a file twice is safe), another outcome a `label_conflict` (the stored label
stays). The last line sums up: stored, duplicate, conflict, rejected by field and reason, the known
days stored. Exit status 0 when every label was stored or a duplicate, 1 otherwise, 2 for a bad
option or setting (one line).

The stores are the app's, from its settings (LABEL_STORE, MERCHANT_STATE, CosmosDBConnection or
CosmosDBConnection__accountEndpoint, COSMOS_DATABASE, COSMOS_LABELS_CONTAINER,
COSMOS_MERCHANTS_CONTAINER), built by the same code as the functions'. LABEL_STORE=memory would be
lost when this process ends, so it is refused except with --dry-run (the demo imports in process
through `import_records`).

After the import, the next AggregateLabels run applies the imported days if the aggregation has
not passed them yet (a store it never ran on: it starts `merchants.KEEP_DAYS` days back). If its
progress is already at or past the oldest imported day, the import says so; `--reaggregate` moves
the progress back to the day before it, and the next run applies every day from there again, which
changes nothing for days without imported labels: a day's totals are set, not added
(`shared/labels/aggregate.py`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson

from devhost.cli import Parser, UsageError, app_settings, fail
from shared.behaviour import days, merchants
from shared.behaviour.merchant_store import MerchantStore
from shared.contract import schema as c
from shared.labels import contract, intake
from shared.labels.aggregate import day_of
from shared.labels.store import LabelStore, Outcome, Written
from shared.scoring.documents import utc_iso

PROG: Final = "python -m tools.import_labels"
CHUNK: Final = 1000
"""Labels judged and stored per call to the store (its writes run concurrently within one call)."""
SHOWN_REJECTIONS: Final = 20
"""Rejected lines described one by one; the rest are only counted."""
INVALID_JSON: Final = c.Rejection("body", "invalid_json", "the line is not a UTF-8 JSON document")
_EPOCH_DAY: Final = date(1970, 1, 1)


def utc_now() -> datetime:
    """The import's clock: a label known after it is refused, and stored labels are recorded at it."""
    return datetime.now(UTC)


def day_text(day: int) -> str:
    """A known day (`days.day_number`) as its UTC date."""
    return (_EPOCH_DAY + timedelta(days=day - days.DAY_OFFSET)).isoformat()


class _KnownDays:
    """A label store that notes the known day of each document the store holds (what the aggregation must apply)."""

    def __init__(self, store: LabelStore) -> None:
        self._store = store
        self.days: Counter[int] = Counter()
        self.merchants: set[str] = set()

    def create(self, documents: Sequence[Mapping[str, Any]]) -> list[Written]:
        written = self._store.create(documents)
        for doc, outcome in zip(documents, written, strict=True):
            # Duplicates too: a second import (--reaggregate after a first without it) must find the same days.
            if outcome.outcome in (Outcome.STORED, Outcome.DUPLICATE):
                self.days[doc["known_day"]] += 1
                if doc.get("merchant_id") is not None:
                    self.merchants.add(doc["merchant_id"])
        return written

    def known_on(self, known_day: int) -> list[tuple[str, bool]]:
        return self._store.known_on(known_day)


class _Rehearsal:
    """--dry-run's store: remembers the outcome of each transaction seen in the file, stores nothing."""

    def __init__(self) -> None:
        self._fraud: dict[str, bool] = {}
        self._seen: set[str] = set()

    def create(self, documents: Sequence[Mapping[str, Any]]) -> list[Written]:
        out = []
        for doc in documents:
            stored = self._fraud.setdefault(doc["id"], doc["fraud"])
            if stored is not doc["fraud"]:
                out.append(Written(Outcome.CONFLICT, stored))
            else:
                out.append(Written(Outcome.STORED if doc["id"] not in self._seen else Outcome.DUPLICATE, stored))
            self._seen.add(doc["id"])
        return out

    def known_on(self, known_day: int) -> list[tuple[str, bool]]:
        return []


@dataclass
class ImportReport:
    """What an import did with every line."""

    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    """`field reason` of each rejected label (conflicts not included)."""
    unconfirmed: int = 0
    shown: list[str] = field(default_factory=list)
    """The first rejected lines, described."""
    days: Counter[int] = field(default_factory=Counter)
    """Labels stored or found already stored (duplicates), per known day."""
    merchants: set[str] = field(default_factory=set)
    """Merchants of those labels."""
    stopped_at: int | None = None
    """The line the import stopped before, when the store did not confirm writes."""

    @property
    def ok(self) -> bool:
        return not (self.conflicts or self.rejected or self.unconfirmed)

    def days_text(self) -> str:
        if not self.days:
            return "no known days"
        first, last = min(self.days), max(self.days)
        return f"known days {day_text(first)} to {day_text(last)} ({len(self.days)} with labels)"

    def summary(self, dry_run: bool = False) -> str:
        """The one line that sums up the import."""
        reasons = ", ".join(f"{what} {n:,}" for what, n in sorted(self.rejected.items()))
        verb = "would be stored" if dry_run else "stored"
        line = (
            f"{self.stored:,} {verb}, {self.duplicates:,} duplicate, {self.conflicts:,} conflict, "
            f"{sum(self.rejected.values()):,} rejected{f' ({reasons})' if reasons else ''}; {self.days_text()}"
        )
        if self.unconfirmed:
            line += (
                f"; {self.unconfirmed:,} unconfirmed, stopped before line {self.stopped_at}: the store did not "
                "confirm them, run the import again (nothing is stored twice)"
            )
        return line


def _decoded(lines: Iterable[tuple[int, bytes]], report: ImportReport) -> Iterator[tuple[int, Any]]:
    """(line number, record) of each non-blank line; a line that is not JSON is rejected here."""
    for number, line in lines:
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError:
            _reject(report, number, INVALID_JSON)


def _reject(report: ImportReport, number: int, rejection: c.Rejection) -> None:
    if rejection.reason == contract.LABEL_CONFLICT:
        report.conflicts += 1
    else:
        report.rejected[f"{rejection.field} {rejection.reason}"] += 1
    if len(report.shown) < SHOWN_REJECTIONS:
        report.shown.append(f"line {number}: {rejection.field} {rejection.reason} ({rejection.detail})")


def import_records(
    records: Iterable[tuple[int, Any]], store: LabelStore, now: datetime, max_early_ms: int
) -> ImportReport:
    """Judge and store (line number, label) pairs as history (`intake.record_history`), `CHUNK` at a time."""
    report = ImportReport()
    return _import(_batched(records), report, store, now, max_early_ms)


def import_lines(
    lines: Iterable[tuple[int, bytes]], store: LabelStore, now: datetime, max_early_ms: int
) -> ImportReport:
    """`import_records` of JSON Lines (line number, bytes); a line that is not JSON is rejected `invalid_json`."""
    report = ImportReport()
    return _import(_batched(_decoded(lines, report)), report, store, now, max_early_ms)


def _import(
    chunks: Iterable[list[tuple[int, Any]]], report: ImportReport, store: LabelStore, now: datetime, max_early_ms: int
) -> ImportReport:
    """Stops at the first chunk the store did not wholly confirm: the rest would fail the same way."""
    noting = _KnownDays(store)
    for chunk in chunks:
        result = intake.record_history(chunk, noting, now, max_early_ms)
        report.stored += result.stored
        report.duplicates += result.duplicates
        for index, rejection in result.rejected:
            _reject(report, index, rejection)
        if result.unconfirmed:
            report.unconfirmed += len(result.unconfirmed)
            report.stopped_at = chunk[0][0]
            break
    report.days = noting.days
    report.merchants = noting.merchants
    return report


def _batched(records: Iterable[tuple[int, Any]]) -> Iterator[list[tuple[int, Any]]]:
    chunk: list[tuple[int, Any]] = []
    for pair in records:
        chunk.append(pair)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def check_aggregation(
    store: MerchantStore, report: ImportReport, now: datetime, reaggregate: bool
) -> tuple[list[str], bool]:
    """What the next AggregateLabels run will do with the imported days, moving its progress back with `reaggregate`.

    Returns the lines to print and whether the imported days will all be applied.
    """
    if not report.days:
        return [], True
    today = day_of(now)
    oldest = today - merchants.KEEP_DAYS
    first = min(report.days)
    lines = []
    too_old = sum(n for day, n in report.days.items() if day < oldest)
    if too_old:
        lines.append(
            f"{too_old:,} labels are known before {day_text(oldest)} ({merchants.KEEP_DAYS} days ago): "
            "no merchant feature reaches that far back, so the aggregation leaves them out"
        )
    first = max(first, oldest)
    progress = store.read_progress()
    if progress.through is None or progress.through < first:
        lines.append("the next AggregateLabels run applies the imported days")
        return lines, True
    if not reaggregate:
        lines.append(
            f"the aggregation has applied known days through {day_text(progress.through)}, so the next "
            f"AggregateLabels run would not apply the imported days from {day_text(first)}: run the import again "
            "with --reaggregate (nothing is stored twice)"
        )
        return lines, False
    stamp = utc_iso(now)
    for _ in range(5):
        if store.write_progress(first - 1, progress.version, stamp):
            lines.append(
                f"the aggregation's progress moved back from {day_text(progress.through)} to "
                f"{day_text(first - 1)}: the next AggregateLabels run applies every day from {day_text(first)} again"
            )
            return lines, True
        progress = store.read_progress()  # another run moved it meanwhile: move it back from there
        if progress.through is None or progress.through < first:
            return [*lines, "the next AggregateLabels run applies the imported days"], True
    lines.append("the aggregation's progress kept moving (runs in progress?): run the import with --reaggregate again")
    return lines, False


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    description = (
        "Store historical labels, each known on its own known_at day, before scoring starts (go-live, a demo). "
        "Imported after payments were scored, it would change merchant features already served for them, which "
        "POST /api/labels never does: send labels learnt after go-live there."
    )
    parser = Parser(PROG, description)
    parser.add_argument("file", type=Path, metavar="FILE", help="JSON Lines, one label per line (the labels contract)")
    parser.add_argument("--dry-run", action="store_true", help="judge every label, store nothing, move nothing")
    parser.add_argument(
        "--reaggregate",
        action="store_true",
        help="if the aggregation's progress is past the oldest imported day, move it back so the next run applies it",
    )
    return parser.parse_args(argv)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        yield from enumerate(handle, start=1)


def _stores(env: Mapping[str, str], args: argparse.Namespace) -> tuple[LabelStore | None, MerchantStore | None, int]:
    """The app's label and merchant stores from its settings (None with --dry-run), and the contract's max_early_ms."""
    from shared.behaviour.merchant_store import UnavailableMerchantStore, get_merchant_store
    from shared.labels.store import UnavailableLabelStore, get_label_store

    settings = app_settings(env)
    if not args.file.is_file() or not os.access(args.file, os.R_OK):
        raise UsageError(f"FILE must be a readable file, got {str(args.file)!r}")
    max_early_ms = settings.event_time_max_early_hours * 3_600_000
    if args.dry_run:
        return None, None, max_early_ms
    if settings.label_store == "off":
        raise UsageError("LABEL_STORE is off: there is no label store to import into")
    if settings.label_store == "memory":
        raise UsageError(
            "LABEL_STORE=memory keeps labels in this process only, so the import would be lost when it ends: "
            "set LABEL_STORE=cosmos and CosmosDBConnection (or use --dry-run)"
        )
    if args.reaggregate and settings.merchant_state == "off":
        raise UsageError("--reaggregate needs the merchant store, but MERCHANT_STATE is off")
    labels = get_label_store()
    if labels is None or isinstance(labels, UnavailableLabelStore):
        raise UsageError(labels.reason if labels is not None else "LABEL_STORE is off")
    merchant_store = get_merchant_store()
    if isinstance(merchant_store, UnavailableMerchantStore):
        raise UsageError(merchant_store.reason)
    return labels, merchant_store, max_early_ms


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        labels, merchant_store, max_early_ms = _stores(os.environ, args)
    except UsageError as exc:
        fail(PROG, str(exc))
    now = utc_now()
    store: LabelStore = _Rehearsal() if labels is None else labels
    report = import_lines(_lines(args.file), store, now, max_early_ms)
    return _finish(args, report, merchant_store, now)


def _finish(args: argparse.Namespace, report: ImportReport, merchant_store: MerchantStore | None, now: datetime) -> int:
    for line in report.shown:
        print(line, file=sys.stderr)
    hidden = report.conflicts + sum(report.rejected.values()) - len(report.shown)
    if hidden > 0:
        print(f"... and {hidden:,} more rejected", file=sys.stderr)
    applied = True
    if merchant_store is not None and not args.dry_run and not report.unconfirmed:
        lines, applied = check_aggregation(merchant_store, report, now, args.reaggregate)
        for line in lines:
            print(line)
    print(f"{args.file}: {report.summary(args.dry_run)}{'; dry run: nothing stored' if args.dry_run else ''}")
    return 0 if report.ok and applied else 1


if __name__ == "__main__":
    sys.exit(main())
