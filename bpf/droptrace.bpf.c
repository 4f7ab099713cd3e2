// SPDX-License-Identifier: GPL-2.0
/* droptrace: one event per dropped packet, from the skb:kfree_skb tracepoint.
 *
 * Three programs share one body and differ only in how they receive the
 * tracepoint's arguments: tp_btf (typed, preferred), raw_tp (untyped args
 * array) and the classic tracepoint (fields at the offsets the format file
 * gives). User space enables exactly one with bpf_program__set_autoload().
 * The reason travels as its raw enum value: names come from the running
 * kernel's BTF in user space, never from a table here.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "droptrace.h"

char LICENSE[] SEC("license") = "GPL";


#include "common.bpf.h"

static __always_inline __u32 netns_of(struct net_device *dev, struct sk_buff *skb)
{
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	struct sock *sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

/* Copy the packet from its first known header: MAC, else network, else data. */
static __always_inline void copy_headers(struct dt_event *e, struct sk_buff *skb, __u32 limit)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *data = BPF_CORE_READ(skb, data);
	__u32 mac = BPF_CORE_READ(skb, mac_header);
	__u32 net = BPF_CORE_READ(skb, network_header);
	__u32 tail = BPF_CORE_READ(skb, tail);
	__u32 start;

	if (mac != DT_OFF_UNSET && (net == DT_OFF_UNSET || mac <= net))
		start = mac;
	else if (net != DT_OFF_UNSET)
		start = net;
	else
		start = (__u32)(data - head);

	__u32 data_off = (__u32)(data - head);
	e->data_off = data_off >= start && data_off - start < DT_OFF_UNSET ? data_off - start : 0;
	e->mac_off = mac != DT_OFF_UNSET && mac >= start ? mac - start : DT_OFF_UNSET;
	e->net_off = net != DT_OFF_UNSET && net >= start ? net - start : DT_OFF_UNSET;

	__u32 cap = tail > start ? tail - start : 0;
	if (cap > cfg.snaplen)
		cap = cfg.snaplen;
	if (cap > limit) /* the room reserved after e->data's start: a constant per call site */
		cap = limit;
	e->cap_len = cap;
	if (cap)
		bpf_probe_read_kernel(e->data, cap, head + start);
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dt_agg_key);
	__type(value, struct dt_agg_val);
} agg SEC(".maps");

/* Fill the flow part of an aggregation key from the network header. */
static __always_inline void agg_flow(struct dt_agg_key *k, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u32 net = BPF_CORE_READ(skb, network_header);
	__u8 vhl = 0;

	if (net == DT_OFF_UNSET)
		return;
	unsigned char *ip = head + net;
	bpf_probe_read_kernel(&vhl, 1, ip);
	__u32 l4off;
	if ((vhl >> 4) == 4 && k->l3proto == 0x0800) {
		bpf_probe_read_kernel(&k->l4proto, 1, ip + 9);
		bpf_probe_read_kernel(k->saddr, 4, ip + 12);
		bpf_probe_read_kernel(k->daddr, 4, ip + 16);
		__u16 frag = 0;
		bpf_probe_read_kernel(&frag, 2, ip + 6);
		if (dt_ntohs(frag) & 0x1fff)
			goto done;
		l4off = (vhl & 0xf) * 4;
	} else if ((vhl >> 4) == 6 && k->l3proto == 0x86dd) {
		bpf_probe_read_kernel(&k->l4proto, 1, ip + 6);
		bpf_probe_read_kernel(k->saddr, 16, ip + 8);
		bpf_probe_read_kernel(k->daddr, 16, ip + 24);
		l4off = 40;
	} else {
		return;
	}
	if (k->l4proto == 6 || k->l4proto == 17 || k->l4proto == 132 || k->l4proto == 136) {
		__u16 ports[2] = {};
		bpf_probe_read_kernel(ports, sizeof(ports), ip + l4off);
		k->sport = dt_ntohs(ports[0]);
		k->dport = dt_ntohs(ports[1]);
	}
done:
	k->has_flow = 1;
}

static __always_inline void aggregate(struct sk_buff *skb, struct net_device *dev, __u64 location,
				      __u32 reason, __u32 netns, __u32 ifindex)
{
	struct dt_agg_key k = {};
	struct dt_agg_val zero = {}, *v;
	__u64 len = BPF_CORE_READ(skb, len);

	k.location = location;
	k.reason = reason;
	k.netns = netns;
	k.ifindex = ifindex;
	k.l3proto = dt_ntohs(BPF_CORE_READ(skb, protocol));
	if (cfg.agg_flows)
		agg_flow(&k, skb);
	v = bpf_map_lookup_elem(&agg, &k);
	if (!v) {
		if (dev)
			bpf_probe_read_kernel_str(zero.ifname, sizeof(zero.ifname), dev->name);
		if (bpf_map_update_elem(&agg, &k, &zero, BPF_NOEXIST) && cfg.agg_flows) {
			/* full: fold this flow into its flow-less key, so counts stay exact */
			count(DT_STAT_AGG_FOLDED);
			__builtin_memset(&k.l4proto, 0, sizeof(k) - offsetof(struct dt_agg_key, l4proto));
			bpf_map_update_elem(&agg, &k, &zero, BPF_NOEXIST);
		}
		v = bpf_map_lookup_elem(&agg, &k);
		if (!v) {
			count(DT_STAT_AGG_LOST);
			return;
		}
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->bytes, len);
}

/* -- tcpdump filters: libpcap's classic BPF, interpreted here -------------
 * The expression is compiled in user space by libpcap (twice: for Ethernet
 * frames and for captures that start at the IP header) and loaded into
 * filter_insns. Each drop's headers are copied into a per-CPU scratch event
 * and the program runs over them with bpf_loop, one instruction a step. A
 * drop the filter rejects goes no further: no ring buffer, no count. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * DT_FILTER_MAX);
	__type(key, __u32);
	__type(value, struct dt_insn);
} filter_insns SEC(".maps");

struct dt_vm {
	__u32 A, X, pc, ret, len, base, start, stop;
	__u32 M[16];
	struct dt_event ev;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_vm);
} scratch SEC(".maps");

static __always_inline bool vm_load(struct dt_vm *vm, __u32 off, __u32 size, __u32 *val)
{
	__u32 i = vm->start + off;

	if (off >= DT_SNAP_MAX || i + size > vm->ev.cap_len || i + size > DT_SNAP_MAX)
		return false;
	if (size == 1) {
		*val = vm->ev.data[i & (DT_SNAP_MAX - 1)];
	} else if (size == 2) {
		*val = ((__u32)vm->ev.data[i & (DT_SNAP_MAX - 1)] << 8) |
		       vm->ev.data[(i + 1) & (DT_SNAP_MAX - 1)];
	} else {
		*val = ((__u32)vm->ev.data[i & (DT_SNAP_MAX - 1)] << 24) |
		       ((__u32)vm->ev.data[(i + 1) & (DT_SNAP_MAX - 1)] << 16) |
		       ((__u32)vm->ev.data[(i + 2) & (DT_SNAP_MAX - 1)] << 8) |
		       vm->ev.data[(i + 3) & (DT_SNAP_MAX - 1)];
	}
	return true;
}

static int vm_step(__u32 index, void *unused)
{
	__u32 zero = 0;
	struct dt_vm *vm = bpf_map_lookup_elem(&scratch, &zero);

	if (!vm)
		return 1;
	__u32 idx = vm->base + vm->pc;
	struct dt_insn *in = bpf_map_lookup_elem(&filter_insns, &idx);
	if (!in || vm->pc >= DT_FILTER_MAX) {
		vm->ret = 0;
		return 1;
	}
	__u16 code = in->code;
	__u32 k = in->k, src = (code & 0x08) ? vm->X : k, val = 0;
	vm->pc++;

	switch (code & 0x07) {
	case 0x00: /* LD */
	case 0x01: { /* LDX */
		__u32 mode = code & 0xe0, size = (code & 0x18) == 0x00 ? 4 : (code & 0x18) == 0x08 ? 2 : 1;
		if (mode == 0x00) {
			val = k;
		} else if (mode == 0x80) {
			val = vm->len;
		} else if (mode == 0x60) {
			val = vm->M[k & 15];
		} else if (mode == 0x20 || mode == 0x40 || mode == 0xa0) {
			if (!vm_load(vm, k + (mode == 0x40 ? vm->X : 0), size, &val)) {
				vm->ret = 0; /* out of the captured bytes: no match */
				return 1;
			}
			if (mode == 0xa0)
				val = (val & 0xf) << 2;
		}
		if ((code & 0x07) == 0x00)
			vm->A = val;
		else
			vm->X = val;
		break;
	}
	case 0x02: /* ST */
		vm->M[k & 15] = vm->A;
		break;
	case 0x03: /* STX */
		vm->M[k & 15] = vm->X;
		break;
	case 0x04: /* ALU */
		switch (code & 0xf0) {
		case 0x00: vm->A += src; break;
		case 0x10: vm->A -= src; break;
		case 0x20: vm->A *= src; break;
		case 0x30:
			if (!src) { vm->ret = 0; return 1; }
			vm->A /= src;
			break;
		case 0x40: vm->A |= src; break;
		case 0x50: vm->A &= src; break;
		case 0x60: vm->A = src < 32 ? vm->A << src : 0; break;
		case 0x70: vm->A = src < 32 ? vm->A >> src : 0; break;
		case 0x80: vm->A = -vm->A; break;
		case 0x90:
			if (!src) { vm->ret = 0; return 1; }
			vm->A %= src;
			break;
		case 0xa0: vm->A ^= src; break;
		}
		break;
	case 0x05: { /* JMP */
		bool taken;
		switch (code & 0xf0) {
		case 0x00: vm->pc += k; return 0;
		case 0x10: taken = vm->A == src; break;
		case 0x20: taken = vm->A > src; break;
		case 0x30: taken = vm->A >= src; break;
		case 0x40: taken = (vm->A & src) != 0; break;
		default: vm->ret = 0; return 1;
		}
		vm->pc += taken ? in->jt : in->jf;
		break;
	}
	case 0x06: /* RET */
		vm->ret = (code & 0x18) == 0x10 ? vm->A : (code & 0x18) == 0x08 ? vm->X : k;
		vm->stop = 1;
		return 1;
	case 0x07: /* MISC */
		if (code & 0x80)
			vm->A = vm->X; /* TXA */
		else
			vm->X = vm->A; /* TAX */
		break;
	}
	return 0;
}

/* true when the loaded filter accepts this skb */
static __always_inline bool filter_accepts(struct sk_buff *skb, struct net_device *dev)
{
	__u32 zero = 0;
	struct dt_vm *vm = bpf_map_lookup_elem(&scratch, &zero);

	if (!vm)
		return false;
	copy_headers(&vm->ev, skb, DT_SNAP_MAX);
	__u16 type = dev ? BPF_CORE_READ(dev, type) : 0xffff;
	__u16 mac = vm->ev.mac_off, net = vm->ev.net_off;
	__u32 n;
	if (mac != DT_OFF_UNSET && (type == 1 || type == 772) &&
	    (net == DT_OFF_UNSET || net >= mac + 14)) {
		vm->base = 0;
		vm->start = mac;
		n = cfg.filter_eth_len;
	} else if (net != DT_OFF_UNSET) {
		vm->base = DT_FILTER_MAX;
		vm->start = net;
		n = cfg.filter_raw_len;
	} else {
		return false;
	}
	vm->A = vm->X = vm->pc = vm->ret = vm->stop = 0;
	__builtin_memset(vm->M, 0, sizeof(vm->M));
	vm->len = BPF_CORE_READ(skb, len) + vm->ev.data_off - vm->start;
	bpf_loop(n > DT_FILTER_MAX ? DT_FILTER_MAX : n, vm_step, NULL, 0);
	return vm->stop && vm->ret;
}

struct dt_rate {
	__u64 second;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_rate);
} rate SEC(".maps");

/* --rate-limit: at most cfg.rate_limit events per second, over all CPUs. The
 * window reset may race between CPUs; the count of what was held back is exact. */
static __always_inline bool rate_allows(void)
{
	__u32 zero = 0;
	struct dt_rate *r;

	if (!cfg.rate_limit)
		return true;
	r = bpf_map_lookup_elem(&rate, &zero);
	if (!r)
		return true;
	__u64 second = bpf_ktime_get_ns() / 1000000000ULL;
	if (r->second != second) {
		r->second = second;
		r->count = 0;
	}
	if (__sync_fetch_and_add(&r->count, 1) >= cfg.rate_limit) {
		count(DT_STAT_SUPPRESSED);
		return false;
	}
	return true;
}

static __always_inline bool ifname_matches(struct net_device *dev)
{
	char name[16] = {};

	if (!dev)
		return false;
	bpf_probe_read_kernel_str(name, sizeof(name), dev->name);
	for (int i = 0; i < 16; i++) {
		if (name[i] != cfg.ifname[i])
			return false;
		if (!name[i])
			break;
	}
	return true;
}

static __always_inline int handle(void *ctx, struct sk_buff *skb, __u64 location,
				  __u32 reason, bool has_reason)
{
	if (has_reason && !reason_wanted(reason))
		return 0;

	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u32 ifindex = dev ? BPF_CORE_READ(dev, ifindex) : BPF_CORE_READ(skb, skb_iif);
	__u32 netns = netns_of(dev, skb);
	__u32 mark = BPF_CORE_READ(skb, mark);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (cfg.netns && netns != cfg.netns)
		return 0;
	if (cfg.ifindex && ifindex != cfg.ifindex)
		return 0;
	if (cfg.ifname_on && !ifname_matches(dev))
		return 0;
	if (!pid_wanted(pid_tgid))
		return 0;
	if (cfg.mark_on && (mark & cfg.mark_mask) != cfg.mark)
		return 0;
	if (cfg.filter_on && !filter_accepts(skb, dev))
		return 0;

	if (cfg.aggregate) {
		aggregate(skb, dev, location, reason, netns, ifindex);
		return 0;
	}

	if (!rate_allows())
		return 0;

	struct dt_event *e;
	bool big = cfg.snaplen > DT_SNAP_MAX;
	if (big && cfg.want_stack)
		e = bpf_ringbuf_reserve(&events, sizeof(struct dt_event_big_stack), 0);
	else if (big)
		e = bpf_ringbuf_reserve(&events, sizeof(struct dt_event_big), 0);
	else if (cfg.want_stack)
		e = bpf_ringbuf_reserve(&events, sizeof(struct dt_event_stack), 0);
	else
		e = bpf_ringbuf_reserve(&events, sizeof(struct dt_event), 0);
	if (!e) {
		count(DT_STAT_LOST);
		return 0;
	}

	e->ts_ns = bpf_ktime_get_ns();
	e->location = location;
	e->reason = reason;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->cpu = bpf_get_smp_processor_id();
	e->len = BPF_CORE_READ(skb, len);
	e->mark = mark;
	e->ifindex = ifindex;
	e->netns = netns;
	e->protocol = dt_ntohs(BPF_CORE_READ(skb, protocol));
	e->flags = has_reason ? DT_F_HAS_REASON : 0;
	e->stack_len = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* Ring buffer memory is not zeroed: fill every byte user space may key on. */
	e->_pad = 0;
	e->_reserved = 0;
	if (dev) {
		e->dev_type = BPF_CORE_READ(dev, type);
		bpf_probe_read_kernel(e->ifname, sizeof(e->ifname), dev->name);
	} else {
		e->dev_type = 0xffff;
		__builtin_memset(e->ifname, 0, sizeof(e->ifname));
	}
	if (big)
		copy_headers(e, skb, DT_SNAP_BIG);
	else
		copy_headers(e, skb, DT_SNAP_MAX);

	if (cfg.want_stack) {
		__u64 *stack = big ? ((struct dt_event_big_stack *)e)->stack
				   : ((struct dt_event_stack *)e)->stack;
		long n = bpf_get_stack(ctx, stack, DT_STACK_MAX * sizeof(__u64), 0);
		e->stack_len = n > 0 ? n : 0;
	}
	bpf_ringbuf_submit(e, 0);
	count(DT_STAT_EMITTED);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dt_tp_btf, struct sk_buff *skb, void *location)
{
	/* ctx[2] is the reason; it exists only on kernels >= 5.17 and the
	 * verifier skips the read when cfg.has_reason is 0. */
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return handle(ctx, skb, (__u64)location, reason, cfg.has_reason);
}

SEC("raw_tp/kfree_skb")
int BPF_PROG(dt_raw_tp, struct sk_buff *skb, void *location)
{
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return handle(ctx, skb, (__u64)location, reason, cfg.has_reason);
}

SEC("tracepoint/skb/kfree_skb")
int dt_tracepoint(void *ctx)
{
	struct dt_tp_fields f = {};

	read_tp_fields(ctx, &f);
	if (!f.skb)
		return 0;
	return handle(ctx, f.skb, f.location, f.reason, cfg.has_reason);
}
