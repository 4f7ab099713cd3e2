"""scripts/fetch-kernel as CI and a new machine run it: from nothing, one line when it cannot, and
apt left as it was (it never installs through dpkg)."""
import os
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent.parent / "scripts"
pytestmark = [pytest.mark.host_only,
              pytest.mark.skipif(os.geteuid() != 0, reason="fetch-kernel needs root (apt)")]


def fetch(*args, **env):
    return subprocess.run([str(SCRIPTS / "fetch-kernel"), *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_an_unpacked_kernel_is_reused_without_asking_apt(tmp_path):
    boot = tmp_path / "6.1" / "root" / "boot"
    boot.mkdir(parents=True)
    for name in ("vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64"):
        (boot / name).write_bytes(b"")
    r = fetch("6.1", DROPTRACE_KERNEL_CACHE=str(tmp_path), DROPTRACE_DEBIAN_MIRROR="file:///nonexistent")
    assert r.returncode == 0 and r.stdout == f"{boot}/vmlinuz-6.1.0-10-amd64\n" and not r.stderr


@pytest.mark.parametrize("version", ["6.1", "6.12", "5.10"])
def test_a_kernel_that_cannot_be_had_is_one_line_and_apt_stays_consistent(tmp_path, version):
    r = fetch(version, DROPTRACE_KERNEL_CACHE=str(tmp_path), DROPTRACE_DEBIAN_MIRROR="file:///nonexistent")
    assert r.returncode == 1 and r.stdout == ""
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"droptrace: fetch-kernel {version}: apt-get update of ") and "failed: " in last
    assert "nonexistent" in last and "Traceback" not in r.stderr
    assert not list(tmp_path.glob(f"{version}/root")), "nothing half-unpacked is left to be reused"
    check = subprocess.run(["apt-get", "check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_usage():
    r = fetch("4.9")
    assert r.returncode == 2 and r.stderr == "usage: scripts/fetch-kernel 5.10|6.1|6.12\n"
