/*
 * Seeded randomized property tests of the core.  Random small clusters
 * (nodes with GPUs and DRA slices; pods with and without GPUs, from the
 * device plugin or a DRA claim; DaemonSet and bare pods; two namespaces) go
 * through random event sequences: devices failing and recovering, node
 * conditions, allocatable drops and DRA device taints appearing and clearing,
 * pods deleted and recreated under the same name with new UIDs, nodes
 * removed and re-added, sync and leadership flips, policy reloads, and random
 * results for the actions (evicted, blocked with Retry-After, gone, error),
 * some answered late.  After every step an independent model checks:
 *
 *  - an action names a pod in the store with that UID, which the filters allow
 *    and which the model sees bound to a device unhealthy under the policy
 *    (its debounce elapsed, by the model's own clock);
 *  - nothing is chosen before sync, while not active, nor while the breaker
 *    should be open; dry-run actions are marked so and never in flight;
 *  - maxInFlight is never exceeded, and within any span of a constant policy
 *    every interval of length `window` holds at most maxTotal actions, at most
 *    maxPerNode on each node and at most maxPerNamespace in each namespace
 *    (every window is checked after every step, not only the final count);
 *  - a UID is evicted at most once (and reported at most once in dry run), and never has
 *    two actions in flight;
 *  - the breaker's node counts equal the model's, and it is open exactly when
 *    the model's breaker is: it opens as soon as its condition holds and closes
 *    only once the condition has not held for closeAfter.
 *
 *  - notices come only while synced and active.
 *
 * The seed is fixed (DEFAULT_SEED), so that CI runs the same cases every time,
 * and printed; PROPERTY_SEED=N runs case N alone (PROPERTY_SEED=time: a seed
 * from the clock, for exploration), PROPERTY_CASES sets the number of cases.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core.h"
#include "core_builders.h"
#include "kc_backoff.h"
#include "kc_log.h"
#include "property_common.h"

#define GPU "nvidia.com/gpu"
#define MAX_NODES 6
#define MAX_PODS 24
#define MAX_HIST 512
#define MAX_FLIGHT 64

/* Sanitizers slow the core about tenfold; keep the run well under 20 s there too. */
#ifdef __SANITIZE_ADDRESS__
#define DEFAULT_CASES 1000
#else
#define DEFAULT_CASES 3000
#endif
#define DEFAULT_SEED 20261203ULL

static uint64_t total_actions, total_evicted, total_held, total_by_signal[HEALTH_SIGNAL_COUNT];

#define CHECK(cond, ...) PROPERTY_CHECK("property", cond, __VA_ARGS__)

#define DEVS 4

struct mnode {
	bool exists;
	uint64_t cond_since;	    /* 0 = no condition */
	uint64_t drop_since;	    /* 0 = no drop */
	uint64_t taint_since[DEVS]; /* DRA devices d0..d3 of the node's ResourceSlice; 0 = untainted */
};

enum owner {
	OWN_RS,
	OWN_DS,
	OWN_NONE,
};

struct mpod {
	bool exists;
	char name[16];
	char uid[24];
	const char *ns;
	int node;
	bool gpu;
	int dra_dev; /* >= 0: the GPU comes from a DRA claim on device d<dra_dev> of the node's slice */
	enum owner owner;
	uint64_t bad_since; /* 0 = healthy */
};

/* A device report the breaker keeps (core.c's evidence), as the model sees it. */
struct mrep {
	char uid[24];
	int node;
	char key[48];
};

/* The model's memory of one reported device on one node (health.c's struct evidence). */
struct mev {
	bool used;
	int node;
	char key[48];
	uint32_t pods;
	bool recovered;
	uint64_t until;
};

#define MAX_EV 128

struct taken {
	uint64_t t;
	int node;
	const char *ns;
};

struct flight {
	char uid[24];
	bool used;
};

struct model {
	struct tb_env e;
	struct mnode nodes[MAX_NODES];
	int n_nodes;
	struct mpod pods[MAX_PODS];
	unsigned next_uid;
	bool synced, active;
	struct taken hist[MAX_HIST]; /* actions since the last policy change */
	size_t n_hist;
	struct flight flights[MAX_FLIGHT];
	char (*done)[24]; /* UIDs evicted or gone */
	size_t n_done;
	char (*dry)[24]; /* UIDs reported in dry run (evicted for real once dry run is off) */
	size_t n_dry;
	uint64_t actions;
	struct mrep reps[MAX_PODS]; /* the reports at the last check */
	size_t n_reps;
	struct mev ev[MAX_EV];
	bool mb_open;		  /* the model's breaker */
	uint64_t mb_below_since; /* UINT64_MAX: the condition holds, or the breaker is closed */
};

static bool uid_done(const struct model *m, const char *uid)
{
	for (size_t i = 0; i < m->n_done; i++)
		if (strcmp(m->done[i], uid) == 0)
			return true;
	return false;
}

static void mark_done(struct model *m, const char *uid)
{
	m->done = realloc(m->done, (m->n_done + 1) * sizeof(*m->done));
	snprintf(m->done[m->n_done++], sizeof(*m->done), "%s", uid);
}

static bool uid_dry(const struct model *m, const char *uid)
{
	for (size_t i = 0; i < m->n_dry; i++)
		if (strcmp(m->dry[i], uid) == 0)
			return true;
	return false;
}

static void mark_dry(struct model *m, const char *uid)
{
	m->dry = realloc(m->dry, (m->n_dry + 1) * sizeof(*m->dry));
	snprintf(m->dry[m->n_dry++], sizeof(*m->dry), "%s", uid);
}

static const char *node_name(int i)
{
	static const char *const names[MAX_NODES] = {"n0", "n1", "n2", "n3", "n4", "n5"};

	return names[i];
}

static struct policy *random_policy(void)
{
	struct policy *p = policy_new_default();

	p->pod_health_enabled = rnd(6) != 0;
	p->pod_health_for_ms = rnd(3) ? 0 : (uint64_t)rnd(4) * 10000;
	p->n_node_conditions = 1;
	p->node_conditions = calloc(1, sizeof(*p->node_conditions));
	p->node_conditions[0].type = strdup("GPUBad");
	p->node_conditions[0].status = KC_COND_TRUE;
	p->node_conditions[0].for_ms = (uint64_t)rnd(3) * 20000;
	p->alloc_drop_enabled = rnd(2);
	p->alloc_drop_for_ms = (uint64_t)rnd(3) * 15000;
	p->evict_bare_pods = rnd(3) == 0;
	if (rnd(3) == 0) {
		p->n_ns_exclude = 1;
		p->ns_exclude = calloc(1, sizeof(char *));
		p->ns_exclude[0] = strdup("b");
	}
	p->retry_initial_ms = 1000 + rnd(5) * 1000;
	p->retry_max_ms = p->retry_initial_ms * (1 + rnd(8));
	p->delete_after_ms = rnd(3) ? 0 : (uint64_t)(1 + rnd(3)) * 20000;
	p->window_ms = (uint64_t)(1 + rnd(6)) * 10000;
	p->max_per_node = rnd(3);
	p->max_per_namespace = rnd(4);
	p->max_total = rnd(5);
	p->max_in_flight = rnd(4);
	p->breaker_enabled = rnd(2);
	p->breaker_max_nodes = rnd(3) ? 0 : 1 + rnd(4);
	p->breaker_max_percent = rnd(4) ? 25 * (1 + rnd(4)) : 0;
	p->breaker_min_nodes = rnd(5);
	p->breaker_close_after_ms = (uint64_t)rnd(3) * 10000;
	p->breaker_memory_ms = rnd(4) ? (uint64_t)rnd(4) * 30000 : 0;
	p->dry_run = rnd(5) == 0;
	p->dra = rnd(6) != 0;
	p->dra_taints_enabled = rnd(5) != 0;
	p->dra_taints_for_ms = (uint64_t)rnd(3) * 10000;
	/* Fencing and the loop guard have their own storm (test_property_fence.c). */
	p->remediation_enabled = false;
	p->loop_window_ms = 0;
	return p;
}

/* The model's view: is the pod bound to a device unhealthy under the policy at now? */
static bool model_due(const struct model *m, const struct mpod *mp, uint64_t now, const struct policy *p)
{
	const struct mnode *n = &m->nodes[mp->node];

	if (!mp->gpu)
		return false;
	if (mp->dra_dev >= 0) {
		uint64_t t = n->taint_since[mp->dra_dev];

		if (!p->dra)
			return false; /* a claim is a device only with devices.dra */
		if (p->dra_taints_enabled && t && t + p->dra_taints_for_ms <= now)
			return true;
		return n->exists && n->cond_since && n->cond_since + p->node_conditions[0].for_ms <= now;
	}
	if (p->pod_health_enabled && mp->bad_since && mp->bad_since + p->pod_health_for_ms <= now)
		return true;
	if (n->exists && n->cond_since && n->cond_since + p->node_conditions[0].for_ms <= now)
		return true;
	if (n->exists && p->alloc_drop_enabled && n->drop_since &&
	    n->drop_since + p->alloc_drop_for_ms <= now)
		return true;
	return false;
}

static bool model_allowed(const struct mpod *mp, const struct policy *p)
{
	if (mp->owner == OWN_DS)
		return false;
	if (mp->owner == OWN_NONE && !p->evict_bare_pods)
		return false;
	if (p->n_ns_exclude && strcmp(mp->ns, "b") == 0)
		return false;
	return true;
}

/*
 * The device a pod reports unhealthy by a pod-level signal (the breaker's
 * evidence), if any: its own GPU's health, or the DRA taint of its claim's
 * device.  Node conditions and drops count from the node instead.
 */
static bool model_report(const struct model *m, const struct mpod *mp, const struct policy *p, struct mrep *ret)
{
	const struct mnode *n = &m->nodes[mp->node];

	if (!mp->exists || !mp->gpu)
		return false;
	snprintf(ret->uid, sizeof(ret->uid), "%s", mp->uid);
	ret->node = mp->node;
	if (mp->dra_dev >= 0) {
		if (!p->dra || !p->dra_taints_enabled || !n->taint_since[mp->dra_dev])
			return false;
		snprintf(ret->key, sizeof(ret->key), "claim:gpu/gpu|drv/%s/d%d", node_name(mp->node), mp->dra_dev);
		return true;
	}
	if (!p->pod_health_enabled || !mp->bad_since)
		return false;
	snprintf(ret->key, sizeof(ret->key), GPU "|GPU-%s", mp->uid);
	return true;
}

static struct mev *model_ev(struct model *m, int node, const char *key, bool add)
{
	struct mev *free_slot = NULL;

	for (int i = 0; i < MAX_EV; i++) {
		struct mev *e = &m->ev[i];

		if (e->used && e->node == node && strcmp(e->key, key) == 0)
			return e;
		if (!e->used && !free_slot)
			free_slot = e;
	}
	if (!add)
		return NULL;
	CHECK(free_slot != NULL, "model evidence table full");
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = true;
	free_slot->node = node;
	snprintf(free_slot->key, sizeof(free_slot->key), "%s", key);
	return free_slot;
}

static bool pod_live(const struct model *m, const char *uid)
{
	for (int i = 0; i < MAX_PODS; i++)
		if (m->pods[i].exists && strcmp(m->pods[i].uid, uid) == 0)
			return true;
	return false;
}

static bool rep_in(const struct mrep *v, size_t n, const struct mrep *x)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].uid, x->uid) == 0 && v[i].node == x->node && strcmp(v[i].key, x->key) == 0)
			return true;
	return false;
}

/*
 * Brings the model's memory up to date after a step, as core.c and health.c
 * do: a report that stopped while its pod is still there is a recovery; one
 * whose pod went away is remembered for circuitBreaker.memory.  Reports that
 * stopped are handled before new ones, as the core drops an old pod before it
 * evaluates the one that replaced it.
 */
static void model_evidence_step(struct model *m)
{
	const struct policy *p = m->e.p;
	struct mrep cur[MAX_PODS];
	size_t n = 0;

	for (int i = 0; i < MAX_PODS; i++)
		if (model_report(m, &m->pods[i], p, &cur[n]))
			n++;
	for (size_t i = 0; i < m->n_reps; i++) {
		const struct mrep *r = &m->reps[i];
		struct mev *e;

		if (rep_in(cur, n, r) || !(e = model_ev(m, r->node, r->key, false)))
			continue;
		e->pods--;
		if (pod_live(m, r->uid))
			e->recovered = true;
		else if (m->e.now + p->breaker_memory_ms > e->until)
			e->until = m->e.now + p->breaker_memory_ms;
		if (!e->pods && (e->recovered || e->until <= m->e.now))
			e->used = false;
	}
	for (size_t i = 0; i < n; i++) {
		struct mev *e;

		if (rep_in(m->reps, m->n_reps, &cur[i]))
			continue;
		e = model_ev(m, cur[i].node, cur[i].key, true);
		e->pods++;
		e->recovered = false;
	}
	memcpy(m->reps, cur, n * sizeof(*cur));
	m->n_reps = n;
	for (int i = 0; i < MAX_EV; i++)
		if (m->ev[i].used && !m->ev[i].pods && m->ev[i].until <= m->e.now)
			m->ev[i].used = false;
}

static void model_counts(const struct model *m, const struct policy *p, uint32_t *dev, uint32_t *unh)
{
	*dev = *unh = 0;
	for (int i = 0; i < m->n_nodes; i++) {
		const struct mnode *n = &m->nodes[i];
		/* Every model node has GPU capacity, so its condition applies; any drop counts. */
		bool u = n->exists && (n->cond_since || n->drop_since);

		for (int j = 0; !u && j < MAX_EV; j++)
			if (m->ev[j].used && m->ev[j].node == i)
				u = true;
		if (u)
			(*unh)++;
		/* Every model node has a ResourceSlice that publishes devices, node or no node. */
		if (u || n->exists || p->dra)
			(*dev)++;
	}
}

static bool model_breaker(const struct policy *p, uint32_t dev, uint32_t unh)
{
	if (!p->breaker_enabled)
		return false;
	if (p->breaker_max_nodes && unh > p->breaker_max_nodes)
		return true;
	return p->breaker_max_percent && dev >= p->breaker_min_nodes && dev &&
	       (uint64_t)unh * 100 > (uint64_t)p->breaker_max_percent * dev;
}

static struct kc_node *build_node(int i, const struct mnode *n)
{
	struct kc_node *k = tb_node(node_name(i));

	tb_node_resource(k, GPU, 4, n->drop_since ? 3 : 4);
	if (n->cond_since)
		tb_node_condition(k, "GPUBad", KC_COND_TRUE, "bad");
	return k;
}

static struct kc_resource_slice *build_slice(int i, const struct mnode *n)
{
	struct kc_resource_slice *s =
	    tb_slice(tb_fmt("slice-%s", node_name(i)), "drv", node_name(i), node_name(i));

	for (int d = 0; d < DEVS; d++)
		tb_slice_device(s, tb_fmt("d%d", d), n->taint_since[d] ? "drv/xid" : NULL, "NoExecute");
	return s;
}

static struct kc_resource_claim *build_claim(const struct mpod *mp)
{
	struct kc_resource_claim *c =
	    tb_claim(mp->ns, tb_fmt("%s-gpu", mp->name), tb_fmt("claim-%s", mp->uid));

	tb_claim_result(c, "gpu", "drv", node_name(mp->node), tb_fmt("d%d", mp->dra_dev));
	tb_claim_consumer(c, mp->name, mp->uid);
	return c;
}

static struct kc_pod *build_pod(const struct mpod *mp)
{
	struct kc_pod *k = tb_pod(mp->ns, mp->name, mp->uid, node_name(mp->node));

	if (mp->owner == OWN_RS)
		tb_pod_owner(k, "ReplicaSet", "rs", true);
	else if (mp->owner == OWN_DS)
		tb_pod_owner(k, "DaemonSet", "ds", true);
	if (mp->gpu && mp->dra_dev >= 0) {
		tb_pod_container(k, "main", NULL, 0);
		tb_pod_claim(k, "gpu", tb_fmt("%s-gpu", mp->name));
		return k;
	}
	tb_pod_container(k, "main", mp->gpu ? GPU : NULL, 1);
	if (mp->gpu)
		tb_status_health(tb_pod_status(k, "main"), GPU, tb_fmt("GPU-%s", mp->uid),
				 mp->bad_since ? KC_HEALTH_UNHEALTHY : KC_HEALTH_HEALTHY, "XID 79");
	return k;
}

static void new_uid(struct model *m, struct mpod *mp)
{
	snprintf(mp->uid, sizeof(mp->uid), "uid-%u", m->next_uid++);
}

static struct flight *find_flight(struct model *m, const char *uid)
{
	for (int i = 0; i < MAX_FLIGHT; i++)
		if (m->flights[i].used && strcmp(m->flights[i].uid, uid) == 0)
			return &m->flights[i];
	return NULL;
}

static size_t n_flights(const struct model *m)
{
	size_t n = 0;

	for (int i = 0; i < MAX_FLIGHT; i++)
		n += m->flights[i].used;
	return n;
}

/*
 * Every half-open interval [t, t + window) holds at most max of the matching
 * actions (node >= 0: on that node; ns: in that namespace).  The history is in
 * time order, so a two-pointer sweep checks every window at once.
 */
static void check_windows(const struct model *m, uint32_t max, uint64_t window, int node, const char *ns)
{
	uint64_t t[MAX_HIST];
	size_t n = 0, lo = 0;

	if (!max)
		return;
	for (size_t i = 0; i < m->n_hist; i++)
		if ((node < 0 || m->hist[i].node == node) && (!ns || strcmp(m->hist[i].ns, ns) == 0))
			t[n++] = m->hist[i].t;
	for (size_t hi = 0; hi < n; hi++) {
		while (t[lo] + window <= t[hi])
			lo++;
		CHECK(hi - lo + 1 <= max, "%zu actions in [%llu, %llu] exceed %u per %llu ms (node %d ns %s)",
		      hi - lo + 1, (unsigned long long)t[lo], (unsigned long long)t[hi], max,
		      (unsigned long long)window, node, ns ? ns : "*");
	}
}

static void check_all_windows(const struct model *m)
{
	const struct policy *p = m->e.p;

	check_windows(m, p->max_total, p->window_ms, -1, NULL);
	for (int i = 0; i < m->n_nodes; i++)
		check_windows(m, p->max_per_node, p->window_ms, i, NULL);
	check_windows(m, p->max_per_namespace, p->window_ms, -1, "a");
	check_windows(m, p->max_per_namespace, p->window_ms, -1, "b");
}

/* The model's breaker, stepped at the same times as the core's (after every event, while synced). */
static void model_breaker_step(struct model *m)
{
	const struct policy *p = m->e.p;
	uint32_t dev, unh;

	if (!m->synced)
		return;
	model_counts(m, p, &dev, &unh);
	if (model_breaker(p, dev, unh)) {
		m->mb_open = true;
		m->mb_below_since = UINT64_MAX;
		return;
	}
	if (!m->mb_open)
		return;
	if (p->breaker_enabled) {
		if (m->mb_below_since == UINT64_MAX)
			m->mb_below_since = m->e.now;
		if (m->e.now - m->mb_below_since < p->breaker_close_after_ms)
			return;
	}
	m->mb_open = false;
	m->mb_below_since = UINT64_MAX;
}

static void check_action(struct model *m, const struct core_action *a)
{
	const struct policy *p = m->e.p;
	const struct kc_pod *pod = kc_store_get(m->e.pods, a->ns, a->name);
	const struct mpod *mp = NULL;
	uint32_t dev, unh;

	CHECK(m->synced && m->active, "action while not synced or not active");
	CHECK(pod && kc_uid_eq_str(&pod->meta.uid, a->uid), "action for %s/%s uid %s not in the store", a->ns,
	      a->name, a->uid);
	for (int i = 0; i < MAX_PODS; i++)
		if (m->pods[i].exists && strcmp(m->pods[i].uid, a->uid) == 0)
			mp = &m->pods[i];
	CHECK(mp != NULL, "no model pod for %s", a->uid);
	CHECK(model_due(m, mp, m->e.now, p),
	      "pod %s/%s (%s) not bound to a device unhealthy under the policy: %s", a->ns, a->name, a->uid,
	      a->message);
	CHECK(model_allowed(mp, p), "pod %s/%s filtered but chosen", a->ns, a->name);
	CHECK(a->dry_run == p->dry_run, "dry_run flag %d under policy dry_run %d", a->dry_run, p->dry_run);
	CHECK(!uid_done(m, a->uid), "uid %s chosen again after it was evicted", a->uid);
	CHECK(!(a->dry_run && uid_dry(m, a->uid)), "uid %s reported twice in dry run", a->uid);
	CHECK(!find_flight(m, a->uid), "uid %s chosen while in flight", a->uid);
	CHECK(a->kind == CORE_EVICT || (!a->dry_run && p->delete_after_ms), "DELETE without deleteAfter");
	model_counts(m, p, &dev, &unh);
	CHECK(!m->mb_open, "action while the breaker should be open (%u of %u)", unh, dev);
	if (!a->dry_run && p->max_in_flight)
		CHECK(n_flights(m) < p->max_in_flight, "maxInFlight %u exceeded", p->max_in_flight);
	CHECK(m->n_hist < MAX_HIST, "history full");
	m->hist[m->n_hist].t = m->e.now;
	m->hist[m->n_hist].node = mp->node;
	m->hist[m->n_hist].ns = mp->ns;
	m->n_hist++;
	check_all_windows(m);
	if (a->dry_run) {
		mark_dry(m, a->uid);
	} else {
		for (int i = 0; i < MAX_FLIGHT; i++)
			if (!m->flights[i].used) {
				m->flights[i].used = true;
				snprintf(m->flights[i].uid, sizeof(m->flights[i].uid), "%s", a->uid);
				break;
			}
	}
	m->actions++;
}

static void answer(struct model *m, struct flight *f)
{
	static const enum core_result results[] = {CORE_RESULT_EVICTED, CORE_RESULT_BLOCKED,
						   CORE_RESULT_BLOCKED, CORE_RESULT_GONE, CORE_RESULT_ERROR};
	enum core_result r = results[rnd(KC_ARRAY_SIZE(results))];

	if (r == CORE_RESULT_EVICTED || r == CORE_RESULT_GONE)
		mark_done(m, f->uid);
	core_action_done(m->e.core, f->uid, r, rnd(3) ? 0 : rnd(30000), m->e.now);
	f->used = false;
}

static void check_state(struct model *m)
{
	const struct core_stats *st = core_stats(m->e.core);
	uint32_t dev, unh;
	struct core_notice n;

	model_counts(m, m->e.p, &dev, &unh);
	CHECK(st->device_nodes == dev && st->unhealthy_nodes == unh, "breaker counts %u/%u, model %u/%u",
	      st->unhealthy_nodes, st->device_nodes, unh, dev);
	if (m->synced)
		CHECK(st->breaker_open == m->mb_open, "breaker open %d, model %d (%u of %u)", st->breaker_open,
		      m->mb_open, unh, dev);
	check_all_windows(m);
	CHECK(st->in_flight == n_flights(m), "in flight %llu, model %zu", (unsigned long long)st->in_flight,
	      n_flights(m));
	while (core_next_notice(m->e.core, &n) == 0) {
		CHECK(*n.type && *n.reason && *n.message, "empty notice");
		CHECK(m->synced && m->active, "notice %s while not synced or not active", n.reason);
	}
}

static void drain(struct model *m)
{
	struct core_action a;
	int guard = 0;

	model_evidence_step(m);
	model_breaker_step(m);
	while (core_next_action(m->e.core, m->e.now, &a) == 0) {
		check_action(m, &a);
		CHECK(++guard < 1000, "endless actions");
		/* Answer some at once; others stay in flight for a while. */
		if (!a.dry_run && rnd(2)) {
			struct flight *f = find_flight(m, a.uid);

			answer(m, f);
		}
	}
	if (m->synced && m->active) {
		uint64_t w = core_next_wakeup(m->e.core, m->e.now);

		CHECK(w > m->e.now, "next wakeup %llu not after now %llu though nothing is due",
		      (unsigned long long)w, (unsigned long long)m->e.now);
	}
	check_state(m);
}

static void step(struct model *m)
{
	unsigned op = rnd(100);
	struct mpod *mp = &m->pods[rnd(MAX_PODS)];
	int ni = (int)rnd((unsigned)m->n_nodes);
	struct mnode *n = &m->nodes[ni];

	if (getenv("PROPERTY_TRACE"))
		fprintf(stderr, "step at %llu: op %u pod %s node %d synced %d open %d\n", (unsigned long long)m->e.now, op,
			mp->exists ? mp->name : "-", ni, m->synced, m->mb_open);

	if (op < 20) { /* a device fails or recovers */
		if (!mp->exists || !mp->gpu || mp->dra_dev >= 0)
			return;
		mp->bad_since = mp->bad_since ? 0 : m->e.now;
		tb_put_pod(&m->e, build_pod(mp));
	} else if (op < 30) { /* a pod is created, or recreated under its name with a new UID */
		if (!mp->exists) {
			mp->exists = true;
			snprintf(mp->name, sizeof(mp->name), "p%d", (int)(mp - m->pods));
			mp->ns = rnd(2) ? "a" : "b";
			mp->gpu = rnd(5) != 0;
			mp->owner = rnd(8) == 0 ? OWN_DS : rnd(6) == 0 ? OWN_NONE : OWN_RS;
		}
		new_uid(m, mp);
		mp->node = ni;
		mp->bad_since = rnd(3) == 0 ? m->e.now : 0;
		mp->dra_dev = mp->gpu && rnd(3) == 0 ? (int)rnd(DEVS) : -1;
		if (mp->dra_dev >= 0)
			mp->bad_since = 0;
		if (mp->dra_dev >= 0) {
			/* The old pod goes first: evaluated against the new claim, it would look
			 * unhealthy for an instant, which the breaker would rightly remember. */
			if (kc_store_get(m->e.pods, mp->ns, mp->name))
				tb_del_pod(&m->e, mp->ns, mp->name);
			tb_put_claim(&m->e, build_claim(mp));
		}
		tb_put_pod(&m->e, build_pod(mp));
	} else if (op < 36) { /* a pod is deleted */
		if (!mp->exists)
			return;
		mp->exists = false;
		tb_del_pod(&m->e, mp->ns, mp->name);
	} else if (op < 40) { /* a DRA device taint appears or clears */
		int d = (int)rnd(DEVS);

		n->taint_since[d] = n->taint_since[d] ? 0 : m->e.now;
		tb_put_slice(&m->e, build_slice(ni, n));
	} else if (op < 44) { /* a node condition appears or clears */
		if (!n->exists)
			return;
		n->cond_since = n->cond_since ? 0 : m->e.now;
		tb_put_node(&m->e, build_node(ni, n));
	} else if (op < 50) { /* allocatable drops or recovers */
		if (!n->exists)
			return;
		n->drop_since = n->drop_since ? 0 : m->e.now;
		tb_put_node(&m->e, build_node(ni, n));
	} else if (op < 53) { /* a node goes away or comes back */
		if (n->exists) {
			n->exists = false;
			n->cond_since = n->drop_since = 0;
			tb_del_node(&m->e, node_name(ni));
		} else {
			n->exists = true;
			tb_put_node(&m->e, build_node(ni, n));
		}
	} else if (op < 56) {
		m->synced = !m->synced;
		core_set_synced(m->e.core, m->synced, m->e.now);
	} else if (op < 58) {
		m->active = !m->active;
		core_set_active(m->e.core, m->active, m->e.now);
	} else if (op < 61) { /* policy reload */
		tb_set_policy(&m->e, random_policy());
		m->n_hist = 0;
	} else if (op < 75) { /* an outstanding result arrives */
		for (int i = 0; i < MAX_FLIGHT; i++)
			if (m->flights[i].used && rnd(2)) {
				answer(m, &m->flights[i]);
				break;
			}
	} else { /* time passes, sometimes exactly to the next wake-up */
		uint64_t w = core_next_wakeup(m->e.core, m->e.now);

		if (rnd(2) && w != UINT64_MAX && w > m->e.now && w - m->e.now < 600000)
			m->e.now = w;
		else
			m->e.now += rnd(4) == 0 ? rnd(120000) : rnd(5000);
	}
}

static void run_case(uint64_t seed)
{
	struct model *m = calloc(1, sizeof(*m));
	int steps;

	case_seed = seed;
	rng = seed;
	m->n_nodes = 1 + (int)rnd(MAX_NODES);
	m->synced = rnd(4) != 0;
	m->active = true;
	m->mb_below_since = UINT64_MAX;
	tb_env_init(&m->e, random_policy(), m->synced);
	for (int i = 0; i < m->n_nodes; i++) {
		m->nodes[i].exists = true;
		tb_put_node(&m->e, build_node(i, &m->nodes[i]));
		tb_put_slice(&m->e, build_slice(i, &m->nodes[i]));
	}
	for (int i = 0; i < MAX_PODS; i++) {
		struct mpod *mp = &m->pods[i];

		if (rnd(2))
			continue;
		mp->exists = true;
		snprintf(mp->name, sizeof(mp->name), "p%d", i);
		mp->ns = rnd(2) ? "a" : "b";
		mp->gpu = rnd(5) != 0;
		mp->owner = rnd(8) == 0 ? OWN_DS : rnd(6) == 0 ? OWN_NONE : OWN_RS;
		new_uid(m, mp);
		mp->node = (int)rnd((unsigned)m->n_nodes);
		mp->bad_since = rnd(4) == 0 ? m->e.now : 0;
		mp->dra_dev = mp->gpu && rnd(3) == 0 ? (int)rnd(DEVS) : -1;
		if (mp->dra_dev >= 0)
			mp->bad_since = 0;
		if (mp->dra_dev >= 0)
			tb_put_claim(&m->e, build_claim(mp));
		tb_put_pod(&m->e, build_pod(mp));
	}
	drain(m);
	steps = 100 + (int)rnd(300);
	for (int s = 0; s < steps; s++) {
		step(m);
		drain(m);
	}
	total_actions += m->actions;
	total_evicted += m->n_done;
	total_held += core_stats(m->e.core)->held_by_limit;
	for (int i = 0; i < HEALTH_SIGNAL_COUNT; i++)
		total_by_signal[i] += core_stats(m->e.core)->actions_by_signal[i];
	tb_env_done(&m->e);
	free(m->done);
	free(m->dry);
	free(m);
}

static void test_random_clusters(void **state)
{
	const char *env = getenv("PROPERTY_SEED");
	const char *cases_env = getenv("PROPERTY_CASES");
	bool clock = env && strcmp(env, "time") == 0;
	uint64_t base = clock ? (uint64_t)time(NULL) : env ? strtoull(env, NULL, 10) : DEFAULT_SEED;
	unsigned cases = cases_env ? (unsigned)atoi(cases_env) : env && !clock ? 1 : DEFAULT_CASES;

	(void)state;
	printf("property: seed %llu, %u cases (PROPERTY_SEED=N runs case N alone, PROPERTY_SEED=time "
	       "explores)\n",
	       (unsigned long long)base, cases);
	fflush(stdout);
	for (case_no = 0; case_no < cases; case_no++)
		run_case(base + case_no);
	fflush(stdout);
	printf(
	    "property: %u cases from seed %llu passed (%llu actions, %llu UIDs done, %llu held by limits)\n",
	    cases, (unsigned long long)base, (unsigned long long)total_actions,
	    (unsigned long long)total_evicted, (unsigned long long)total_held);
	for (int i = 0; i < HEALTH_SIGNAL_COUNT; i++)
		printf("  %s: %llu actions\n", health_signal_name((enum health_signal)i),
		       (unsigned long long)total_by_signal[i]);
	fflush(stdout);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random_clusters),
	};

	kc_log_setup(-1, KC_LOG_TEXT, fopen("/dev/null", "w"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
