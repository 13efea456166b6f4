"""What every benchmark prints about the machine it ran on, and how it pins itself to one core."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def pin_to_one_core() -> str:
    """Pin this process to CPU 0 (targets are per core); says what was done for the report header."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
        return "pinned to CPU 0 (os.sched_setaffinity)"
    return "not pinned (os.sched_setaffinity unavailable)"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
