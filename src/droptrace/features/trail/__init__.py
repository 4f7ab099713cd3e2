"""The trail feature: the path each packet took, hop by hop, from tracepoints (trail.bpf.c);
its loader, its writer and its subcommand."""
