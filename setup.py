"""Compiles the BPF object into the package at build time (see bpf/build.py)."""
import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithBPF(build_py):
    def run(self):
        super().run()
        build = runpy.run_path(str(ROOT / "bpf" / "build.py"))["build"]
        # Editable installs import from src/; wheels from build_lib.
        base = ROOT / "src" if getattr(self, "editable_mode", False) else Path(self.build_lib)
        build(base / "droptrace" / "bpf")


setup(cmdclass={"build_py": BuildWithBPF})
