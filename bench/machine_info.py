"""The machine a benchmark ran on, as one line for the result tables."""

from __future__ import annotations

import platform
import resource
import time

import psutil


def machine() -> str:
    """CPU model, logical cores, RAM."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {psutil.cpu_count(logical=True)} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM")


def today() -> str:
    return time.strftime("%Y-%m-%d")


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
