"""A private lab of network namespaces where well-known drops happen (`droptrace lab`, e2e tests).

Names are imported on first use (PEP 562), so `python -m droptrace.lab.traffic`, which runs
once per provoked drop, does not pay for the lab's plumbing and scenarios.
"""
from typing import Any

_FROM = {**{n: "netlab" for n in ("A4", "A6", "A_MAC", "B4", "B6", "B_MAC", "GHOST4", "IFNAME", "OTHER_MAC",
                                  "SPOOF4", "Lab")},
         **{n: "scenarios" for n in ("SCENARIOS", "Scenario", "by_name")}}
__all__ = sorted(_FROM)


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_FROM[name]}", __name__), name)
