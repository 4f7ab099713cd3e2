"""Compile droptrace's BPF C into its objects.

droptrace.bpf.o is the CO-RE tracer; droptrace_noloop.bpf.o the same without
bpf_loop (kernels before 5.17); droptrace_nobtf.bpf.o is the fallback for kernels
without BTF. Used by setup.py at package build time, so the
compiler command lives in one place. Usage: python bpf/build.py OUTDIR
Set CLANG to choose the compiler; otherwise clang-19, then clang, is used.
"""
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
# (source, object, extra flags): droptrace_noloop.bpf.o is the CO-RE tracer without bpf_loop, for
# kernels before 5.17 (the tcpdump expression then runs in user space).
OBJECTS = (("droptrace.bpf.c", "droptrace.bpf.o", []),
           ("droptrace.bpf.c", "droptrace_noloop.bpf.o", ["-DDT_NO_BPF_LOOP"]),
           ("droptrace_nobtf.bpf.c", "droptrace_nobtf.bpf.o", []),
           ("trail.bpf.c", "trail.bpf.o", []),
           ("trail.bpf.c", "trail_noloop.bpf.o", ["-DDT_NO_BPF_LOOP"]))
ARCH = {"x86_64": "x86", "aarch64": "arm64", "arm64": "arm64", "ppc64le": "powerpc",
        "s390x": "s390", "riscv64": "riscv"}


def find_clang() -> str:
    for name in (os.environ.get("CLANG"), "clang-19", "clang"):
        if name and shutil.which(name):
            return name
    sys.exit("droptrace build: clang not found (apt-get install clang-19, or set CLANG)")


def compile_object(source: str, out: Path, flags: Sequence[str] = ()) -> None:
    """One object from one of this folder's sources (also for benchmarks' variants)."""
    arch = ARCH.get(platform.machine(), "x86")
    cmd = [find_clang(), "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", *flags,
           "-Wall", "-Werror", "-I", str(HERE), "-c", str(HERE / source), "-o", str(out)]
    subprocess.run(cmd, check=True)


def build(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for source, obj, flags in OBJECTS:
        compile_object(source, out_dir / obj, flags)


if __name__ == "__main__":
    build(Path(sys.argv[1]))
