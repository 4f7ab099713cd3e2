"""The counts feature: drops counted in the kernel by reason, location, device and flow
(counts.bpf.c, aggregate.bpf.h); `top` and the exporter read the counts."""
