"""Every bad option or setting of `make demo`: one line naming it and what it must be, exit status 2, first."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devhost import demo

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROG = "python -m devhost.demo: error: "
RATE = "must be 0 (as fast as possible) or at least 1 transaction per second"

# (arguments, app settings, what the one line says)
BAD: list[tuple[list[str], dict[str, str], str]] = [
    (["--rate", "-5"], {}, f"argument --rate: {RATE}, got '-5'"),
    (["--rate", "0.5"], {}, f"argument --rate: {RATE}, got '0.5'"),
    (["--rate", "fast"], {}, f"argument --rate: {RATE}, got 'fast'"),
    (["--rate", "inf"], {}, f"argument --rate: {RATE}, got 'inf'"),
    (["--duration", "-1"], {}, "argument --duration: must be a number > 0, got '-1'"),
    (["--duration", "0"], {}, "argument --duration: must be a number > 0, got '0'"),
    (["--duration", "nan"], {}, "argument --duration: must be a number > 0, got 'nan'"),
    (["--events", "0"], {}, "argument --events: must be a whole number >= 1, got '0'"),
    (["--events", "1.5"], {}, "argument --events: must be a whole number >= 1, got '1.5'"),
    (
        ["--records-per-event", "100000"],
        {},
        "argument --records-per-event: must be a whole number from 1 to 2,000, got '100000'",
    ),
    (["--partitions", "0"], {}, "argument --partitions: must be a whole number from 1 to 1,024, got '0'"),
    (["--batch-size", "5000"], {}, "argument --batch-size: must be a whole number from 1 to 4,000, got '5000'"),
    (["--prefetch", "0"], {}, "argument --prefetch: must be a whole number >= 1, got '0'"),
    (
        ["--label-history-days", "-1"],
        {},
        "argument --label-history-days: must be a whole number from 0 to 92, got '-1'",
    ),
    (
        ["--label-history-days", "93"],
        {},
        "argument --label-history-days: must be a whole number from 0 to 92, got '93'",
    ),
    (
        ["--label-history-days", "a month"],
        {},
        "argument --label-history-days: must be a whole number from 0 to 92, got 'a month'",
    ),
    (["--port", "99999"], {}, "argument --port: must be a whole number from 0 to 65,535, got '99999'"),
    (["--functions-port", "-1"], {}, "argument --functions-port: must be a whole number from 0 to 65,535, got '-1'"),
    (["--port", "9000", "--functions-port", "9000"], {}, "--functions-port must differ from --port (both are 9000)"),
    (["--store", "mongo"], {}, "argument --store: invalid choice: 'mongo'"),
    (["--exit", "--keep-serving"], {}, "argument --keep-serving: not allowed with argument --exit"),
    (["--bogus"], {}, "unrecognized arguments: --bogus"),
    (["--store", "cosmos"], {}, "--store cosmos needs CosmosDBConnection set to AccountEndpoint=...;AccountKey=...;"),
    ([], {"CosmosDBConnection": "not a connection string"}, "CosmosDBConnection must be a connection string"),
    ([], {"BEHAVIOUR_STATE": "bogus"}, "BEHAVIOUR_STATE must be one of cosmos, memory, off, got 'bogus'"),
    ([], {"BEHAVIOUR_STATE": "cosmos"}, "BEHAVIOUR_STATE=cosmos needs the Cosmos DB store (CosmosDBConnection)"),
    ([], {"FRAUD_THRESHOLD": "abc"}, "FRAUD_THRESHOLD must be a number, got 'abc'"),
    ([], {"FRAUD_THRESHOLD": "1.5"}, "FRAUD_THRESHOLD must be within [0, 1], got 1.5"),
    ([], {"MAX_RECORDS_PER_ENVELOPE": "-1"}, "MAX_RECORDS_PER_ENVELOPE must be within [1, 100000], got -1"),
    ([], {"GENERATE_MAX_COUNT": "lots"}, "GENERATE_MAX_COUNT must be an integer, got 'lots'"),
    ([], {"GENERATOR_SENDER": "pigeon"}, "GENERATOR_SENDER must be one of sdk, binding, got 'pigeon'"),
    ([], {"POWERBI_TIMEOUT_SECONDS": "0"}, "POWERBI_TIMEOUT_SECONDS must be within [0.1, 120], got 0"),
    (
        [],
        {"MODEL_DIR": "/nonexistent/model"},
        "MODEL_DIR must be a folder holding fraud_model.joblib and fraud_model.metadata.json; "
        "/nonexistent/model has no fraud_model.joblib",
    ),
    (
        [],
        {"POWERBI_PUSH_URL": "http://example.org/datasets/x/rows?key=secret-value"},
        "POWERBI_PUSH_URL must be an https:// URL (plain http only to a loopback host)",
    ),
]


@pytest.mark.parametrize(("argv", "env", "message"), BAD, ids=[" ".join(a) or next(iter(e)) for a, e, _ in BAD])
def test_bad_option_or_setting(
    argv: list[str],
    env: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One line on stderr naming the option or setting and what it must be; exit status 2; nothing on stdout."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        demo.main([*argv, "--data-dir", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(PROG), err
    assert message in err, err
    assert "secret-value" not in err  # a push URL's key is never echoed
    if env:
        assert not (tmp_path / "data").exists(), "a bad setting leaves nothing behind"


def test_a_cosmos_endpoint_that_does_not_answer_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CosmosDBConnection naming a port nobody listens on: one line at once, not minutes of SDK retries."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CosmosDBConnection", f"AccountEndpoint=https://127.0.0.1:{port}/;AccountKey=a2V5;")
    with pytest.raises(SystemExit) as exited:
        demo.main(["--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert f"CosmosDBConnection names 127.0.0.1:{port}, which does not answer (Connection refused)" in err
    assert "a2V5" not in err


def test_data_dir_that_cannot_take_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--data-dir naming a file (or any folder that cannot be written) is refused with the reason."""
    taken = tmp_path / "a-file"
    taken.write_text("")
    with pytest.raises(SystemExit) as exited:
        demo.main(["--data-dir", str(taken)])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err == f"{PROG}--data-dir must be a folder this user can write to: {taken} (File exists) (see --help)\n"


def test_a_run_that_would_not_fit_on_the_disk_says_so_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """100,000,000 transactions need about 150 GB; with 10 GB free the demo refuses before starting."""
    monkeypatch.setattr("devhost.cli.free_bytes", lambda folder: 10 * 10**9)
    with pytest.raises(SystemExit) as exited:
        demo.main(["--events", "100000000", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert f"--events 100,000,000 would store about 150.0 GB in {tmp_path}, but 10.0 GB is free there" in err
    assert err.count("\n") == 1
    # Capped by --rate x --duration, the same run fits: 3,000/s for 60 s is 180,000 transactions.
    args = demo.parse_args(["--events", "100000000", "--duration", "60", "--data-dir", str(tmp_path)])
    assert demo.preflight(args, {}).events == 100_000_000


def test_valid_options_become_the_run(tmp_path: Path) -> None:
    """Good values pass through unchanged; a valid BEHAVIOUR_STATE is kept instead of overwritten."""
    args = demo.parse_args(
        ["--events", "500", "--rate", "0", "--partitions", "8", "--duration", "2.5", "--data-dir", str(tmp_path)]
    )
    options = demo.preflight(args, {"BEHAVIOUR_STATE": "off"})
    assert (options.events, options.rate, options.partitions, options.duration_s) == (500, None, 8, 2.5)
    assert options.behaviour_state == "off"
    assert demo.preflight(args, {}).behaviour_state is None


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--rate", "-5"], {}, f"argument --rate: {RATE}, got '-5'"),
        (["--port", "99999"], {}, "argument --port: must be a whole number from 0 to 65,535"),
        ([], {"FRAUD_THRESHOLD": "abc"}, "FRAUD_THRESHOLD must be a number, got 'abc'"),
    ],
)
def test_in_a_real_process_no_traceback_and_no_wait(
    argv: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    """`python -m devhost.demo` with a bad value exits 2 at once with the one line: no traceback, no hang."""
    result = subprocess.run(
        [sys.executable, "-m", "devhost.demo", *argv, "--data-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_shows_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    """--help lists each option with its default."""
    with pytest.raises(SystemExit) as exited:
        demo.main(["--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    for shown in ("(default: 60000)", "(default: 3000.0)", "(default: 8050)", "(default: 7071)", "(default: auto)"):
        assert shown in " ".join(out.split()), shown
