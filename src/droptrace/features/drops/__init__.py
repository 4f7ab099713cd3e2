"""The drops feature: an event per dropped packet, through the ring buffer (drops.bpf.c; its
writers are formats/, shared with recordings read back)."""
