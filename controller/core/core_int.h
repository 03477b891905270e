/*
 * Private to the core (core.c: the cache events and evaluation;
 * core_actions.c: choosing, gating and answering actions): the state both
 * halves share.  Nothing outside controller/core/core*.c includes it.
 */
#ifndef DD_CORE_INT_H
#define DD_CORE_INT_H

#include "core.h"

/* Most notices waiting for the shell; older ones are dropped past this. */
#define MAX_NOTICES 1024

struct notice {
	char *ns, *name, *uid, *type, *reason, *message;
	bool cluster_wide;
};

struct core {
	const struct policy *p;
	const struct kc_store *pods, *nodes, *claims, *slices;
	const struct kc_store *rules; /* DeviceTaintRules of others (never ours), or NULL */
	struct health *h;
	struct planner *pl;
	struct limits *lim;
	struct quarantine *qr;
	bool synced, active;
	bool cap_noticed; /* the QuarantineCapReached notice of this episode went out */
	bool dra_synced; /* claims are read only once the DRA caches synced */
	struct core_stats st;
	struct notice q[MAX_NOTICES];
	size_t q_head, q_len;
	uint64_t q_dropped;
	struct notice cur; /* the notice last returned */
	char *action_msg;  /* the message of the action last returned */
	uint64_t now;	   /* for store visitors */
};

void core_notice_clear(struct notice *n);
void core_push_notice(struct core *c, const struct planner_pod *r, const char *type, const char *reason,
			char *message);
void core_update_breaker(struct core *c, uint64_t now_ms);
void core_drop_record(struct core *c, struct planner_pod *r, bool recovered, uint64_t now_ms);
void core_eval_pod(struct core *c, const struct kc_pod *pod, uint64_t now_ms);
void core_eval_node_pods(struct core *c, const char *node, uint64_t now_ms);
void core_eval_all(struct core *c, uint64_t now_ms);

#endif
