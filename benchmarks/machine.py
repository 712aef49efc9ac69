"""The machine a benchmark ran on, in one line, printed with every set of figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """CPU count available to this process, CPU model, Python version and architecture."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"nproc {nproc}, {cpu}, Python {platform.python_version()} ({platform.machine()})"
