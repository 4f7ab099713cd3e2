// SPDX-License-Identifier: GPL-2.0
/* The drops feature for kernels without BTF: no CO-RE, so nothing is read from the
 * skb itself (its layout is unknown). The classic tracepoint's own record
 * still gives the drop reason, the location and the protocol, at offsets
 * user space takes from the event's format file.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include "droptrace.h"
#include "drops.h"

char LICENSE[] SEC("license") = "GPL";

#include "common.bpf.h"
#include "ring.bpf.h"

SEC("tracepoint/skb/kfree_skb")
int dt_tracepoint(void *ctx)
{
	struct dt_tp_fields f = {};
	struct dt_event *e;
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	read_tp_fields(ctx, &f);
	if (cfg.has_reason && !reason_wanted(f.reason))
		return 0;
	if (!pid_wanted(pid_tgid))
		return 0;
	__u64 size;
	void *ring;
	e = DT_RESERVE(ring, struct dt_event, size);
	if (!e) {
		count(DT_STAT_LOST);
		return 0;
	}
	__builtin_memset(e, 0, offsetof(struct dt_event, data));
	e->ts_ns = bpf_ktime_get_ns();
	e->location = f.location;
	e->reason = f.reason;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->cpu = bpf_get_smp_processor_id();
	e->protocol = f.protocol; /* the tracepoint stores it in host order */
	e->mac_off = DT_OFF_UNSET;
	e->net_off = DT_OFF_UNSET;
	e->dev_type = 0xffff;
	e->flags = DT_F_NO_SKB | (cfg.has_reason ? DT_F_HAS_REASON : 0);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	dt_submit(ring, e, size);
	count(DT_STAT_EMITTED);
	return 0;
}
