"""What a simulated scan needs before any work starts: memory for its maps."""

from __future__ import annotations

import os
from pathlib import Path

from ghosttui.errors import GhostError

SLACK_BYTES = 512 * 2**20  # the interpreter, torch and one batch of patterns


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping, or None where it cannot say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_scan_memory(scan: tuple[int, int], bytes_per_position: int) -> None:
    """A one-line error when the per-position maps of a ``scan`` (layout, smooth fields,
    origins) cannot fit in the memory available now."""
    n_rx, n_ry = scan
    memory = n_rx * n_ry * bytes_per_position + SLACK_BYTES
    available = available_memory()
    if available is not None and memory > available:
        raise GhostError(
            f"--scan {n_rx}x{n_ry} needs about {memory / 2**30:.1f} GiB of memory to lay out "
            f"(available: {available / 2**30:.1f} GiB); simulate a smaller scan"
        )
