"""The compiled renderer is optional, so its absence must not go unnoticed where it can be built."""
import os
import shutil
import sysconfig

import pytest

from droptrace.formats import compiled as render


def can_build() -> bool:
    include = sysconfig.get_paths().get("include") or ""
    compiler = shutil.which("cc") or shutil.which("gcc")
    return bool(compiler) and os.path.exists(os.path.join(include, "Python.h"))


@pytest.mark.skipif(not can_build(), reason="no C compiler or Python headers: the Python writers are used")
def test_the_extension_is_built_where_it_can_be():
    # Otherwise test_render.py skips everything and the storm path goes untested.
    assert render._render is not None, render.status()
