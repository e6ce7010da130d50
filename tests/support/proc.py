"""What a process uses, read from /proc (Linux): memory, its peak, open files."""

from __future__ import annotations

import os
from pathlib import Path

KIB_PER_MIB = 1024


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def rss_kib(pid: int) -> int:
    """Resident memory now."""
    return _status(pid)["VmRSS"]


def peak_kib(pid: int) -> int:
    """The resident high-water mark since the process began, or since :func:`reset_peak`."""
    return _status(pid)["VmHWM"]


def reset_peak(pid: int) -> int:
    """Start a new high-water mark (``clear_refs`` 5, Linux ≥ 4.0); returns the resident memory now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return rss_kib(pid)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
