"""Command lines of the local tools: every bad option or setting is one line saying what it must be, exit status 2.

`Parser` is argparse with two changes: `--help` shows each option's default, and an error is one
line (`prog: error: argument --rate: must be ..., got '-5' (see --help)`) instead of the whole usage
text. The value checkers name what a value must be and echo what was given. `UsageError` is for
what is checked after parsing (settings, folders, free disk): `main` functions print it the same way.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from shared.settings import Settings


class UsageError(ValueError):
    """An option or setting that cannot work; the message names it and says what it must be."""


class Parser(argparse.ArgumentParser):
    """argparse that shows defaults in --help and reports an error in one line, exit status 2."""

    def __init__(self, prog: str, description: str) -> None:
        super().__init__(prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)

    def error(self, message: str) -> NoReturn:
        fail(self.prog, message)


def fail(prog: str, message: str) -> NoReturn:
    """Print `prog: error: message (see --help)` on one line and exit with status 2."""
    text = " ".join(message.split())
    print(f"{prog}: error: {text} (see --help)", file=sys.stderr)
    raise SystemExit(2)


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number within [low, high]."""
    what = f"a whole number >= {low:,}" if high is None else f"a whole number from {low:,} to {high:,}"

    def parse(raw: str) -> int:
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {raw!r}")
        return value

    return parse


def number(low: float, high: float | None = None, *, above: bool = False, what: str = "") -> Callable[[str], float]:
    """An argparse type: a finite number >= low (> low with `above`) and <= high; `what` replaces the wording."""
    bound = f"> {low:g}" if above else f">= {low:g}"
    described = what or (f"a number {bound}" if high is None else f"a number {bound} and <= {high:g}")

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {described}, got {raw!r}") from None
        too_low = value <= low if above else value < low
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {described}, got {raw!r}")
        return value

    return parse


def port(raw: str) -> int:
    """An argparse type: a TCP port, 0 meaning any free one."""
    return integer(0, 65535)(raw)


def writable_folder(option: str, folder: Path) -> Path:
    """Create `folder` if needed and prove it takes a file; a UsageError naming `option` if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} must be a folder this user can write to: {folder} ({exc.strerror})") from None
    return folder


def free_bytes(folder: Path) -> int:
    """Free disk space where `folder` is (or would be created)."""
    existing = folder.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def size(n: float) -> str:
    """Bytes for a person: `1.4 GB`."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_disk(needed: int, folder: Path, what: str, fix: str) -> None:
    """A UsageError when `needed` bytes (`what` would write them) do not fit in the free space at `folder`."""
    free = free_bytes(folder)
    if needed > free:
        raise UsageError(f"{what} would store about {size(needed)} in {folder}, but {size(free)} is free there: {fix}")


def app_settings(env: Mapping[str, str]) -> Settings:
    """The app settings the functions will read from `env`, parsed now: a UsageError naming a bad one."""
    from shared.settings import Settings, SettingsError

    try:
        return Settings.from_env(env)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
