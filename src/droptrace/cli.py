"""The droptrace command: picks the subcommand, and turns every failure into one line.

Each subcommand is a module of commands/ with a main(argv). Errors the user
can act on are DroptraceError (exit 1) or UsageError (exit 2); a reader that
goes away (`droptrace | head`) ends us quietly.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Optional, Sequence

from .errors import DroptraceError

# Each subcommand's module (its main(argv)); the default, the drop stream, is commands/stream.py.
SUBCOMMANDS = {
    "lab": ".commands.lab", "top": ".commands.top", "record": ".commands.record",
    "report": ".commands.report", "doctor": ".commands.doctor", "exporter": ".commands.exporter",
    "explain": ".commands.explain", "diagnose": ".commands.diagnose",
    "trail": ".features.trail.command",
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    try:
        if argv and argv[0] in SUBCOMMANDS:
            module = importlib.import_module(SUBCOMMANDS[argv[0]], __package__)
            return module.main(argv[1:])
        from .commands import stream

        return stream.main(argv)
    except DroptraceError as e:
        print(f"droptrace: error: {e}", file=sys.stderr, flush=True)
        log = getattr(e, "log", "")
        if verbose and not log:
            from .kernel import libbpf

            log = libbpf.log_tail()
        if verbose and log:
            print(log.rstrip(), file=sys.stderr, flush=True)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (droptrace | head): exit quietly.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
