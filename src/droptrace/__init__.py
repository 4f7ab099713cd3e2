"""droptrace: where did my packet go, and why? Packet drops traced with eBPF."""

__version__ = "0.1.0"
