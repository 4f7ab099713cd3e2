/* The contract between the BPF programs and user space: every constant, event
 * and map layout both sides use, defined here once.
 *
 * User space never re-types any of it: src/droptrace/kernel/contract.py reads
 * the compiled object's own BTF, so struct fields are found by name and
 * offset, and constants by enum member name. Reordering or resizing a field
 * here keeps droptrace correct; renaming or removing one that Python uses
 * fails loudly (tests/unit/test_layout.py). Constants are enums, not
 * #defines, because only enums reach BTF; struct dt_contract makes them part
 * of the object.
 */
#ifndef DROPTRACE_H
#define DROPTRACE_H

enum dt_limit {
	DT_SNAP_MAX = 256,   /* bytes of packet copied from the first header */
	DT_SNAP_BIG = 1536,  /* ... when recording with --payload (or a larger --snaplen) */
	DT_STACK_MAX = 32,   /* kernel stack frames with --stack */
	DT_FILTER_MAX = 256, /* classic BPF instructions of one filter program */
	DT_OFF_UNSET = 0xffff, /* skb header offset not set (the kernel's ~0 in a u16) */
	DT_LIST_MAX = 64,    /* entries of each --netns / --interface list */
	DT_NETNS_FEW = 4,    /* --netns lists this short are compared in place, not looked up in a map */
	DT_TRAIL_HOPS = 32,  /* trail: the most recent hops kept per packet (a power of two) */
	DT_FC_CLASSES = 4,   /* filter verdict cache: classes of packets (dt_filter_class) */
	DT_FC_FIXED = 80,    /* ... bytes from the start that a cached filter may read */
	DT_FC_AFTER = 48,    /* ... and from the end of the IPv4 header (4*(byte msh & 0xf)) */
};

/* `droptrace trail`: the tracepoints a packet is followed through. The tracepoint of
 * DT_HOOK_NETIF_RX is net:netif_rx, and so on: user space derives each name (and its
 * program, dt_trail_<name>) from the member's name. */
enum dt_hook {
	DT_HOOK_NETIF_RECEIVE_SKB = 0,
	DT_HOOK_NETIF_RX = 1,
	DT_HOOK_NAPI_GRO_RECEIVE_ENTRY = 2,
	DT_HOOK_NET_DEV_QUEUE = 3,
	DT_HOOK_NET_DEV_START_XMIT = 4,
	DT_HOOK_NET_DEV_XMIT = 5,
	DT_HOOK_QDISC_ENQUEUE = 6,
	DT_HOOK_QDISC_DEQUEUE = 7,
	DT_HOOK_SKB_COPY_DATAGRAM_IOVEC = 8,
	DT_HOOK_TCP_RETRANSMIT_SKB = 9,
	DT_HOOK_TCP_SEND_RESET = 10,
	DT_HOOK_SOCK_RCVQUEUE_FULL = 11,
	DT_HOOK_UDP_FAIL_QUEUE_RCV_SKB = 12,
	DT_HOOK_ICMP_SEND = 13,
	DT_HOOK_CONSUME_SKB = 14,  /* ends a trail: consumed */
	DT_HOOK_KFREE_SKB = 15,    /* ends a trail: dropped */
	DT_HOOK_NUM = 16,
};

/* trail's function hooks (--functions): a hop made by a kernel function that takes the skb */
enum dt_fn {
	DT_FN_HOOK = 255,     /* dt_hop.hook of such a hop (dt_hop.func says which function) */
	DT_FN_RETURNED = 254, /* ... the same, with the value it returned in dt_hop.ret (--returns) */
	DT_FN_CLONE = 253,    /* the first hop of a clone or copy made by dt_hop.func: its trail goes on
			       * from the original's */
	DT_FN_ARGS = 5,       /* the skb is looked for among a function's first five arguments */
	DT_FN_CALLS = 8,      /* calls in progress remembered per CPU for their return */
	DT_FN_SEGMENTS = 64,  /* GSO segments of one skb_segment followed (the list it returns) */
};

/* trail: a hop that is not a step but says what changed at the step before it */
enum dt_hop_kind {
	DT_HOP_HEADERS = 252, /* dt_hop.headers: the packet's headers from here on */
};

/* How a trail ended */
enum dt_verdict {
	DT_VERDICT_DROPPED = 1,
	DT_VERDICT_CONSUMED = 2,
};

enum dt_event_flag {
	DT_F_HAS_REASON = 1, /* the hook delivered a drop reason */
	DT_F_NO_SKB = 2,     /* without BTF: nothing was read from the skb */
};

/* stats map slots (per-CPU counters) */
enum dt_stat {
	DT_STAT_EMITTED = 0,    /* events written to the ring buffer */
	DT_STAT_LOST = 1,       /* ring buffer full: event dropped, counted */
	DT_STAT_AGG_FOLDED = 2, /* top: aggregation map full, flow folded into a flow-less key */
	DT_STAT_AGG_LOST = 3,   /* top: not even the flow-less key fitted */
	DT_STAT_SUPPRESSED = 4, /* --rate-limit: events not sent, counted */
	DT_STAT_NUM = 5,
};

/* how reason_filter is used */
enum dt_reason_mode {
	DT_REASONS_ALL = 0,
	DT_REASONS_ONLY = 1,   /* keep only reasons present in reason_filter */
	DT_REASONS_EXCEPT = 2, /* drop reasons present in reason_filter */
};

/* dt_agg_key.has_flow bits */
enum dt_flow {
	DT_FLOW_ADDRS = 1, /* l4proto, saddr and daddr are set */
	DT_FLOW_PORTS = 2, /* sport and dport are set (a protocol that carries ports) */
};

struct dt_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 location;   /* kernel address that freed the skb */
	__u32 reason;     /* raw enum skb_drop_reason value */
	__u32 pid;        /* tgid of the task on CPU at drop time */
	__u32 tid;
	__u32 cpu;
	__u32 len;        /* skb->len */
	__u32 mark;
	__u32 ifindex;
	__u32 netns;      /* inode of the skb's network namespace, 0 unknown */
	__u16 protocol;   /* skb->protocol, host order */
	__u16 mac_off;    /* offset of the MAC header in data[], or DT_OFF_UNSET */
	__u16 net_off;    /* offset of the network header in data[], or unset */
	__u16 cap_len;    /* valid bytes in data[] */
	__u16 dev_type;   /* ARPHRD_* of skb->dev, 0xffff without a device */
	__u16 stack_len;  /* bytes of stack[] that are valid */
	__u16 data_off;   /* offset of skb->data in data[] (bytes before it are not in len) */
	__u16 _pad;
	__u32 flags;      /* enum dt_event_flag bits */
	__u32 _reserved;  /* keeps the size a multiple of 8: stack[] follows */
	char comm[16];
	char ifname[16];
	__u8 data[DT_SNAP_MAX];
};

struct dt_event_stack {
	struct dt_event ev;
	__u64 stack[DT_STACK_MAX];
};

/* With a snaplen above DT_SNAP_MAX the captured bytes run on past data[]. */
struct dt_event_big {
	struct dt_event ev;
	__u8 more[DT_SNAP_BIG - DT_SNAP_MAX];
};

struct dt_event_big_stack {
	struct dt_event_big big;
	__u64 stack[DT_STACK_MAX];
};

/* `droptrace top`: drops counted in the kernel, per key. */
struct dt_agg_key {
	__u64 location;
	__u32 reason;
	__u32 netns;
	__u32 ifindex;
	__u16 l3proto;    /* ethertype, host order */
	__u8 l4proto;     /* IP protocol, 0 unknown */
	__u8 has_flow;    /* enum dt_flow bits: what of the flow below is set */
	__u8 saddr[16];   /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 _pad;
};

struct dt_agg_val {
	__u64 count;
	__u64 bytes;
	char ifname[16];
};

/* A packet's identity from its network header (headers.bpf.h): trail's headers where they
 * changed. Aligned so that two compare as five 8-byte words. */
struct dt_headers {
	__u8 saddr[16];   /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 l3proto;    /* ethertype (skb->protocol), host order */
	__u8 l4proto;     /* IP protocol (IPv6: the first next header) */
	__u8 has_flow;    /* enum dt_flow bits: what above was read; 0: nothing (not IP, no header) */
} __attribute__((aligned(8)));

/* trail: one step of a packet through the stack */
struct dt_hop {
	__u64 ts_ns;
	__u32 len;        /* skb->len at this hop */
	__u16 hook;       /* enum dt_hook, or DT_FN_HOOK, DT_FN_RETURNED, DT_FN_CLONE, DT_HOP_HEADERS */
	__u16 cpu;
	union {
		struct {  /* every hop but DT_HOP_HEADERS */
			__u64 func;       /* hook DT_FN_HOOK: the function's address (bpf_get_func_ip); else 0 */
			__u64 caller;     /* ... the address it returns to, where known; else 0 */
			__s64 ret;        /* hook DT_FN_RETURNED: the value the function returned */
			__u32 ifindex;
			__u32 netns;
			char ifname[16];
		};
		/* hook DT_HOP_HEADERS: the packet's headers changed at the hop before (NAT, a tunnel's
		 * encapsulation or decapsulation); these are the new ones */
		struct dt_headers headers;
	};
};

/* trail: a tracked packet, by skb address (the map value) */
struct dt_trail {
	__u64 skb;        /* its address (0: a free slot) */
	__u64 last_ns;    /* the latest hop: a trail idle for cfg.trail_gap_ns is a reused address */
	__u32 nhops;      /* hops seen; the last DT_TRAIL_HOPS are in hops[nhops % DT_TRAIL_HOPS] */
	__u32 selected;   /* a hop passed --netns/-i (always 1 without them): emitted when it ends */
	struct dt_headers first; /* the packet's headers at the first hop that had them */
	struct dt_headers now;   /* ... and at the latest: a hop where they differ records them */
	struct dt_hop hops[DT_TRAIL_HOPS];
};

/* trail: what the ring buffer carries when a trail ends */
struct dt_trail_event {
	struct dt_event ev;  /* the packet at its end: decoded as a drop event is */
	struct dt_trail trail;
	enum dt_verdict verdict;
	__u32 _pad;
};

/* The tcpdump expression's verdict cache, for one class of packets: those whose 16 bits at
 * `off` (big-endian, from the start of the program's input), masked with `mask`, equal `value`.
 * User space proved (packet/filter_reads.py) that for such packets the program reads only the
 * bytes marked in `reads` (DT_FC_FIXED from the start, then DT_FC_AFTER from 4*(byte msh & 0xf)),
 * and the length if `on` has DT_FC_LEN: its verdict is a function of them. */
enum dt_fc_flag {
	DT_FC_ON = 1,
	DT_FC_LEN = 2,
};

struct dt_filter_class {
	__u8 on;                /* dt_fc_flag; 0: not cached */
	__u8 raw;               /* of the raw-IP program (else the Ethernet one) */
	__u8 off;
	__u8 msh;
	__u16 mask;
	__u16 value;
	__u8 reads[DT_FC_FIXED + DT_FC_AFTER]; /* 0xff where the program may read */
};

/* The configuration the shared headers read (common.bpf.h, capture.bpf.h, cbpf.bpf.h): the first
 * fields of every feature's own configuration struct (features/X/X.bpf.c declares
 * `const volatile struct dt_X_config cfg`). Set by user space in .rodata before load, field by
 * field (by name, from BTF); the verifier sees constants. */
#define DT_SHARED_CONFIG \
	__u32 has_reason;       /* the hook carries a reason argument/field */ \
	__u32 snaplen;          /* <= DT_SNAP_BIG; above DT_SNAP_MAX, events are dt_event_big */ \
	__u32 skip_reason_a;    /* SKB_NOT_DROPPED_YET (or 0xffffffff) */ \
	__u32 skip_reason_b;    /* SKB_CONSUMED (or 0xffffffff) */ \
	enum dt_reason_mode reason_mode; \
	__u32 netns_on;         /* keep only namespaces present in netns_filter */ \
	__u32 netns_few_n;      /* ... or, when 1..DT_NETNS_FEW, only those in netns_few */ \
	__u32 netns_few[DT_NETNS_FEW]; \
	__u32 ifname_on;        /* keep only device names present in ifname_filter */ \
	__u32 pid;              /* 0: any */ \
	__u32 mark_on; \
	__u32 mark; \
	__u32 mark_mask; \
	/* classic tracepoint: field offsets from the event's format file */ \
	__u32 tp_off_skb; \
	__u32 tp_off_location; \
	__u32 tp_off_reason; \
	__u32 tp_size_reason; \
	__u32 tp_off_protocol; \
	__u32 filter_on;        /* a pcap filter expression is loaded in filter_insns */ \
	__u32 filter_eth_len;   /* instructions of its Ethernet version (at 0) */ \
	__u32 filter_raw_len;   /* instructions of its raw-IP version (at DT_FILTER_MAX) */ \
	struct dt_filter_class filter_class[DT_FC_CLASSES]; \
	__u32 wake_bytes;       /* wake the reader only once this much is queued (it also polls on \
				 * a timer); 0: the kernel's default, a wakeup whenever it had caught up */

/* Never read by the programs: a global of this type carries into the object's
 * BTF the enums above and the event variants that the code only casts to
 * (BTF keeps a struct whole only where it is used by value). */
struct dt_contract {
	enum dt_limit limit;
	enum dt_event_flag event_flag;
	enum dt_stat stat;
	enum dt_reason_mode reason_mode;
	enum dt_flow flow;
	enum dt_hook hook;
	enum dt_verdict verdict;
	enum dt_fc_flag fc_flag;
	enum dt_fn fn;
	enum dt_hop_kind hop_kind;
	union {
		struct dt_event_stack event_stack;
		struct dt_event_big event_big;
		struct dt_event_big_stack event_big_stack;
		struct dt_trail_event trail_event;
	} variants;
};

/* One classic BPF instruction, as libpcap emits it (struct bpf_insn). */
struct dt_insn {
	__u16 code;
	__u8 jt;
	__u8 jf;
	__u32 k;
};

/* A device name, the key of ifname_filter. */
struct dt_ifname {
	char name[16];
};

#endif
