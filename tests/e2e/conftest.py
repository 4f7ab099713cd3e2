"""End-to-end fixtures: a real lab of namespaces, and droptrace run as a user runs it."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from droptrace.lab import Lab

DROPTRACE = str(Path(sys.executable).parent / "droptrace")
# Under software emulation (the other kernels' VMs) every process start takes many times longer:
# scripts/test-other-kernel sets this, and the waits below scale by it. Passing tests are not
# slowed; a failing one waits longer before it says so.
SLOWDOWN = float(os.environ.get("DROPTRACE_TEST_SLOWDOWN", "1"))
# A command prefix that runs droptrace without privileges: root's uid with every capability gone
# (and root's implicit ones switched off), which is what the kernel checks. Unlike another uid, it
# still reads the checkout wherever it is (a clone in /root is closed to `nobody`).
UNPRIVILEGED = ["setpriv", "--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked",
                "--bounding-set=-all", "--inh-caps=-all"]


def _kernel_enums():
    from droptrace.kernel import btf

    try:
        kernel = btf.kernel("/sys/kernel/btf/vmlinux")
        return {n: e for n in ("skb_drop_reason", "bpf_func_id") if (e := kernel.enum(n)) is not None}
    except (OSError, btf.BTFError):
        return {}


# What the running kernel has, read from its BTF as droptrace reads it: the suite runs on
# kernels with and without drop reasons (5.17) and bpf_loop (5.17).
_ENUMS = _kernel_enums()
HAS_REASONS = "skb_drop_reason" in _ENUMS
HAS_BPF_LOOP = "BPF_FUNC_loop" in _ENUMS.get("bpf_func_id", {})


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _need_root():
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("end-to-end tests need root; CI runs as root")
        pytest.skip("end-to-end tests need root (they load BPF and build namespaces)")


@pytest.fixture(scope="session")
def lab():
    Lab.remove_stale()  # left by a killed earlier run
    with Lab(tag=f"t{os.getpid()}") as lab:
        yield lab


class Droptrace:
    """droptrace as a subprocess: wait for `Tracing`, read JSON events, stop it."""

    def __init__(self, *args: str, json_events: bool = True, env: Optional[dict] = None) -> None:
        self.args = [DROPTRACE, *args]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.stderr: List[str] = []
        self.stdout: List[str] = []
        self.seen: List[Dict] = []
        self.json = json_events
        self._ready = threading.Event()
        self._out_thread = threading.Thread(target=self._read_out, daemon=True)
        self._out_thread.start()
        self._err_thread = threading.Thread(target=self._read_err, daemon=True)
        self._err_thread.start()

    def _read_out(self) -> None:
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            if "Tracing" in line:
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 30) -> None:
        assert self._ready.wait(timeout * SLOWDOWN), f"droptrace did not start: {''.join(self.stderr)}"
        assert self.proc.poll() is None or any("Tracing" in ln for ln in self.stderr), (
            f"droptrace exited early ({self.proc.returncode}): {''.join(self.stderr)}")

    def find(self, match: Callable[[Dict], bool], timeout: float = 15) -> Optional[Dict]:
        """The first event that matches, reading until then (or None at timeout/EOF)."""
        deadline = time.monotonic() + timeout * SLOWDOWN
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            if not self.json:
                if match({"line": line}):
                    return {"line": line}
                continue
            event = json.loads(line)
            self.seen.append(event)
            if match(event):
                return event

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 30) -> int:
        """Wait for exit, and for both output readers to reach end of file."""
        rc = self.proc.wait(timeout * SLOWDOWN)
        self._out_thread.join(10)
        self._err_thread.join(10)
        return rc

    def __enter__(self) -> "Droptrace":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([DROPTRACE, *args], capture_output=True, text=True, timeout=timeout * SLOWDOWN,
                          **kw)
