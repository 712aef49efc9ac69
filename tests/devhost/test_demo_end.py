"""However `make demo` ends (SIGTERM, Ctrl-C, SIGKILL, an error, mid-run or after it), no process it started remains.

The demo runs in its own session, so everything it starts (the SQLite writer process and
multiprocessing's resource tracker) shares that session id whoever adopts it later; after the
demo ends, /proc must hold no live process of that session.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from devhost import demo

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def session_processes(session: int) -> list[int]:
    """Live (not zombie) processes whose session id is `session`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone while we looked
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


class Demo:
    """`python -m devhost.demo` in a session of its own, its stdout read line by line in the background."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        command = [sys.executable, "-m", "devhost.demo", "--data-dir", str(tmp_path), "--port", "0", *args]
        self.process = subprocess.Popen(
            # No label history: these tests are about how a run ends, and it would add ~15 s to each start.
            [*command, "--functions-port", "0", "--no-progress", "--label-history-days", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} in {self.seen}"
            try:
                self.seen.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                continue

    def wait_for_children(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(session_processes(self.process.pid)) < count + 1:
            assert time.monotonic() < deadline, "the demo never started its writer process"
            time.sleep(0.05)

    def end(self, signum: int, timeout: float = 120) -> tuple[int, str]:
        """Send `signum`, wait for the exit; (status, stderr)."""
        self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, err

    def assert_nothing_left(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while (left := session_processes(self.process.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left == [], f"processes the demo started are still running: {left}"


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_mid_run_stops_everything(tmp_path: Path, signum: int, status: int) -> None:
    """SIGTERM (`kill`), Ctrl-C or a closed terminal during the run: exit 128+n, the writer and its helper gone."""
    running = Demo(tmp_path, "--events", "1000000", "--rate", "2000", "--exit")
    running.wait_for("dashboard:")
    running.wait_for_children(2)  # the SQLite writer and multiprocessing's resource tracker
    code, err = running.end(signum)
    assert code == status, err
    assert f"stopped by {signal.Signals(signum).name}" in err
    assert "Traceback" not in err
    running.assert_nothing_left()


def test_sigterm_after_the_run_while_serving(tmp_path: Path) -> None:
    """Once the run is over and the demo keeps serving, SIGTERM ends it with the run's status and nothing left."""
    running = Demo(tmp_path, "--events", "2000", "--rate", "0", "--keep-serving")
    running.wait_for("press Ctrl-C to stop")
    code, err = running.end(signal.SIGTERM)
    # 1 only when the model could not load and every transaction was rejected (the run says so).
    assert code == (1 if "model_unavailable" in err else 0), err
    assert "Traceback" not in err
    running.assert_nothing_left()


def test_sigkill_leaves_no_writer_behind(tmp_path: Path) -> None:
    """Even SIGKILL, which no handler sees: the writer notices its parent is gone and exits, and its helper with it."""
    running = Demo(tmp_path, "--events", "1000000", "--rate", "2000", "--exit")
    running.wait_for("dashboard:")
    running.wait_for_children(2)
    code, _ = running.end(signal.SIGKILL)
    assert code == -signal.SIGKILL
    running.assert_nothing_left()


def test_an_error_mid_run_stops_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error inside the run: exit status 1, said in the log, the writer process and both servers stopped."""
    from devhost.runner import LocalPipeline

    def broken(self: LocalPipeline, progress: object = None) -> None:
        raise RuntimeError("the stream broke")

    monkeypatch.setattr(LocalPipeline, "run", broken)
    code = demo.main(["--data-dir", str(tmp_path), "--port", "0", "--functions-port", "0", "--no-progress"])
    assert code == 1
    assert multiprocessing.active_children() == []
    out = capsys.readouterr().out
    assert "http functions: http://127.0.0.1:" in out
    url = out.split("http functions: ")[1].split("/ ")[0]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/api/score", timeout=5)
