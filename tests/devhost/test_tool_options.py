"""`make soak`, `make bench-pipeline`: bad options and settings are one line, exit 2; the soak reports progress."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from benchmarks import bench_pipeline
from devhost import soak

pytestmark = pytest.mark.unit

Main = Callable[[Sequence[str] | None], int]

BAD: list[tuple[Main, str, list[str], dict[str, str], str]] = [
    (soak.main, "devhost.soak", ["--events", "0"], {}, "argument --events: must be a whole number >= 1, got '0'"),
    (soak.main, "devhost.soak", ["--events", "many"], {}, "argument --events: must be a whole number >= 1, got 'many'"),
    (soak.main, "devhost.soak", ["--rate", "5"], {}, "unrecognized arguments: --rate 5"),
    (soak.main, "devhost.soak", [], {"FRAUD_THRESHOLD": "abc"}, "FRAUD_THRESHOLD must be a number, got 'abc'"),
    (
        bench_pipeline.main,
        "benchmarks.bench_pipeline",
        ["--events", "-1"],
        {},
        "argument --events: must be a whole number >= 1, got '-1'",
    ),
    (
        bench_pipeline.main,
        "benchmarks.bench_pipeline",
        ["--partitions", "0"],
        {},
        "argument --partitions: must be a whole number from 1 to 1,024, got '0'",
    ),
    (
        bench_pipeline.main,
        "benchmarks.bench_pipeline",
        ["--records-per-event", "1,0"],
        {},
        "argument --records-per-event: must be whole numbers from 1 to 2,000 separated by commas, got '1,0'",
    ),
    (
        bench_pipeline.main,
        "benchmarks.bench_pipeline",
        [],
        {"MAX_EVENT_BYTES": "12"},
        "MAX_EVENT_BYTES must be within [1024, 1048576], got 12",
    ),
]


@pytest.mark.parametrize(("main", "prog", "argv", "env", "message"), BAD, ids=[f"{b[1]} {b[2]}" for b in BAD])
def test_bad_option_or_setting(
    main: Main,
    prog: str,
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One line naming the option or setting and what it must be, exit status 2, before any run starts."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert out == ""
    assert err == f"python -m {prog}: error: {message} (see --help)\n"


@pytest.mark.parametrize(
    ("main", "argv", "needed"),
    [
        (soak.main, ["--events", "100000000"], "--events 100,000,000 would store about 150.0 GB"),
        (bench_pipeline.main, ["--events", "10000000"], "--events 10,000,000 x 3 runs would store about 45.0 GB"),
    ],
)
def test_a_run_that_would_not_fit_in_the_temporary_folder_is_refused(
    main: Main, argv: list[str], needed: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With 1 GB free where the temporary store would go, the run is refused before it starts, saying how much."""
    monkeypatch.setattr("devhost.cli.free_bytes", lambda folder: 10**9)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert f"{needed} in {Path(tempfile.gettempdir())}, but 1.0 GB is free there" in err
    assert err.count("\n") == 1


def test_soak_progress_says_each_tenth_once() -> None:
    """The soak prints one line per tenth of the run stored, however the updates are sized."""
    out = io.StringIO()
    ticks = iter(float(t) for t in range(100))
    progress = soak.Progress(1_000_000, out=out, clock=lambda: next(ticks))
    for step in (50_000, 50_000, 250_000, 1, 649_999):
        progress.update(step)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "soak: 100,000 of 1,000,000 transactions stored (10%, 1 s)"
    assert lines[2] == "soak: 350,000 of 1,000,000 transactions stored (30%, 3 s)"
    assert lines[-1] == "soak: 1,000,000 of 1,000,000 transactions stored (100%, 10 s)"


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """--help of both tools shows each option's default."""
    for main, default in ((soak.main, "(default: 1000000)"), (bench_pipeline.main, "(default: 200000)")):
        with pytest.raises(SystemExit):
            main(["--help"])
        assert default in capsys.readouterr().out
