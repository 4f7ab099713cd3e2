"""Can this process load BPF tracing programs? Said before anything is tried, with the fix."""
from __future__ import annotations

import os

from ..errors import DroptraceError

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def check_privileges() -> None:
    """Fail early, with the fix, when the caller cannot load BPF tracing programs."""
    try:
        with open("/proc/self/status") as f:
            caps = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        caps = ~0 if os.geteuid() == 0 else 0
    if caps & (1 << CAP_SYS_ADMIN) or (caps & (1 << CAP_BPF) and caps & (1 << CAP_PERFMON)):
        return
    raise DroptraceError("droptrace needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs: "
                         "run it with sudo")
