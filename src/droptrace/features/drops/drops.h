/* The drops feature's configuration: the shared fields, then its own. Both of its objects
 * (drops.bpf.c, and drops_nobtf.bpf.c for kernels without BTF) read it. */
#ifndef DROPTRACE_DROPS_H
#define DROPTRACE_DROPS_H

struct dt_drops_config {
	DT_SHARED_CONFIG
	__u32 want_stack;
	__u32 rate_limit;       /* events per second at most, 0: no limit */
};

const volatile struct dt_drops_config cfg = {};

#endif
