"""The contract's timestamp form: what it accepts, what it refuses, and one batch path with the same answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contract import timestamps as ts

pytestmark = pytest.mark.unit

EPOCH = datetime(1970, 1, 1)
MS = timedelta(milliseconds=1)

ACCEPTED: dict[str, datetime] = {
    "2026-11-21T10:00:00.123Z": datetime(2026, 11, 21, 10, 0, 0, 123_000),
    "2026-11-21T10:00:00Z": datetime(2026, 11, 21, 10),
    "2026-11-21T10:00:00+00:00": datetime(2026, 11, 21, 10),
    "2026-11-21T10:00:00.5+00:00": datetime(2026, 11, 21, 10, 0, 0, 500_000),
    "2026-11-21T10:00:00.12Z": datetime(2026, 11, 21, 10, 0, 0, 120_000),
    "2026-11-21T10:00:00.1239Z": datetime(2026, 11, 21, 10, 0, 0, 123_000),
    "2026-11-21T10:00:00.999999999Z": datetime(2026, 11, 21, 10, 0, 0, 999_000),
    "2024-02-29T23:59:59.999Z": datetime(2024, 2, 29, 23, 59, 59, 999_000),
    "2000-02-29T00:00:00Z": datetime(2000, 2, 29),
    "1969-12-31T23:59:59.999Z": datetime(1969, 12, 31, 23, 59, 59, 999_000),
    "0001-01-01T00:00:00Z": datetime(1, 1, 1),
    "9999-12-31T23:59:59.999999999Z": datetime(9999, 12, 31, 23, 59, 59, 999_000),
}

REFUSED: list[object] = [
    # Forms `datetime.fromisoformat` accepts that NumPy cannot parse.
    "20260101T000000Z",
    "2026-W01-1T00:00:00Z",
    "2026-01-01T00:00:00,5Z",
    "2026-01-01T00:00:00+00:00:00",
    "2026-01-01T00:00:00." + "1" * 19 + "Z",
    "2026-01-01T00:00:00.1234567890Z",  # ten fraction digits
    # Text after a NUL, which `fromisoformat` ignored.
    "2026-01-01T00:00:00Z\x00" + "x" * 60_000,
    "2026-01-01T00:00:00Z\x00",
    "2026-01-01T00:00:00\x00Z",
    # Digits of other scripts (`\d` would match them).
    "\u0662\u0660\u0662\u0666-01-01T00:00:00Z",  # Arabic-Indic 2026
    "2026-01-0\u0661T00:00:00Z",
    "2026-01-01T00:00:00.\uff11Z",  # a full-width 1
    # Days the calendar lacks, and times the clock lacks.
    "2026-02-30T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-00-01T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-01-00T00:00:00Z",
    "2026-01-32T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T23:60:00Z",
    "2016-12-31T23:59:60Z",  # a real leap second, still refused
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "+2026-01-01T00:00:00Z",
    "-2026-01-01T00:00:00Z",
    # Not UTC, or UTC spelled otherwise.
    "2026-01-01T00:00:00",
    "2026-01-01T00:00:00-00:00",
    "2026-01-01T00:00:00+02:00",
    "2026-01-01T00:00:00+0000",
    "2026-01-01T00:00:00+00",
    "2026-01-01T00:00:00UTC",
    "2026-01-01T00:00:00ZZ",
    "2026-01-01T00:00:00z",
    "2026-01-01t00:00:00Z",
    # Other shapes.
    "2026-01-01 00:00:00Z",
    "2026-01-01_00:00:00Z",
    " 2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00Z ",
    "2026-01-01T00:00:00Z\n",
    "2026-01-01T00:00:00\tZ",
    "2026-01-01T00:00Z",
    "2026-01-01T00:00:00.Z",
    "2026-01-01T00:00:00123Z",
    "2026-1-01T00:00:00Z",
    "2026-01-01",
    "2026-01-01T",
    "yesterday",
    "",
    # Not strings at all.
    None,
    1_767_225_600_000,
    1.5,
    True,
    b"2026-01-01T00:00:00Z",
    ["2026-01-01T00:00:00Z"],
    datetime(2026, 1, 1, tzinfo=UTC),
]


@pytest.mark.parametrize(("text", "moment"), ACCEPTED.items())
def test_accepted_forms_parse_to_their_milliseconds(text: str, moment: datetime) -> None:
    """Each accepted form reads as its moment, fraction truncated to the millisecond."""
    assert ts.is_valid(text)
    assert ts.parse_ms(text) == (moment - EPOCH) // MS


@pytest.mark.parametrize("value", REFUSED, ids=lambda v: repr(v)[:40])
def test_refused_forms_raise_value_error(value: object) -> None:
    """Everything outside the form is refused with a ValueError (never a crash of another kind)."""
    assert not ts.is_valid(value)
    with pytest.raises(ValueError, match=r"not RFC 3339 UTC|no such day|a timestamp is a string"):
        ts.parse_ms(value)


def test_refusal_names_the_form_and_shows_a_bounded_excerpt() -> None:
    """The message says what is expected and quotes only the start of a long value."""
    with pytest.raises(ValueError, match="YYYY-MM-DDTHH:MM:SS") as info:
        ts.parse_ms("2026-01-01T00:00:00Z\x00" + "x" * 60_000)
    assert len(str(info.value)) < 200


def test_batch_matches_one_by_one_on_the_examples() -> None:
    """All examples in one batch (so NumPy refuses it and each is judged alone) and the valid ones alone."""
    values: list[object] = [*ACCEPTED, *REFUSED]
    t_ms, bad = ts.batch_ms(values)
    assert bad == list(range(len(ACCEPTED), len(values)))
    assert t_ms.dtype == np.int64
    assert t_ms.tolist() == [ts.parse_ms(v) for v in ACCEPTED] + [0] * len(REFUSED)
    t_ms, bad = ts.batch_ms(list(ACCEPTED))
    assert (t_ms.tolist(), bad) == ([ts.parse_ms(v) for v in ACCEPTED], [])
    t_ms, bad = ts.batch_ms([])
    assert (t_ms.shape, bad) == ((0,), [])


def test_a_missing_day_among_valid_ones_is_the_only_refusal() -> None:
    """NumPy refuses the whole array for one 30 February; the fallback refuses just that one."""
    values = ["2026-11-21T10:00:00.123Z"] * 5
    values[3] = "2026-02-30T10:00:00.123Z"
    t_ms, bad = ts.batch_ms(values)
    assert bad == [3]
    assert t_ms.tolist() == [ts.parse_ms(values[0])] * 3 + [0] + [ts.parse_ms(values[0])]


def test_formatting_reads_back_and_stays_in_range() -> None:
    """`format_ms`/`format_many` write the generator's form; out-of-range times have no contract timestamp."""
    assert ts.format_ms(0) == "1970-01-01T00:00:00.000Z"
    assert ts.format_many(np.array([ts.MIN_MS, ts.MAX_MS])) == [
        "0001-01-01T00:00:00.000Z",
        "9999-12-31T23:59:59.999Z",
    ]
    assert ts.format_many([]) == []
    for t in (ts.MIN_MS - 1, ts.MAX_MS + 1):
        with pytest.raises(ValueError, match="outside"):
            ts.format_ms(t)


# Hypothesis: every way of writing a valid time, and arbitrary or slightly damaged text.
_MOMENTS = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999_999))


@st.composite
def written(draw: st.DrawFn) -> tuple[str, datetime]:
    """A valid contract timestamp of a drawn moment: `isoformat` in two ways, or 0..9 fraction digits by hand."""
    moment = draw(_MOMENTS)
    aware = moment.replace(tzinfo=UTC)
    way = draw(st.sampled_from(["isoformat", "milliseconds_z", "by_hand"]))
    if way == "isoformat":  # "+00:00", with six fraction digits or none
        return aware.isoformat(), moment
    if way == "milliseconds_z":  # the generator's and the scorer's own form
        return aware.isoformat(timespec="milliseconds").replace("+00:00", "Z"), moment
    digits = draw(st.integers(0, 9))
    fraction = f"{moment.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    m = moment
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    suffix = draw(st.sampled_from(["Z", "+00:00"]))
    # The moment as written: digits past the microsecond are below a millisecond anyway.
    written_moment = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")) if fraction else 0)
    return text + (f".{fraction}" if fraction else "") + suffix, written_moment


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A valid timestamp with one character replaced, inserted or removed."""
    text, _ = draw(written())
    i = draw(st.integers(0, len(text)))
    char = draw(st.one_of(st.characters(), st.sampled_from("0123456789:-.TZtz+ \x00")))
    action = draw(st.sampled_from(["replace", "insert", "delete"]))
    if action == "insert":
        return text[:i] + char + text[i:]
    if action == "delete":
        return text[:i] + text[i + 1 :]
    return text[:i] + char + text[i + 1 :]


_ANY: st.SearchStrategy[Any] = st.one_of(
    written().map(lambda pair: pair[0]),
    damaged(),
    st.text(),
    st.text(alphabet="0123456789-:.TZ+"),
    st.none(),
    st.integers(),
    st.sampled_from(REFUSED),
)


@settings(max_examples=500, deadline=None)
@given(written())
def test_valid_timestamps_read_as_datetime_arithmetic(pair: tuple[str, datetime]) -> None:
    """A valid timestamp's milliseconds are the moment's, its fraction truncated."""
    text, moment = pair
    assert ts.is_valid(text)
    assert ts.parse_ms(text) == (moment - EPOCH) // MS


@settings(max_examples=500, deadline=None)
@given(st.lists(_ANY, max_size=30))
def test_batch_equals_parse_ms_element_wise(values: list[Any]) -> None:
    """`batch_ms` makes `parse_ms`'s decision and value at every position, whatever the mix."""
    t_ms, bad = ts.batch_ms(values)
    expected_bad = []
    for i, value in enumerate(values):
        try:
            expected = ts.parse_ms(value)
        except ValueError:
            expected_bad.append(i)
            expected = 0
        assert ts.is_valid(value) == (i not in expected_bad)
        assert int(t_ms[i]) == expected
    assert bad == expected_bad


@settings(max_examples=300, deadline=None)
@given(st.lists(written().map(lambda pair: pair[0]), min_size=1, max_size=30))
def test_batch_of_valid_timestamps_takes_numpy_values(values: list[str]) -> None:
    """All valid (the one-conversion path): NumPy's milliseconds equal `parse_ms`'s."""
    t_ms, bad = ts.batch_ms(values)
    assert bad == []
    assert t_ms.tolist() == [ts.parse_ms(v) for v in values]


@given(st.integers(ts.MIN_MS, ts.MAX_MS))
def test_format_then_parse_is_the_identity(t_ms: int) -> None:
    """Every in-range millisecond has a contract timestamp that reads back as itself."""
    assert ts.parse_ms(ts.format_ms(t_ms)) == t_ms
