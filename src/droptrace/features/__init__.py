"""One folder a feature: its BPF source and configuration struct, its loader (a kernel.tracer.Tracer
subclass) and, where it has its own, its writer and command.

  drops   an event per dropped packet (the stream, record, diagnose, lab, the Python API)
  counts  drops counted in the kernel (top, the exporter)
  trail   the path each packet took (droptrace trail)

bpf/ holds what their BPF shares (the event layouts, the filters, the drop hook); bpf/build.py
compiles every features/X/X.bpf.c. Adding a feature: a new folder here, and its subcommand's line
in cli.SUBCOMMANDS.
"""
