/*
 * Quarantine state per unit (a node or one DRA device), the cap, recovery
 * and the loop guard (see quarantine.h).
 *
 * A unit has a state (NONE, FENCED on the API, DRY: fenced only in a dry
 * run), what is wanted of it (nothing, ADD, REMOVE) and the write in flight.
 * Units exist while they are fenced, wanted, in flight, or named by a hit or
 * a node-level signal; the hit counts drive recovery.
 */
#include "quarantine.h"

#include <errno.h>
#include <string.h>

#include "kc_backoff.h"
#include "kc_util.h"
#include "strmap.h"

/* Retries of a failed write: from 1 s, doubling, to 1 min. */
#define RETRY_INITIAL_MS 1000
#define RETRY_MAX_MS 60000
/* The loop guard prunes expired entries once it holds this many. */
#define LOOP_PRUNE_AT 4096

enum ustate {
	U_NONE = 0,
	U_FENCED,
	U_DRY,
};

enum uwant {
	W_NONE = 0,
	W_ADD,
	W_REMOVE,
};

struct unit {
	enum quarantine_kind kind;
	char *unit, *node;
	char *driver, *pool, *device;
	char *signal, *resource, *message;
	enum ustate state;
	enum uwant want;
	bool in_flight;
	enum quarantine_op in_flight_op;
	bool waiting;	     /* pods wait for this fence */
	long refs;	     /* pod records with a hit needing this fence */
	bool node_signal;    /* node units: a node-level signal holds */
	bool was_unhealthy;
	bool expect_gone;    /* removed: the watch may still show the fence until it catches up */
	bool expect_present; /* written: the watch may still show the node without it until it catches up */
	uint64_t healthy_since;
	uint64_t retry_at;
	unsigned attempts;
};

struct loop_entry {
	uint64_t first, last;
};

struct quarantine {
	const struct policy *p;
	struct strmap units; /* "N\037node" or "D\037driver/pool/device" -> struct unit */
	struct strmap loops; /* "owner\037unit" -> struct loop_entry */
	struct quarantine_stats st;
	struct quarantine_action cur;
	char *done_node;
};

enum quarantine_fence quarantine_fence_for(const struct health_hit *hit)
{
	bool dra = strncmp(hit->resource, "claim:", 6) == 0;
	size_t len;

	switch (hit->signal) {
	case HEALTH_POD_RESOURCE:
		/* The kubelet drops an Unhealthy device-plugin device from allocatable. */
		if (!dra && strcmp(hit->state, "Unhealthy") == 0)
			return QUARANTINE_FENCE_NONE;
		break;
	case HEALTH_DRA_TAINT:
		/* The slice taint keeps the scheduler off the device, unless it is only a marker. */
		len = strlen(hit->detail);
		if (len < 5 || strcmp(hit->detail + len - 5, ":None") != 0)
			return QUARANTINE_FENCE_NONE;
		break;
	default:
		break;
	}
	if (dra && *hit->device) {
		const char *a = strchr(hit->device, '/');
		const char *b = a ? strchr(a + 1, '/') : NULL;

		if (a && b && a > hit->device && b > a + 1 && b[1])
			return QUARANTINE_FENCE_DEVICE;
	}
	return QUARANTINE_FENCE_NODE;
}

char *quarantine_unit_of(const struct health_hit *hit, const char *node)
{
	enum quarantine_fence f = quarantine_fence_for(hit);

	/* The loop guard's unit: where the scheduler would put the replacement back. */
	if (f == QUARANTINE_FENCE_NODE || !*hit->device)
		return kc_xasprintf("node/%s", node);
	return kc_xasprintf("%s|%s", hit->resource, hit->device);
}

/* ---- units ---- */

static void unit_free(struct unit *u)
{
	free(u->unit);
	free(u->node);
	free(u->driver);
	free(u->pool);
	free(u->device);
	free(u->signal);
	free(u->resource);
	free(u->message);
	free(u);
}

static void free_unit_value(void *value)
{
	unit_free(value);
}

struct quarantine *quarantine_new(const struct policy *p)
{
	struct quarantine *q = kc_xcalloc(1, sizeof(*q));

	q->p = p;
	strmap_init(&q->units, free_unit_value);
	strmap_init(&q->loops, free);
	return q;
}

struct quarantine *quarantine_free(struct quarantine *q)
{
	if (!q)
		return NULL;
	strmap_done(&q->units);
	strmap_done(&q->loops);
	free(q->done_node);
	free(q);
	return NULL;
}

static char *unit_key(enum quarantine_kind kind, const char *unit)
{
	return kc_xasprintf("%c\037%s", kind == QUARANTINE_NODE ? 'N' : 'D', unit);
}

static struct unit *unit_get(const struct quarantine *q, enum quarantine_kind kind, const char *unit)
{
	char *k = unit_key(kind, unit);
	struct unit *u = strmap_get(&q->units, k);

	free(k);
	return u;
}

static struct unit *unit_get_or_add(struct quarantine *q, enum quarantine_kind kind, const char *unit,
				    const char *node, uint64_t now_ms)
{
	struct unit *u = unit_get(q, kind, unit);
	char *k;

	if (u)
		return u;
	u = kc_xcalloc(1, sizeof(*u));
	u->kind = kind;
	u->unit = kc_xstrdup(unit);
	u->node = kc_xstrdup(node);
	u->signal = kc_xstrdup("");
	u->resource = kc_xstrdup("");
	u->message = kc_xstrdup("");
	u->healthy_since = now_ms;
	if (kind == QUARANTINE_DEVICE) {
		const char *a = strchr(unit, '/');
		const char *b = a ? strchr(a + 1, '/') : NULL;

		u->driver = a ? kc_xstrndup(unit, (size_t)(a - unit)) : kc_xstrdup("");
		u->pool = b ? kc_xstrndup(a + 1, (size_t)(b - a - 1)) : kc_xstrdup("");
		u->device = kc_xstrdup(b ? b + 1 : "");
	}
	k = unit_key(kind, unit);
	strmap_put(&q->units, k, u);
	free(k);
	return u;
}

static bool unhealthy(const struct unit *u)
{
	return u->refs > 0 || u->node_signal;
}

/* Starts the recovery clock when the last reason to keep the fence goes away. */
static void touch(struct unit *u, uint64_t now_ms)
{
	bool now = unhealthy(u);

	if (u->was_unhealthy && !now)
		u->healthy_since = now_ms;
	u->was_unhealthy = now;
}

/* Frees a unit nothing refers to any more. */
static void maybe_drop(struct quarantine *q, struct unit *u)
{
	char *k;

	if (u->state != U_NONE || u->want != W_NONE || u->in_flight || u->refs > 0 || u->node_signal ||
	    u->expect_gone)
		return;
	k = unit_key(u->kind, u->unit);
	strmap_remove(&q->units, k);
	free(k);
}

static bool fences_node(const struct unit *u)
{
	return u->state != U_NONE || u->want == W_ADD || (u->in_flight && u->in_flight_op == QUARANTINE_ADD);
}

struct node_count {
	struct strmap seen;
	const char *except;
	quarantine_node_cb cb;
	void *userdata;
};

static int count_node_cb(const char *key, void *value, void *userdata)
{
	struct node_count *nc = userdata;
	struct unit *u = value;

	(void)key;
	/* A rule listed after a restart names no node until a pod on its device shows up: most
	 * often its node is gone (scaled down), so it holds no place under the cap. */
	if (!fences_node(u) || !*u->node || (nc->except && strcmp(u->node, nc->except) == 0) ||
	    strmap_get(&nc->seen, u->node))
		return 0;
	strmap_put(&nc->seen, u->node, u);
	if (nc->cb)
		nc->cb(u->node, nc->userdata);
	return 0;
}

/* Distinct nodes fenced (or being fenced), except one. */
static size_t fenced_nodes(const struct quarantine *q, const char *except)
{
	struct node_count nc = {.except = except};
	size_t n;

	strmap_init(&nc.seen, NULL);
	strmap_foreach(&q->units, count_node_cb, &nc);
	n = nc.seen.count;
	strmap_done(&nc.seen);
	return n;
}

void quarantine_foreach_node(const struct quarantine *q, quarantine_node_cb cb, void *userdata)
{
	struct node_count nc = {.cb = cb, .userdata = userdata};

	if (!q->units.count)
		return;  /* the common case, on every pod event: no map to build */
	strmap_init(&nc.seen, NULL);
	strmap_foreach(&q->units, count_node_cb, &nc);
	strmap_done(&nc.seen);
}

bool quarantine_node_fenced(const struct quarantine *q, const char *node)
{
	return fenced_nodes(q, NULL) != fenced_nodes(q, node);
}

/* The most nodes that may be quarantined at once: the smaller of the two caps; at least 1. */
static size_t node_cap(const struct policy *p, uint32_t device_nodes)
{
	size_t cap = SIZE_MAX;

	if (p->max_quarantined_nodes)
		cap = p->max_quarantined_nodes;
	if (p->max_quarantined_percent) {
		size_t pc = (size_t)device_nodes * p->max_quarantined_percent / 100;

		if (pc < 1)
			pc = 1;
		if (pc < cap)
			cap = pc;
	}
	return cap;
}

struct policy_ctx {
	const struct policy *p;
	uint64_t now;
};

static int apply_policy_cb(const char *key, void *value, void *userdata)
{
	struct policy_ctx *pc = userdata;
	struct unit *u = value;

	(void)key;
	if (u->state == U_DRY && !pc->p->dry_run)
		u->state = U_NONE;
	if (!pc->p->remediation_enabled) {
		if (u->state == U_DRY)
			u->state = U_NONE;
		if (u->want == W_ADD)
			u->want = W_NONE;
		if (u->state == U_FENCED || (u->in_flight && u->in_flight_op == QUARANTINE_ADD))
			u->want = W_REMOVE;
		u->retry_at = 0;
		u->attempts = 0;
	}
	return 0;
}

void quarantine_set_policy(struct quarantine *q, const struct policy *p, uint64_t now_ms)
{
	struct policy_ctx pc = {p, now_ms};

	q->p = p;
	strmap_foreach(&q->units, apply_policy_cb, &pc);
}

/* Which unit a fence of this hit is: its kind and name; the caller frees *ret_unit. */
static enum quarantine_fence resolve(const struct quarantine *q, const struct health_hit *hit, const char *node,
				     char **ret_unit)
{
	enum quarantine_fence f = quarantine_fence_for(hit);

	if (f == QUARANTINE_FENCE_DEVICE && (q->st.no_rule_api || !q->p->device_taint_rules))
		f = QUARANTINE_FENCE_NODE;
	*ret_unit = f == QUARANTINE_FENCE_DEVICE ? kc_xstrdup(hit->device) : kc_xstrdup(node);
	return f;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = kc_xstrdup(s);
}

enum quarantine_need quarantine_need(struct quarantine *q, const struct health_hit *hit, const char *node,
				     uint32_t device_nodes, bool dry_run, bool *ret_new_dry, uint64_t now_ms)
{
	enum quarantine_fence f;
	enum quarantine_kind kind;
	struct unit *u;
	char *name;

	*ret_new_dry = false;
	if (!q->p->remediation_enabled || !node || !*node)
		return QUARANTINE_READY;
	f = resolve(q, hit, node, &name);
	if (f == QUARANTINE_FENCE_NONE) {
		free(name);
		return QUARANTINE_READY;
	}
	kind = f == QUARANTINE_FENCE_DEVICE ? QUARANTINE_DEVICE : QUARANTINE_NODE;
	u = unit_get_or_add(q, kind, name, node, now_ms);
	free(name);
	if (u->state == U_FENCED && u->want == W_REMOVE && !u->in_flight)
		u->want = W_NONE; /* unhealthy again before the removal went out: keep it */
	if ((u->state == U_FENCED && !(u->in_flight && u->in_flight_op == QUARANTINE_REMOVE)) ||
	    u->state == U_DRY)
		return QUARANTINE_READY;
	if (u->state == U_FENCED || u->want == W_ADD || u->in_flight) {
		/* Being added, or being removed (then added again). */
		u->want = W_ADD;
		u->waiting = true;
		return QUARANTINE_WAIT;
	}
	if (fenced_nodes(q, node) + 1 > node_cap(q->p, device_nodes)) {
		q->st.capped++;
		q->st.at_cap = true;
		maybe_drop(q, u);
		return QUARANTINE_CAPPED;
	}
	q->st.at_cap = false; /* there was room */
	set_str(&u->signal, health_signal_name(hit->signal));
	set_str(&u->resource, hit->resource);
	set_str(&u->message, hit->detail);
	if (dry_run) {
		u->state = U_DRY;
		*ret_new_dry = true;
		return QUARANTINE_READY;
	}
	u->want = W_ADD;
	u->waiting = true;
	u->retry_at = 0;
	u->attempts = 0;
	return QUARANTINE_WAIT;
}

void quarantine_hit(struct quarantine *q, const struct health_hit *hit, const char *node, int delta,
		    uint64_t now_ms)
{
	enum quarantine_fence f = quarantine_fence_for(hit);
	struct unit *u;

	if (f == QUARANTINE_FENCE_NONE || !node || !*node)
		return;
	/* A device hit also keeps its node's fence (a fallback may have fenced the node for it). */
	u = unit_get_or_add(q, QUARANTINE_NODE, node, node, now_ms);
	u->refs += delta;
	touch(u, now_ms);
	maybe_drop(q, u);
	if (f == QUARANTINE_FENCE_DEVICE) {
		u = unit_get_or_add(q, QUARANTINE_DEVICE, hit->device, node, now_ms);
		if (!*u->node)
			set_str(&u->node, node); /* a rule listed after a restart names no node */
		u->refs += delta;
		touch(u, now_ms);
		maybe_drop(q, u);
	}
}

void quarantine_node_signal(struct quarantine *q, const char *node, bool signal, uint64_t now_ms)
{
	struct unit *u = signal ? unit_get_or_add(q, QUARANTINE_NODE, node, node, now_ms)
				: unit_get(q, QUARANTINE_NODE, node);

	if (!u)
		return;
	u->node_signal = signal;
	touch(u, now_ms);
	maybe_drop(q, u);
}

static bool node_is_ours(const struct policy *p, const struct kc_node *node)
{
	for (uint32_t i = 0; i < node->meta.n_annotations; i++)
		if (strcmp(kc_meta_annotations(&node->meta)[i].key, QUARANTINE_ANNOTATION) == 0)
			return true;
	/* Exactly our key and effect: a similar key, or our key with another effect, is someone else's. */
	for (uint32_t i = 0; i < node->n_taints; i++)
		if (strcmp(node->taints[i].key, p->fence_key) == 0 && strcmp(node->taints[i].effect, p->fence_effect) == 0)
			return true;
	return false;
}

static bool confirm(struct quarantine *q, struct unit *u, uint64_t now_ms)
{
	bool waited = u->waiting;

	if (u->state == U_NONE)
		u->healthy_since = now_ms;
	u->state = U_FENCED;
	if (u->want == W_ADD)
		u->want = W_NONE;
	if (!q->p->remediation_enabled)
		u->want = W_REMOVE; /* found after a restart with remediation turned off */
	u->waiting = false;
	u->retry_at = 0;
	u->attempts = 0;
	touch(u, now_ms);
	if (waited) {
		free(q->done_node);
		q->done_node = kc_xstrdup(u->node);
	}
	return waited;
}

bool quarantine_observe_node(struct quarantine *q, const struct kc_node *node, bool deleted, uint64_t now_ms)
{
	struct unit *u = unit_get(q, QUARANTINE_NODE, node->meta.name);

	if (deleted) {
		if (u) {
			u->state = U_NONE;
			u->want = W_NONE;
			u->node_signal = false;
			u->expect_gone = false;
			u->expect_present = false;
			maybe_drop(q, u);
		}
		return false;
	}
	if (node_is_ours(q->p, node)) {
		if (u && u->expect_gone && u->state == U_NONE)
			return false; /* an event from before our removal */
		if (u)
			u->expect_present = false;
		if (!u)
			u = unit_get_or_add(q, QUARANTINE_NODE, node->meta.name, node->meta.name, now_ms);
		if (u->state == U_FENCED)
			return false;
		if (u->in_flight && u->in_flight_op == QUARANTINE_REMOVE)
			return false; /* the removal's answer decides */
		return confirm(q, u, now_ms);
	}
	if (u && u->expect_gone) {
		u->expect_gone = false; /* the watch has seen the removal */
		maybe_drop(q, u);
		return false;
	}
	/*
	 * Not fenced as the API shows it.  Until the watch has shown our own write
	 * (expect_present), that is an event from before it: the answer can
	 * overtake the watch.  After that, someone removed the fence: it is not to
	 * be relied on, and the next eviction that needs it asks for it again.
	 */
	if (u && u->state == U_FENCED && !u->in_flight && !u->expect_present) {
		u->state = U_NONE;
		if (u->want == W_REMOVE)
			u->want = W_NONE;
		maybe_drop(q, u);
	}
	return false;
}

static int synced_cb(const char *key, void *value, void *userdata)
{
	struct unit *u = value;
	const uint64_t *now = userdata;

	(void)key;
	if (u->healthy_since < *now)
		u->healthy_since = *now;
	return 0;
}

void quarantine_synced(struct quarantine *q, uint64_t now_ms)
{
	strmap_foreach(&q->units, synced_cb, &now_ms);
}

void quarantine_observe_rule(struct quarantine *q, const char *driver, const char *pool, const char *device,
			     uint64_t now_ms)
{
	char *name = kc_xasprintf("%s/%s/%s", driver, pool, device);
	struct unit *u = unit_get_or_add(q, QUARANTINE_DEVICE, name, "", now_ms);

	free(name);
	if (u->state != U_FENCED && !u->in_flight)
		confirm(q, u, now_ms);
}

static void fill(struct quarantine *q, struct unit *u, enum quarantine_op op, struct quarantine_action *ret)
{
	u->in_flight = true;
	u->in_flight_op = op;
	memset(ret, 0, sizeof(*ret));
	ret->kind = u->kind;
	ret->op = op;
	ret->unit = u->unit;
	ret->node = u->node;
	ret->driver = u->driver ? u->driver : "";
	ret->pool = u->pool ? u->pool : "";
	ret->device = u->device ? u->device : "";
	ret->signal = u->signal;
	ret->resource = u->resource;
	ret->message = u->message;
	q->cur = *ret;
}

static bool recovered(const struct quarantine *q, const struct unit *u, uint64_t now_ms)
{
	return !unhealthy(u) && now_ms >= u->healthy_since + q->p->recover_after_ms;
}

struct next_ctx {
	const struct quarantine *q;
	bool act; /* quarantine_next_action: may update units; quarantine_next_wakeup: only looks */
	uint64_t now;
	struct unit *found;
	enum quarantine_op op;
	uint64_t wake;
};

static int next_cb(const char *key, void *value, void *userdata)
{
	struct next_ctx *nc = userdata;
	struct unit *u = value;
	uint64_t at;

	(void)key;
	if (u->in_flight)
		return 0;
	if (u->state == U_DRY && recovered(nc->q, u, nc->now)) {
		if (nc->act)
			u->state = U_NONE; /* nothing was written: nothing to undo */
		return 0;
	}
	if (u->want == W_ADD && u->state == U_NONE) {
		if (u->retry_at <= nc->now) {
			nc->found = u;
			nc->op = QUARANTINE_ADD;
			return 1;
		}
		if (u->retry_at < nc->wake)
			nc->wake = u->retry_at;
		return 0;
	}
	if (u->state != U_FENCED || u->want == W_ADD)
		return 0;
	at = u->want == W_REMOVE ? 0
	     : unhealthy(u)	 ? UINT64_MAX
				 : u->healthy_since + nc->q->p->recover_after_ms;
	if (u->retry_at > at)
		at = u->retry_at;
	if (at <= nc->now) {
		nc->found = u;
		nc->op = QUARANTINE_REMOVE;
		return 1;
	}
	if (at < nc->wake)
		nc->wake = at;
	return 0;
}

int quarantine_next_action(struct quarantine *q, uint64_t now_ms, struct quarantine_action *ret)
{
	struct next_ctx nc = {q, true, now_ms, NULL, QUARANTINE_ADD, UINT64_MAX};

	strmap_foreach(&q->units, next_cb, &nc);
	if (!nc.found)
		return -EAGAIN;
	fill(q, nc.found, nc.op, ret);
	return 0;
}

uint64_t quarantine_next_wakeup(const struct quarantine *q, uint64_t now_ms)
{
	struct next_ctx nc = {q, false, now_ms, NULL, QUARANTINE_ADD, UINT64_MAX};

	strmap_foreach(&q->units, next_cb, &nc);
	return nc.found ? now_ms : nc.wake;
}

const char *quarantine_done(struct quarantine *q, enum quarantine_kind kind, const char *unit,
			    enum quarantine_result r, uint64_t now_ms)
{
	struct unit *u = unit_get(q, kind, unit);
	enum quarantine_op op;

	free(q->done_node);
	q->done_node = NULL;
	if (!u || !u->in_flight)
		return NULL;
	u->in_flight = false;
	op = u->in_flight_op;
	if (r == QUARANTINE_UNSUPPORTED && kind == QUARANTINE_DEVICE) {
		/* From now on devices are fenced by their node; the waiting pods ask again. */
		q->st.no_rule_api = true;
		q->done_node = kc_xstrdup(u->node);
		u->state = U_NONE;
		u->want = W_NONE;
		u->waiting = false;
		maybe_drop(q, u);
		return q->done_node;
	}
	if (r != QUARANTINE_OK) {
		uint64_t d = kc_backoff_cap(RETRY_INITIAL_MS, RETRY_MAX_MS, ++u->attempts);

		u->retry_at = now_ms + d;
		return NULL;
	}
	u->retry_at = 0;
	u->attempts = 0;
	if (op == QUARANTINE_ADD) {
		q->st.adds++;
		if (u->state == U_FENCED) {
			u->waiting = false;
			return NULL; /* the watch confirmed it first */
		}
		confirm(q, u, now_ms);
		u->expect_present = kind == QUARANTINE_NODE;
		return q->done_node;
	}
	q->st.removes++;
	q->st.at_cap = false; /* room again */
	u->state = U_NONE;
	u->expect_gone = kind == QUARANTINE_NODE;
	u->expect_present = false;
	if (u->want == W_REMOVE)
		u->want = W_NONE;
	maybe_drop(q, u);
	return NULL;
}

struct stats_ctx {
	uint32_t nodes, devices;
};

static int stats_cb(const char *key, void *value, void *userdata)
{
	struct stats_ctx *sc = userdata;
	const struct unit *u = value;

	(void)key;
	if (u->state == U_NONE)
		return 0;
	if (u->kind == QUARANTINE_NODE)
		sc->nodes++;
	else
		sc->devices++;
	return 0;
}

const struct quarantine_stats *quarantine_stats(const struct quarantine *q)
{
	struct quarantine *m = (struct quarantine *)q; /* gauges computed on read */
	struct stats_ctx sc = {0, 0};

	strmap_foreach(&q->units, stats_cb, &sc);
	m->st.nodes = sc.nodes;
	m->st.devices = sc.devices;
	return &q->st;
}

/* ---- the loop guard ---- */

static char *loop_key(const char *owner, const char *unit)
{
	return kc_xasprintf("%s\037%s", owner, unit);
}

bool quarantine_loop_check(const struct quarantine *q, const char *owner, const char *unit, uint64_t pod_seen_ms,
			   uint64_t now_ms)
{
	char *k;
	const struct loop_entry *e;

	if (!*owner || !q->p->loop_window_ms)
		return false;
	k = loop_key(owner, unit);
	e = strmap_get(&q->loops, k);
	free(k);
	return e && now_ms < e->last + q->p->loop_window_ms && pod_seen_ms > e->first;
}

struct prune_ctx {
	uint64_t now, window;
	char **dead;
	size_t n;
};

static int prune_cb(const char *key, void *value, void *userdata)
{
	struct prune_ctx *pc = userdata;
	const struct loop_entry *e = value;

	if (pc->now >= e->last + pc->window) {
		pc->dead = kc_xrealloc(pc->dead, (pc->n + 1) * sizeof(*pc->dead));
		pc->dead[pc->n++] = kc_xstrdup(key);
	}
	return 0;
}

void quarantine_loop_record(struct quarantine *q, const char *owner, const char *unit, uint64_t now_ms)
{
	char *k;
	struct loop_entry *e;

	if (!*owner || !q->p->loop_window_ms)
		return;
	if (q->loops.count >= LOOP_PRUNE_AT) {
		struct prune_ctx pc = {now_ms, q->p->loop_window_ms, NULL, 0};

		strmap_foreach(&q->loops, prune_cb, &pc);
		for (size_t i = 0; i < pc.n; i++) {
			strmap_remove(&q->loops, pc.dead[i]);
			free(pc.dead[i]);
		}
		free(pc.dead);
	}
	k = loop_key(owner, unit);
	e = strmap_get(&q->loops, k);
	if (!e) {
		e = kc_xcalloc(1, sizeof(*e));
		strmap_put(&q->loops, k, e);
		e->first = now_ms;
	} else if (now_ms >= e->last + q->p->loop_window_ms) {
		e->first = now_ms; /* a new episode */
	}
	e->last = now_ms;
	free(k);
}
