"""shared.publishing.push: the push client against the local Power BI fake, and the fake's own contract."""

from __future__ import annotations

import json
import logging
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from shared.publishing.push import PowerBIPushClient, PowerBIUnavailableError
from shared.publishing.rows import ROW_SCHEMA, to_row
from tests.fakes.powerbi_server import FakeClock, FakePowerBI, Fault
from tests.shared.publishing.test_rows import _doc

pytestmark = pytest.mark.integration


def _rows(n: int) -> list[dict[str, Any]]:
    return [to_row(_doc(i)) for i in range(n)]


@pytest.fixture
def fake() -> Iterator[FakePowerBI]:
    with FakePowerBI(schema=ROW_SCHEMA) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _client(url: str, clock: FakeClock, **options: Any) -> PowerBIPushClient:
    return PowerBIPushClient(url, 2.0, sleep=clock.sleep, clock=clock, rng=random.Random(7), **options)


def _raw_post(url: str, body: bytes) -> tuple[int, str | None]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), None
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get("Retry-After")


# -- chunking and body format ----------------------------------------------------------------------


def test_25000_rows_go_in_three_posts(fake: FakePowerBI, clock: FakeClock) -> None:
    """25,000 rows make 10,000 + 10,000 + 5,000-row POSTs and every row arrives exactly once."""
    rows = _rows(25_000)
    result = _client(fake.url, clock).push(rows)
    assert (result.rows_sent, result.posts, result.retries, result.rows_dropped) == (25_000, 3, 0, 0)
    assert [p.rows for p in fake.posts] == [10_000, 10_000, 5_000]
    received = [r["id"] for r in fake.rows]
    assert received == [r["id"] for r in rows]
    assert len(set(received)) == 25_000


def test_bodies_stay_within_the_byte_limit(fake: FakePowerBI, clock: FakeClock) -> None:
    """A byte budget splits chunks earlier than the row limit, and nothing is lost."""
    rows = _rows(50)
    one_row = len(json.dumps(rows[0], separators=(",", ":")))
    result = _client(fake.url, clock, max_body_bytes=10 * one_row).push(rows)
    assert result.rows_sent == 50
    assert all(p.rows < 10 for p in fake.posts)
    assert [r["id"] for r in fake.rows] == [r["id"] for r in rows]


def test_rest_rows_url_gets_a_rows_object(fake: FakePowerBI, clock: FakeClock) -> None:
    """A REST PostRows URL (…/tables/{t}/rows) is sent {"rows": [...]} and accepted."""
    result = _client(fake.rest_url, clock).push(_rows(3))
    assert result.rows_sent == 3
    assert fake.posts[0].path.endswith("/tables/Transactions/rows")


def test_wrong_body_shape_is_rejected(fake: FakePowerBI, clock: FakeClock) -> None:
    """Forcing the {"rows": ...} shape onto a streaming push URL gets a 400 from the contract."""
    result = _client(fake.url, clock, wrap_rows=True).push(_rows(3))
    assert result.dropped == {"http_400": 3}
    assert fake.rows == []


def test_unsendable_rows_are_set_aside(fake: FakePowerBI, clock: FakeClock) -> None:
    """NaN, over-long strings and oversized rows are dropped with a reason; the rest still go."""
    good = _rows(3)
    nan = dict(good[0], id="nan", fraud_probability=float("nan"))
    long_text = dict(good[0], id="long", model_version="v" * 4_001)
    result = _client(fake.url, clock).push([good[0], nan, good[1], long_text, good[2]])
    assert result.dropped == {"unserialisable": 1, "string_too_long": 1}
    assert [r["id"] for r in fake.rows] == [r["id"] for r in good]

    big = dict(good[0], id="big", model_version="v" * 900)
    result = _client(fake.url, clock, max_body_bytes=800).push([big, good[1]])
    assert result.dropped == {"row_too_large": 1}
    assert result.rows_sent == 1


# -- retries ---------------------------------------------------------------------------------------


def test_429_retry_after_is_honoured(fake: FakePowerBI, clock: FakeClock) -> None:
    """A 429 with Retry-After: 7 makes the client sleep exactly 7 s before the next attempt."""
    fake.script(Fault.http(429, retry_after="7"))
    result = _client(fake.url, clock).push(_rows(5))
    assert clock.sleeps == [7.0]
    assert (result.rows_sent, result.posts, result.retries) == (5, 2, 1)
    assert len(fake.rows) == 5


def test_429_without_retry_after_backs_off(fake: FakePowerBI, clock: FakeClock) -> None:
    """Without Retry-After a 429 waits a jittered backoff no longer than the first ceiling."""
    fake.script(Fault.http(429))
    result = _client(fake.url, clock, base_backoff_s=0.5).push(_rows(2))
    assert result.rows_sent == 2
    assert len(clock.sleeps) == 1
    assert 0.0 <= clock.sleeps[0] <= 0.5


def test_retry_after_within_the_minute_is_waited_in_full(fake: FakePowerBI, clock: FakeClock) -> None:
    """The per-minute limit asks for up to 60 s; the client waits exactly that, not its backoff cap."""
    fake.script(Fault.http(429, retry_after="45"))
    result = _client(fake.url, clock, max_backoff_s=30.0).push(_rows(1))
    assert clock.sleeps == [45.0]
    assert result.rows_sent == 1


def test_hourly_quota_gives_the_batch_back_at_once(clock: FakeClock) -> None:
    """Over 1,000,000 rows an hour Power BI asks for a wait of up to an hour: the client does not sleep
    through its attempts but raises at once, naming the wait, so the trigger's retry policy re-delivers."""
    with FakePowerBI(schema=ROW_SCHEMA, clock=clock, max_rows_per_hour=6) as server:
        client = _client(server.url, clock)
        assert client.push(_rows(5)).rows_sent == 5
        clock.now += 600
        with pytest.raises(PowerBIUnavailableError, match=r"Retry-After 3000 s \(an hourly quota") as caught:
            client.push(_rows(4))
        assert [p.status for p in server.posts] == [200, 429]
    assert clock.sleeps == []
    assert (caught.value.rows_sent, caught.value.rows_unsent) == (0, 4)
    assert "key=" not in str(caught.value)


def test_5xx_is_retried_with_backoff_then_succeeds(fake: FakePowerBI, clock: FakeClock) -> None:
    """500, 503, 502 are retried with full-jitter exponential backoff and the rows land once."""
    fake.script(Fault.http(500), Fault.http(503), Fault.http(502))
    result = _client(fake.url, clock, base_backoff_s=1.0).push(_rows(4))
    assert (result.rows_sent, result.posts, result.retries) == (4, 4, 3)
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps, start=1):
        assert 0.0 <= slept <= 2 ** (attempt - 1)
    assert [r["id"] for r in fake.rows] == [f"tx-{i:06d}" for i in range(4)]


def test_timeout_is_retried(fake: FakePowerBI, clock: FakeClock) -> None:
    """A request that hangs past the client timeout is retried and then succeeds."""
    fake.script(Fault.hang(10.0))
    client = PowerBIPushClient(fake.url, 0.2, sleep=clock.sleep, clock=clock, rng=random.Random(1))
    result = client.push(_rows(2))
    assert (result.rows_sent, result.retries) == (2, 1)
    assert len(fake.rows) == 2


def test_connection_reset_is_retried(fake: FakePowerBI, clock: FakeClock) -> None:
    """A TCP reset mid-request is retried and then succeeds."""
    fake.script(Fault.reset())
    result = _client(fake.url, clock).push(_rows(2))
    assert (result.rows_sent, result.retries) == (2, 1)
    assert len(fake.rows) == 2


def test_exhausted_retries_raise_unavailable(fake: FakePowerBI, clock: FakeClock) -> None:
    """Transient failures beyond max_attempts raise PowerBIUnavailableError with the counts."""
    fake.script(*[Fault.http(503)] * 3)
    with pytest.raises(PowerBIUnavailableError) as caught:
        _client(fake.url, clock, max_attempts=3).push(_rows(4))
    assert (caught.value.rows_sent, caught.value.rows_unsent) == (0, 4)
    assert len(clock.sleeps) == 2
    assert fake.key not in str(caught.value)
    assert fake.rows == []


def test_unavailable_counts_rows_already_sent(fake: FakePowerBI, clock: FakeClock) -> None:
    """When a later chunk exhausts its retries, the error reports what already went through."""
    fake.script(Fault.passthrough(), Fault.http(503), Fault.http(503))
    with pytest.raises(PowerBIUnavailableError) as caught:
        _client(fake.url, clock, max_attempts=2, max_rows_per_post=10).push(_rows(25))
    assert (caught.value.rows_sent, caught.value.rows_unsent) == (10, 15)
    assert len(fake.rows) == 10


# -- rejections ------------------------------------------------------------------------------------


def test_400_is_not_retried(fake: FakePowerBI, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """A 400 drops its chunk after one POST, logs one error with the count and raises nothing."""
    fake.script(Fault.http(400))
    with caplog.at_level(logging.ERROR, logger="shared.publishing.push"):
        result = _client(fake.url, clock).push(_rows(3))
    assert (result.rows_sent, result.posts, result.retries) == (0, 1, 0)
    assert result.dropped == {"http_400": 3}
    assert clock.sleeps == []
    assert [r.getMessage() for r in caplog.records] == ["power bi rejected 3 rows: HTTP 400"]


def test_413_drops_only_its_chunk(fake: FakePowerBI, clock: FakeClock) -> None:
    """A 413 on one chunk drops that chunk; the following chunks are still delivered."""
    fake.script(Fault.http(413))
    result = _client(fake.url, clock, max_rows_per_post=10).push(_rows(25))
    assert result.dropped == {"http_413": 10}
    assert result.rows_sent == 15
    assert len(fake.rows) == 15


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_or_missing_dataset_stops_the_batch(fake: FakePowerBI, clock: FakeClock, status: int) -> None:
    """401/403/404 drop the whole remaining batch without further requests."""
    fake.script(Fault.http(status))
    result = _client(fake.url, clock, max_rows_per_post=10).push(_rows(25))
    assert result.dropped == {f"http_{status}": 25}
    assert len(fake.posts) == 1


def test_a_wrong_key_is_a_403_from_the_fake(fake: FakePowerBI, clock: FakeClock) -> None:
    """The fake checks the key like Power BI would, and the client drops rather than retries."""
    url = fake.url.replace(f"key={fake.key}", "key=wrong")
    result = _client(url, clock).push(_rows(2))
    assert result.dropped == {"http_403": 2}
    assert clock.sleeps == []


def test_logs_never_show_the_url_or_key(fake: FakePowerBI, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """Retries, rejections and give-ups log the host at most: never the path or the key."""
    fake.script(Fault.http(503), Fault.http(400), *[Fault.http(500)] * 2)
    client = _client(fake.url, clock, max_attempts=2, max_rows_per_post=1)
    with caplog.at_level(logging.DEBUG), pytest.raises(PowerBIUnavailableError) as caught:
        client.push(_rows(3))
    text = caplog.text + str(caught.value)
    assert "127.0.0.1" in text
    assert fake.key not in text
    assert "/datasets/" not in text


def test_plain_http_to_a_remote_host_is_refused() -> None:
    """The key travels in the URL, so only https (or loopback http) is accepted, and the error hides it."""
    with pytest.raises(ValueError, match="https") as caught:
        PowerBIPushClient("http://api.powerbi.com/beta/t/datasets/d/rows?key=s3cret", 1.0)
    assert "s3cret" not in str(caught.value)


# -- pacing ----------------------------------------------------------------------------------------


def test_pacing_keeps_to_120_posts_a_minute(clock: FakeClock) -> None:
    """The 121st POST within a minute waits for the window (on the injected clock) and is never throttled."""
    with FakePowerBI(schema=ROW_SCHEMA, clock=clock) as server:
        result = _client(server.url, clock, max_rows_per_post=1).push(_rows(121))
        statuses = {p.status for p in server.posts}
    assert (result.rows_sent, result.posts, result.retries) == (121, 121, 0)
    assert statuses == {200}
    assert clock.sleeps == [pytest.approx(60.0)]


def test_fake_throttles_beyond_its_limit() -> None:
    """The fake answers 429 with Retry-After in whole seconds once a minute's POSTs are used up."""
    clock = FakeClock()
    with FakePowerBI(max_posts_per_minute=2, clock=clock) as server:
        body = json.dumps([{"id": "a"}]).encode()
        assert _raw_post(server.url, body) == (200, None)
        clock.now += 15
        assert _raw_post(server.url, body) == (200, None)
        assert _raw_post(server.url, body) == (429, "45")
        clock.now += 45
        assert _raw_post(server.url, body) == (200, None)


def test_fake_answers_the_hourly_row_quota_with_a_long_retry_after() -> None:
    """Past its rows-per-hour quota the fake answers 429 with the seconds until the oldest rows age out."""
    clock = FakeClock()
    with FakePowerBI(max_rows_per_hour=3, clock=clock) as server:
        assert _raw_post(server.url, json.dumps([{"id": "a"}] * 3).encode()) == (200, None)
        clock.now += 100
        assert _raw_post(server.url, json.dumps([{"id": "b"}]).encode()) == (429, "3500")
        clock.now += 3500
        assert _raw_post(server.url, json.dumps([{"id": "b"}]).encode()) == (200, None)


@pytest.mark.parametrize(("retention", "last"), [("None", (429, "3480")), ("basicFIFO", (200, None))])
def test_fake_slows_a_table_without_fifo_past_250000_rows(retention: Literal["basicFIFO", "None"], last: Any) -> None:
    """With retention None, once the table holds 250,000 rows only 120 POSTs an hour go through; a
    basicFIFO table keeps 200,000 rows and never gets there."""
    clock = FakeClock()
    with FakePowerBI(retention=retention, clock=clock) as server:
        big = json.dumps([{"id": "a"}] * 10_000).encode()
        for _ in range(25):
            assert _raw_post(server.url, big)[0] == 200
            clock.now += 1
        for _ in range(95):
            assert _raw_post(server.url, b'[{"id": "b"}]')[0] == 200
            clock.now += 1
        assert _raw_post(server.url, b'[{"id": "c"}]') == last
        assert server.table_rows == (250_095 if retention == "None" else 200_000)


def test_fake_enforces_the_push_contract() -> None:
    """The fake rejects non-arrays, over 10,000 rows, nested values and unknown columns with 400."""
    with FakePowerBI(schema={"id": "String"}) as server:
        assert _raw_post(server.url, b'{"id": "a"}')[0] == 400
        assert _raw_post(server.url, b"not json")[0] == 400
        assert _raw_post(server.url, json.dumps([{"id": "a"}] * 10_001).encode())[0] == 400
        assert _raw_post(server.url, json.dumps([{"id": {"nested": 1}}]).encode())[0] == 400
        assert _raw_post(server.url, json.dumps([{"other": "a"}]).encode())[0] == 400
        assert _raw_post(server.rest_url, json.dumps([{"id": "a"}]).encode())[0] == 400
        assert _raw_post(server.url, json.dumps([{"id": "a"}] * 10_000).encode())[0] == 200
        assert len(server.rows) == 10_000
