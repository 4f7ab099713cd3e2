"""Loading drops.bpf.c: an event per drop, with the packet's headers and, on request, a stack."""
from __future__ import annotations

from typing import Dict, Union

from ...errors import DroptraceError
from ...kernel.tracer import BTF_PATH, Tracer

NOBTF_LIMITS = ("no kernel BTF: the packet itself (addresses, ports, length, mark), its interface "
                "and namespace cannot be read; showing reason, location, protocol and task")


class DropTracer(Tracer):
    """The drop stream: events in the ring buffer, read by batch() or poll()."""

    OBJECTS = ("drops.bpf.o", "drops_noloop.bpf.o")
    OBJECT_NOBTF = "drops_nobtf.bpf.o"
    CONFIG = "dt_drops_config"
    WHAT = "droptrace"

    def _feature_config(self) -> Dict[str, Union[int, bytes]]:
        return {"want_stack": int(self.opts.stack), "rate_limit": self.opts.rate_limit}

    def _without_btf(self) -> None:
        """The classic tracepoint's own record still gives the reason, location, protocol and
        task: filters that need the skb are refused."""
        o = self.opts
        needs = [flag for flag, on in (("--netns", o.netns), ("--interface", o.interfaces),
                                       ("--mark", o.mark)) if on]
        if needs:
            verb = "needs" if len(needs) == 1 else "need"
            raise DroptraceError(f"{', '.join(needs)} {verb} kernel BTF, which this kernel lacks "
                                 f"({BTF_PATH}); filter by --reason or --pid instead")
        if o.hook not in (None, "tracepoint"):
            raise DroptraceError(f"--hook {o.hook} needs kernel BTF ({BTF_PATH} is "
                                 "missing); only the classic tracepoint works without it")
        o.hook = "tracepoint"
        self.limits.append(NOBTF_LIMITS)
