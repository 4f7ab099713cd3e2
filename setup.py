"""Compiles the features' BPF objects into the package at build time (see bpf/build.py), and the optional
batch renderer (src/droptrace/_render.c): without a C compiler or Python headers the install still
succeeds and droptrace renders in Python, byte for byte the same."""
import runpy
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithBPF(build_py):
    def run(self):
        super().run()
        build = runpy.run_path(str(ROOT / "bpf" / "build.py"))["build"]
        # Editable installs import from src/; wheels from build_lib.
        base = ROOT / "src" if getattr(self, "editable_mode", False) else Path(self.build_lib)
        build(base / "droptrace" / "bpf")


RENDER = Extension("droptrace._render", ["src/droptrace/_render.c"], optional=True,
                   extra_compile_args=["-O2", "-std=gnu99", "-Wall", "-Wno-missing-field-initializers"])

setup(cmdclass={"build_py": BuildWithBPF}, ext_modules=[RENDER])
