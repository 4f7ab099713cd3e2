"""Compile droptrace's BPF C into its objects.

Each feature keeps its BPF source in its own folder (src/droptrace/features/X/X.bpf.c),
over the shared headers here. Every X.bpf.c becomes X.bpf.o and X_noloop.bpf.o (the same
without bpf_loop, for kernels before 5.17: the tcpdump expression then runs in user space);
an X_nobtf.bpf.c becomes X_nobtf.bpf.o (kernels without BTF). Used by setup.py at package
build time, so the compiler command lives in one place. Usage: python bpf/build.py OUTDIR
Set CLANG to choose the compiler; otherwise clang-19, then clang, is used.
"""
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Sequence, Tuple

HERE = Path(__file__).resolve().parent
FEATURES = HERE.parent / "src" / "droptrace" / "features"
ARCH = {"x86_64": "x86", "aarch64": "arm64", "arm64": "arm64", "ppc64le": "powerpc",
        "s390x": "s390", "riscv64": "riscv"}


def objects() -> Iterator[Tuple[Path, str, Sequence[str]]]:
    """(source, object name, extra flags) of every feature's objects."""
    for source in sorted(FEATURES.glob("*/*.bpf.c")):
        stem = source.name[:-len(".bpf.c")]
        yield source, f"{stem}.bpf.o", []
        if not stem.endswith("_nobtf"):
            yield source, f"{stem}_noloop.bpf.o", ["-DDT_NO_BPF_LOOP"]


def find_clang() -> str:
    for name in (os.environ.get("CLANG"), "clang-19", "clang"):
        if name and shutil.which(name):
            return name
    sys.exit("droptrace build: clang not found (apt-get install clang-19, or set CLANG)")


def compile_object(source: Path, out: Path, flags: Sequence[str] = ()) -> None:
    """One object from one feature's source (also for benchmarks' variants)."""
    arch = ARCH.get(platform.machine(), "x86")
    cmd = [find_clang(), "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", *flags,
           "-Wall", "-Werror", "-I", str(HERE), "-I", str(source.parent), "-c", str(source),
           "-o", str(out)]
    subprocess.run(cmd, check=True)


def build(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for source, obj, flags in objects():
        compile_object(source, out_dir / obj, flags)


if __name__ == "__main__":
    build(Path(sys.argv[1]))
