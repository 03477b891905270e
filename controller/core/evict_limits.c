/*
 * Token buckets, the in-flight cap and the circuit breaker (see evict_limits.h).
 *
 * A bucket holds tokens scaled by the window: one token is `window_ms`
 * units, the capacity is max * window_ms units, and every elapsed
 * millisecond adds `max` units.  That keeps the arithmetic exact in integers.
 * Per-node and per-namespace buckets live in maps; a full bucket carries no
 * information, so full ones are dropped when the maps grow.
 */
#include "evict_limits.h"

#include <stdio.h>
#include <string.h>

#include "kc_util.h"
#include "strmap.h"

/* Keys are pruned of full buckets when a map grows past this many entries. */
#define PRUNE_AT 4096

struct bucket {
	uint64_t units; /* tokens * window_ms */
	uint64_t last_ms;
};

struct rate {
	uint64_t max;	 /* tokens per window; 0 = unlimited */
	uint64_t window; /* ms, >= 1 */
};

struct limits {
	struct rate node_rate, ns_rate, total_rate;
	struct bucket total;
	struct strmap nodes; /* name -> struct bucket */
	struct strmap nss;	 /* namespace -> struct bucket */
	uint32_t max_in_flight;
	uint32_t in_flight;
	bool breaker_enabled;
	uint32_t breaker_max_nodes, breaker_max_percent, breaker_min_nodes;
	bool breaker_open;
	char breaker_reason[160];
};

static uint64_t cap_units(const struct rate *r)
{
	return r->max * r->window;
}

static void refill(const struct rate *r, struct bucket *b, uint64_t now_ms)
{
	uint64_t cap = cap_units(r), dt;

	if (now_ms <= b->last_ms)
		return;
	dt = now_ms - b->last_ms;
	b->last_ms = now_ms;
	if (dt >= r->window || b->units + dt * r->max >= cap)
		b->units = cap;
	else
		b->units += dt * r->max;
}

/* 0 if a token is there now, else the ms until one is. */
static uint64_t bucket_wait(const struct rate *r, struct bucket *b, uint64_t now_ms)
{
	if (!r->max)
		return 0;
	refill(r, b, now_ms);
	if (b->units >= r->window)
		return 0;
	return (r->window - b->units + r->max - 1) / r->max;
}

static void bucket_take(const struct rate *r, struct bucket *b, uint64_t now_ms)
{
	if (!r->max)
		return;
	refill(r, b, now_ms);
	b->units = b->units >= r->window ? b->units - r->window : 0;
}

static void rate_set(struct rate *r, uint32_t max, uint64_t window_ms)
{
	r->max = max;
	/* Bounded so that max * window fits in 64 bits. */
	r->window = window_ms ? (window_ms > (1ULL << 31) ? (1ULL << 31) : window_ms) : 1;
}

/* Keeps the token count of a bucket across a change of rate. */
static void bucket_rescale(const struct rate *from, const struct rate *to, struct bucket *b, uint64_t now_ms)
{
	double tokens;

	if (from->max)
		refill(from, b, now_ms);
	tokens = from->max ? (double)b->units / (double)from->window : (double)to->max;
	if (tokens > (double)to->max)
		tokens = (double)to->max;
	b->units = (uint64_t)(tokens * (double)to->window);
	b->last_ms = now_ms;
}

struct rescale_ctx {
	const struct rate *from, *to;
	uint64_t now;
};

static int rescale_cb(const char *key, void *value, void *userdata)
{
	struct rescale_ctx *c = userdata;

	(void)key;
	bucket_rescale(c->from, c->to, value, c->now);
	return 0;
}

static void apply(struct limits *l, const struct policy *p, uint64_t now_ms, bool fresh)
{
	struct rate node_rate, ns_rate, total_rate;

	rate_set(&node_rate, p->max_per_node, p->window_ms);
	rate_set(&ns_rate, p->max_per_namespace, p->window_ms);
	rate_set(&total_rate, p->max_total, p->window_ms);
	if (fresh) {
		l->total.units = cap_units(&total_rate);
		l->total.last_ms = now_ms;
	} else {
		struct rescale_ctx c = {&l->node_rate, &node_rate, now_ms};

		strmap_foreach(&l->nodes, rescale_cb, &c);
		c.from = &l->ns_rate;
		c.to = &ns_rate;
		strmap_foreach(&l->nss, rescale_cb, &c);
		bucket_rescale(&l->total_rate, &total_rate, &l->total, now_ms);
	}
	l->node_rate = node_rate;
	l->ns_rate = ns_rate;
	l->total_rate = total_rate;
	l->max_in_flight = p->max_in_flight;
	l->breaker_enabled = p->breaker_enabled;
	l->breaker_max_nodes = p->breaker_max_nodes;
	l->breaker_max_percent = p->breaker_max_percent;
	l->breaker_min_nodes = p->breaker_min_nodes;
}

struct limits *limits_new(const struct policy *p, uint64_t now_ms)
{
	struct limits *l = kc_xcalloc(1, sizeof(*l));

	strmap_init(&l->nodes, free);
	strmap_init(&l->nss, free);
	apply(l, p, now_ms, true);
	return l;
}

struct limits *limits_free(struct limits *l)
{
	if (!l)
		return NULL;
	strmap_done(&l->nodes);
	strmap_done(&l->nss);
	free(l);
	return NULL;
}

void limits_set_policy(struct limits *l, const struct policy *p, uint64_t now_ms)
{
	apply(l, p, now_ms, false);
}

static const char *const hold_names[] = {
    [LIMITS_OK] = "none",
    [LIMITS_HOLD_IN_FLIGHT] = "maxInFlight",
    [LIMITS_HOLD_TOTAL] = "maxTotal",
    [LIMITS_HOLD_NODE] = "maxPerNode",
    [LIMITS_HOLD_NAMESPACE] = "maxPerNamespace",
    [LIMITS_HOLD_BREAKER] = "circuitBreaker",
};

const char *limits_hold_name(enum limits_hold h)
{
	return (unsigned)h < KC_ARRAY_SIZE(hold_names) ? hold_names[h] : "unknown";
}

/* A keyed bucket, created full when absent (then not stored until something is taken). */
static struct bucket *keyed(struct strmap *m, const struct rate *r, const char *key, uint64_t now_ms,
			    struct bucket *tmp)
{
	struct bucket *b = strmap_get(m, key);

	if (b)
		return b;
	tmp->units = cap_units(r);
	tmp->last_ms = now_ms;
	return tmp;
}

enum limits_hold limits_check(struct limits *l, const char *ns, const char *node, bool in_flight,
			      uint64_t now_ms, uint64_t *ret_wake_ms)
{
	struct bucket tmp;
	uint64_t w;

	if (l->breaker_open) {
		if (ret_wake_ms)
			*ret_wake_ms = UINT64_MAX;
		return LIMITS_HOLD_BREAKER;
	}
	if (in_flight && l->max_in_flight && l->in_flight >= l->max_in_flight) {
		if (ret_wake_ms)
			*ret_wake_ms = UINT64_MAX;
		return LIMITS_HOLD_IN_FLIGHT;
	}
	w = bucket_wait(&l->total_rate, &l->total, now_ms);
	if (w) {
		if (ret_wake_ms)
			*ret_wake_ms = now_ms + w;
		return LIMITS_HOLD_TOTAL;
	}
	w = bucket_wait(&l->node_rate, keyed(&l->nodes, &l->node_rate, node, now_ms, &tmp), now_ms);
	if (w) {
		if (ret_wake_ms)
			*ret_wake_ms = now_ms + w;
		return LIMITS_HOLD_NODE;
	}
	w = bucket_wait(&l->ns_rate, keyed(&l->nss, &l->ns_rate, ns, now_ms, &tmp), now_ms);
	if (w) {
		if (ret_wake_ms)
			*ret_wake_ms = now_ms + w;
		return LIMITS_HOLD_NAMESPACE;
	}
	return LIMITS_OK;
}

uint64_t limits_wake(const struct limits *l, bool in_flight, uint64_t now_ms)
{
	struct bucket total = l->total;
	uint64_t w;

	if (l->breaker_open || (in_flight && l->max_in_flight && l->in_flight >= l->max_in_flight))
		return UINT64_MAX;
	w = bucket_wait(&l->total_rate, &total, now_ms);
	return now_ms + w;
}

struct prune_ctx {
	const struct rate *r;
	uint64_t now;
	char **keys;
	size_t n;
};

static int collect_full(const char *key, void *value, void *userdata)
{
	struct prune_ctx *c = userdata;

	refill(c->r, value, c->now);
	if (((struct bucket *)value)->units >= cap_units(c->r)) {
		c->keys = kc_xrealloc(c->keys, (c->n + 1) * sizeof(*c->keys));
		c->keys[c->n++] = kc_xstrdup(key);
	}
	return 0;
}

static void prune(struct strmap *m, const struct rate *r, uint64_t now_ms)
{
	struct prune_ctx c = {r, now_ms, NULL, 0};

	strmap_foreach(m, collect_full, &c);
	for (size_t i = 0; i < c.n; i++) {
		strmap_remove(m, c.keys[i]);
		free(c.keys[i]);
	}
	free(c.keys);
}

static void take_keyed(struct strmap *m, const struct rate *r, const char *key, uint64_t now_ms)
{
	struct bucket *b;

	if (!r->max)
		return;
	b = strmap_get(m, key);
	if (!b) {
		if (m->count >= PRUNE_AT)
			prune(m, r, now_ms);
		b = kc_xmalloc(sizeof(*b));
		b->units = cap_units(r);
		b->last_ms = now_ms;
		strmap_put(m, key, b);
	}
	bucket_take(r, b, now_ms);
}

void limits_take(struct limits *l, const char *ns, const char *node, bool in_flight, uint64_t now_ms)
{
	bucket_take(&l->total_rate, &l->total, now_ms);
	take_keyed(&l->nodes, &l->node_rate, node, now_ms);
	take_keyed(&l->nss, &l->ns_rate, ns, now_ms);
	if (in_flight)
		l->in_flight++;
}

void limits_done(struct limits *l)
{
	if (l->in_flight)
		l->in_flight--;
}

uint32_t limits_in_flight(const struct limits *l)
{
	return l->in_flight;
}

enum limits_breaker_change limits_breaker_update(struct limits *l, uint32_t device_nodes,
						 uint32_t unhealthy_nodes)
{
	bool open = false;

	l->breaker_reason[0] = '\0';
	if (l->breaker_enabled) {
		if (l->breaker_max_nodes && unhealthy_nodes > l->breaker_max_nodes) {
			open = true;
			snprintf(l->breaker_reason, sizeof(l->breaker_reason),
				 "%u of %u device nodes are unhealthy (maximum %u)", unhealthy_nodes,
				 device_nodes, l->breaker_max_nodes);
		} else if (l->breaker_max_percent && device_nodes >= l->breaker_min_nodes && device_nodes &&
			   (uint64_t)unhealthy_nodes * 100 >
			       (uint64_t)l->breaker_max_percent * device_nodes) {
			open = true;
			snprintf(l->breaker_reason, sizeof(l->breaker_reason),
				 "%u of %u device nodes (%u%%) are unhealthy (maximum %u%%)", unhealthy_nodes,
				 device_nodes, (unsigned)((uint64_t)unhealthy_nodes * 100 / device_nodes),
				 l->breaker_max_percent);
		}
	}
	if (!open)
		snprintf(l->breaker_reason, sizeof(l->breaker_reason), "%u of %u device nodes are unhealthy",
			 unhealthy_nodes, device_nodes);
	if (open == l->breaker_open)
		return LIMITS_BREAKER_SAME;
	l->breaker_open = open;
	return open ? LIMITS_BREAKER_OPENED : LIMITS_BREAKER_CLOSED;
}

bool limits_breaker_open(const struct limits *l)
{
	return l->breaker_open;
}

const char *limits_breaker_reason(const struct limits *l)
{
	return l->breaker_reason;
}
