"""`droptrace trail` with another trail object: bench/trail.py's floor.

`python bench/trail_floor.py OBJECT [droptrace trail's arguments]` runs the CLI in-process with
OBJECT loaded in place of the installed trail.bpf.o. bench/trail.py passes the same source built
with -DDT_TRAIL_FLOOR, whose programs return at once: what attaching to the same tracepoints
costs before droptrace does anything.
"""
import sys

from droptrace import cli
from droptrace.features.trail.tracer import TrailTracer
from droptrace.kernel import contract

if __name__ == "__main__":
    floor, argv = sys.argv[1], sys.argv[2:]
    installed = contract.object_path

    def object_path(name: str = contract.OBJECT) -> str:
        return floor if name == TrailTracer.OBJECTS[0] else installed(name)

    contract.object_path = object_path
    sys.exit(cli.main(argv))
