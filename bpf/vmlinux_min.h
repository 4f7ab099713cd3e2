/* The few kernel types droptrace reads, declared for CO-RE.
 *
 * Only the fields we touch are listed; preserve_access_index makes clang
 * record each access by name so libbpf relocates it against the running
 * kernel's BTF. Nesting (anonymous unions and structs) does not matter:
 * libbpf finds a field through the target's anonymous members. This keeps
 * the build free of a generated multi-megabyte vmlinux.h.
 */
#ifndef DROPTRACE_VMLINUX_MIN_H
#define DROPTRACE_VMLINUX_MIN_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0
#ifndef offsetof
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_ARRAY_OF_MAPS = 12,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_F_CURRENT_CPU = 0xffffffffULL,
};

enum { /* bpf_ringbuf_submit flags, bpf_ringbuf_query selectors (uapi linux/bpf.h) */
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
	BPF_RB_AVAIL_DATA = 0,
	BPF_RB_RING_SIZE = 1,
};

#define __PRESERVE __attribute__((preserve_access_index))

struct ns_common {
	unsigned int inum;
} __PRESERVE;

struct net {
	struct ns_common ns;
} __PRESERVE;

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	char name[16];
	int ifindex;
	unsigned short type;
	possible_net_t nd_net;
} __PRESERVE;

struct sock_common {
	possible_net_t skc_net;
} __PRESERVE;

struct sock {
	struct sock_common __sk_common;
} __PRESERVE;

struct sk_buff {
	struct sk_buff *next;   /* in a list: GSO segments (skb_segment's result) */
	struct net_device *dev;
	struct sock *sk;
	unsigned int len;
	int skb_iif;
	__u32 mark;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	__u16 mac_header;
	unsigned int tail;
	unsigned int end;
	unsigned char *head;
	unsigned char *data;
} __PRESERVE;

/* A kprobe's context (trail's function hooks): the registers at the probed instruction, laid out as
 * the architecture's uapi fixes them (no relocation: ctx fields are read at fixed offsets). Only
 * x86_64's is declared; elsewhere trail's function hooks are not built. */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs,
		flags, sp, ss;
};
#endif

#endif
