/*
 * Seeded randomized property test of fencing.  A small cluster (4 GPU nodes,
 * pods of three ReplicaSets) goes through random storms: node conditions
 * raised and cleared, devices reported Unhealthy, fences and evictions
 * answered (OK, failed, late), the watch delivering our writes, evicted pods
 * replaced by a model scheduler that honours our taint (or, in spells,
 * ignores it), time jumps and controller restarts (a new core over the same
 * API objects).  After every step an independent model checks:
 *
 *  - no pod UID is evicted twice;
 *  - every eviction of a pod on a node whose condition holds happens while
 *    that node carries our fence on the API (written and answered), so no
 *    eviction is sent into an unfenced failure;
 *  - a fence is lifted only after its node has been healthy (condition off)
 *    for recoverAfter, measured from the clear or from the last restart,
 *    whichever is later: never early;
 *  - never more nodes fenced on the API than the cap allows (asking again for
 *    a fence already there is allowed: a stale watch event can hide our
 *    write, and the shell then finds it in place and writes nothing);
 *  - the loop guard: no pod is evicted from a node that a pod of the same
 *    owner was evicted from (for the node's condition) within loopWindow, when
 *    the pod appeared after that eviction (the loop guard's memory is the
 *    core's own, so a restart clears the model's too).
 *
 * PROPERTY_SEED=N runs case N alone; PROPERTY_CASES sets the count;
 * FENCE_TRACE=1 prints every step, write and answer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core.h"
#include "core_builders.h"
#include "kc_backoff.h"
#include "kc_log.h"
#include "quarantine.h"
#include "property_common.h"

#define GPU "nvidia.com/gpu"
#define KEY "device-descheduler.io/unhealthy-device"
#define NODES 4
#define MAX_PODS 64
#define MAX_FLIGHT 64
#define MAX_EVICTIONS 256
#define RECOVER_MS 30000
#define LOOP_MS 60000
#define DEFAULT_SEED 20261203ULL
#ifdef __SANITIZE_ADDRESS__
#define DEFAULT_CASES 150
#else
#define DEFAULT_CASES 600
#endif
#define STEPS 160

static uint64_t total_evictions, total_fences, total_lifts, total_loops;

#define CHECK(cond, ...) PROPERTY_CHECK("fence property", cond, __VA_ARGS__)

struct mnode {
	bool cond;
	uint64_t healthy_since; /* when the condition was last cleared (or the core restarted) */
	bool fenced;		/* our fence on the API */
};

struct mpod {
	bool alive;
	char name[32], uid[32];
	int node, owner;
	bool sick; /* a device reported Unhealthy */
	uint64_t created;
	bool evicted;
};

struct flight {
	bool fence;
	enum quarantine_op op;
	int node;    /* fences */
	char uid[32]; /* evictions */
};

struct eviction {
	int owner, node;
	uint64_t at;
};

struct model {
	struct tb_env e;
	struct mnode nodes[NODES];
	struct mpod pods[MAX_PODS];
	int n_pods;
	struct flight fl[MAX_FLIGHT];
	int n_fl;
	struct eviction ev[MAX_EVICTIONS];
	int n_ev;
	unsigned seq;
	bool ignore_taints;
	uint32_t cap;
};

static const char *node_name(int i)
{
	static const char *const names[NODES] = {"n0", "n1", "n2", "n3"};

	return names[i];
}

static int node_index(const char *name)
{
	for (int i = 0; i < NODES; i++)
		if (strcmp(name, node_name(i)) == 0)
			return i;
	return -1;
}

/* The node as the API has it now, put into the store (the watch delivering it). */
static void put_node(struct model *m, int i)
{
	struct kc_node *n = tb_node(node_name(i));

	tb_node_resource(n, GPU, 8, 8);
	if (m->nodes[i].cond)
		tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79");
	if (m->nodes[i].fenced) {
		tb_node_taint(n, KEY, "nvidia.com_gpu", "NoSchedule");
		tb_node_annotation(n, QUARANTINE_ANNOTATION, "{}");
	}
	tb_put_node(&m->e, n);
}

static void put_pod(struct model *m, struct mpod *p)
{
	struct kc_pod *k = tb_pod("ml", p->name, p->uid, node_name(p->node));

	tb_pod_owner(k, "ReplicaSet", tb_fmt("rs%d", p->owner), true);
	tb_pod_container(k, "main", GPU, 1);
	tb_status_health(tb_pod_status(k, "main"), GPU, tb_fmt("GPU-%s", p->uid),
			 p->sick ? KC_HEALTH_UNHEALTHY : KC_HEALTH_HEALTHY, "XID 79");
	tb_put_pod(&m->e, k);
}

/* A new pod of owner, placed as the model scheduler would: never on a fenced node unless it ignores taints. */
static void new_pod(struct model *m, int owner)
{
	int choices[NODES], n = 0;
	struct mpod *p;

	if (m->n_pods == MAX_PODS)
		return;
	for (int i = 0; i < NODES; i++)
		if (m->ignore_taints || !m->nodes[i].fenced)
			choices[n++] = i;
	if (!n)
		return; /* Pending: nothing to evict */
	p = &m->pods[m->n_pods++];
	memset(p, 0, sizeof(*p));
	p->alive = true;
	m->seq++;
	snprintf(p->name, sizeof(p->name), "p%u", m->seq);
	snprintf(p->uid, sizeof(p->uid), "u%u", m->seq);
	p->node = choices[rnd((unsigned)n)];
	p->owner = owner;
	p->created = m->e.now;
	put_pod(m, p);
}

static struct mpod *pod_by_uid(struct model *m, const char *uid)
{
	for (int i = 0; i < m->n_pods; i++)
		if (strcmp(m->pods[i].uid, uid) == 0)
			return &m->pods[i];
	return NULL;
}

static int fenced_count(const struct model *m)
{
	int n = 0;

	for (int i = 0; i < NODES; i++)
		n += m->nodes[i].fenced;
	return n;
}

static void check_eviction(struct model *m, const struct core_action *a)
{
	struct mpod *p = pod_by_uid(m, a->uid);
	int node = node_index(a->node);

	CHECK(p && p->alive, "eviction of an unknown or gone pod %s", a->uid);
	if (getenv("FENCE_TRACE"))
		fprintf(stderr, "  evict %s on %s (fenced %d)\n", a->uid, a->node, m->nodes[node].fenced);
	CHECK(!p->evicted, "pod %s evicted twice", a->uid);
	for (int i = 0; i < m->n_fl; i++)
		CHECK(m->fl[i].fence || strcmp(m->fl[i].uid, a->uid) != 0, "two evictions of %s in flight", a->uid);
	CHECK(node == p->node, "eviction names node %s, the pod is on %s", a->node, node_name(p->node));
	if (m->nodes[node].cond) {
		CHECK(m->nodes[node].fenced, "pod %s evicted from %s while its condition holds and no fence is written",
		      a->uid, a->node);
		for (int i = 0; i < m->n_ev; i++) {
			const struct eviction *e = &m->ev[i];

			CHECK(!(e->owner == p->owner && e->node == node && e->at < p->created &&
				m->e.now - e->at < LOOP_MS),
			      "pod %s (owner rs%d) evicted from %s again: a pod of that owner was evicted from there "
			      "at %llu, before it appeared (%llu), within the loop window",
			      a->uid, p->owner, a->node, (unsigned long long)e->at, (unsigned long long)p->created);
		}
		if (m->n_ev < MAX_EVICTIONS)
			m->ev[m->n_ev++] = (struct eviction){p->owner, node, m->e.now};
	}
	total_evictions++;
}

static void check_fence(struct model *m, const struct core_action *a)
{
	int node;

	CHECK(a->fence.kind == QUARANTINE_NODE, "a device fence without DRA devices (%s)", a->fence.unit);
	node = node_index(a->fence.unit);
	CHECK(node >= 0, "fence of unknown node %s", a->fence.unit);
	for (int i = 0; i < m->n_fl; i++)
		CHECK(!(m->fl[i].fence && m->fl[i].node == node), "two fence writes in flight for %s", a->fence.unit);
	if (getenv("FENCE_TRACE"))
		fprintf(stderr, "  fence %s %s\n", a->fence.op == QUARANTINE_ADD ? "add" : "remove", a->fence.unit);
	if (a->fence.op == QUARANTINE_REMOVE) {
		CHECK(!m->nodes[node].cond, "fence of %s lifted while its condition holds", a->fence.unit);
		CHECK(m->e.now >= m->nodes[node].healthy_since + RECOVER_MS,
		      "fence of %s lifted %llu ms after it became healthy (recoverAfter %d)", a->fence.unit,
		      (unsigned long long)(m->e.now - m->nodes[node].healthy_since), RECOVER_MS);
		total_lifts++;
	} else {
		/* Asking again for a fence already on the API is allowed (the core's view may be
		 * a stale watch event): the shell reads the node and writes nothing. */
		CHECK((uint32_t)fenced_count(m) + !m->nodes[node].fenced <= m->cap, "fencing %s past the cap %u",
		      a->fence.unit, m->cap);
		total_fences++;
	}
}

/* Takes every action due and checks it; they stay in flight until answered. */
static void drain(struct model *m)
{
	struct core_action a;

	while (core_next_action(m->e.core, m->e.now, &a) == 0) {
		struct flight *f;

		CHECK(m->n_fl < MAX_FLIGHT, "too many actions in flight");
		f = &m->fl[m->n_fl++];
		memset(f, 0, sizeof(*f));
		if (a.kind == CORE_FENCE) {
			check_fence(m, &a);
			f->fence = true;
			f->op = a.fence.op;
			f->node = node_index(a.fence.unit);
		} else {
			CHECK(a.kind == CORE_EVICT, "a delete in a policy without deleteAfter");
			check_eviction(m, &a);
			snprintf(f->uid, sizeof(f->uid), "%s", a.uid);
		}
	}
	CHECK((uint32_t)fenced_count(m) <= m->cap, "%d nodes fenced, cap %u", fenced_count(m), m->cap);
}

static void answer(struct model *m, int i)
{
	struct flight f = m->fl[i];
	bool ok = rnd(5) != 0;

	m->fl[i] = m->fl[--m->n_fl];
	if (getenv("FENCE_TRACE"))
		fprintf(stderr, "  answer %s %s %s\n", f.fence ? "fence" : "evict", f.fence ? node_name(f.node) : f.uid,
			ok ? "ok" : "failed");
	if (f.fence) {
		if (ok) {
			/* The write landed; the watch brings it now or a little later (a later put). */
			m->nodes[f.node].fenced = f.op == QUARANTINE_ADD;
			if (rnd(2))
				put_node(m, f.node);
		}
		core_fence_done(m->e.core, QUARANTINE_NODE, node_name(f.node), ok ? QUARANTINE_OK : QUARANTINE_FAILED,
				m->e.now);
		return;
	}
	if (!ok) {
		core_action_done(m->e.core, f.uid, CORE_RESULT_ERROR, 0, m->e.now);
		return;
	}
	core_action_done(m->e.core, f.uid, CORE_RESULT_EVICTED, 0, m->e.now);
	{
		struct mpod *p = pod_by_uid(m, f.uid);

		p->evicted = true; /* a failed attempt is retried; a successful one is final */
		p->alive = false;
		tb_del_pod(&m->e, "ml", p->name);
		new_pod(m, p->owner); /* the ReplicaSet replaces it */
	}
}

static struct policy *fence_policy(uint32_t cap)
{
	struct policy *p = tb_policy_yaml("signals:\n  nodeConditions:\n    - {type: GPUXIDErrors}\n"
					  "remediation: {recoverAfter: 30s, loopWindow: 1m}\n");

	p->max_quarantined_nodes = cap;
	p->max_quarantined_percent = 0;
	p->retry_initial_ms = 1000;
	p->retry_max_ms = 4000;
	return p;
}

/* A new core over the same API objects: what a restart or a new leader sees. */
static void restart(struct model *m)
{
	uint64_t now = m->e.now;

	/* Only between requests: the model cannot tell what a request cut in half did. */
	if (m->n_fl)
		return;
	m->e.core = core_free(m->e.core);
	m->e.core = core_new(m->e.p, m->e.pods, m->e.nodes, m->e.claims, m->e.slices);
	/* The new replica lists the API as it is now. */
	for (int i = 0; i < NODES; i++)
		put_node(m, i);
	core_set_synced(m->e.core, true, now);
	/* The new core starts its recovery clocks now and forgets the loop guard's memory. */
	for (int i = 0; i < NODES; i++)
		if (m->nodes[i].healthy_since < now)
			m->nodes[i].healthy_since = now;
	m->n_ev = 0;
}

static void run_case(uint64_t seed)
{
	struct model *m = calloc(1, sizeof(*m));

	case_seed = seed;
	rng = seed;
	m->cap = 1 + rnd(3);
	tb_env_init(&m->e, fence_policy(m->cap), true);
	for (int i = 0; i < NODES; i++)
		put_node(m, i);
	for (int i = 0; i < 10; i++)
		new_pod(m, rnd(3));
	for (int step = 0; step < STEPS; step++) {
		int k = (int)rnd(100), i;

		if (getenv("FENCE_TRACE"))
			fprintf(stderr, "step %d k=%d now=%llu\n", step, k, (unsigned long long)m->e.now);

		if (k < 15) {
			i = (int)rnd(NODES);
			m->nodes[i].cond = !m->nodes[i].cond;
			if (getenv("FENCE_TRACE"))
				fprintf(stderr, "  cond %s %d\n", node_name(i), m->nodes[i].cond);
			if (!m->nodes[i].cond)
				m->nodes[i].healthy_since = m->e.now;
			put_node(m, i);
		} else if (k < 22) {
			for (i = 0; i < m->n_pods; i++) {
				struct mpod *p = &m->pods[rnd((unsigned)m->n_pods)];

				if (p->alive && !p->sick) {
					p->sick = true;
					put_pod(m, p);
					break;
				}
			}
		} else if (k < 60) {
			if (m->n_fl)
				answer(m, (int)rnd((unsigned)m->n_fl));
		} else if (k < 64) {
			put_node(m, (int)rnd(NODES)); /* a late or repeated watch event */
		} else if (k < 80) {
			m->e.now += 1 + rnd(20000);
		} else if (k < 83) {
			m->ignore_taints = !m->ignore_taints;
		} else if (k < 86) {
			restart(m);
		} else if (k < 90) {
			new_pod(m, rnd(3));
		}
		drain(m);
	}
	total_loops += core_stats(m->e.core)->eviction_loops;
	tb_env_done(&m->e);
	tb_reset();
	free(m);
}

static void test_fence_storm(void **state)
{
	const char *env = getenv("PROPERTY_SEED");
	const char *cases_env = getenv("PROPERTY_CASES");
	uint64_t base = env ? strtoull(env, NULL, 10) : DEFAULT_SEED;
	unsigned cases = cases_env ? (unsigned)atoi(cases_env) : env ? 1 : DEFAULT_CASES;

	(void)state;
	for (case_no = 0; case_no < cases; case_no++)
		run_case(base + case_no);
	printf("fence property: %u cases from seed %llu passed (%llu evictions, %llu fences, %llu lifted, %llu "
	       "loops caught)\n",
	       cases, (unsigned long long)base, (unsigned long long)total_evictions, (unsigned long long)total_fences,
	       (unsigned long long)total_lifts, (unsigned long long)total_loops);
	/* The storm must exercise what it checks. */
	assert_true(total_evictions > 0 && total_fences > 0 && total_lifts > 0 && total_loops > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fence_storm),
	};

	kc_log_setup(-1, KC_LOG_TEXT, fopen("/dev/null", "w"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
