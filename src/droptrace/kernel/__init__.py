"""Everything that talks to the kernel: libbpf, BTF and the object's contract, tracefs,
kallsyms, the ring buffer, privileges, and the Tracer that ties them together."""
