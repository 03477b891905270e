/*
 * Sliding logs, the in-flight cap and the circuit breaker (see evict_limits.h).
 *
 * Each limit keeps a log of the times of its most recent evictions, oldest
 * first.  An eviction at `now` may start when fewer than `max` logged ones lie
 * in (now - window, now]; then every half-open interval of length `window`
 * holds at most `max` evictions, which is exactly what the policy promises.
 * Only the `max` most recent times can ever matter, so a log never holds more,
 * and entries older than the window are dropped as evictions are added.
 * Per-node and per-namespace logs live in maps; a log with nothing inside the
 * window carries no information, so such logs are dropped when a map grows.
 */
#include "evict_limits.h"

#include <stdio.h>
#include <string.h>

#include "kc_util.h"
#include "strmap.h"

/* Keys are pruned of expired logs when a map grows past this many entries. */
#define PRUNE_AT 4096

struct slog {
	uint64_t *t; /* eviction times, oldest first */
	uint32_t len, cap;
};

/* The logs of one kind of eviction: the real ones, or the ones reported in dry run. */
struct ledger {
	struct slog total;
	struct strmap nodes; /* name -> struct slog */
	struct strmap nss;   /* namespace -> struct slog */
};

struct limits {
	uint64_t window; /* ms, >= 1 */
	uint32_t max_node, max_ns, max_total; /* per window; 0 = unlimited */
	struct ledger real, dry;
	uint32_t max_in_flight;
	uint32_t in_flight;
	bool breaker_enabled;
	uint32_t breaker_max_nodes, breaker_max_percent, breaker_min_nodes;
	uint64_t breaker_close_after;
	bool breaker_open;
	uint64_t breaker_below_since; /* UINT64_MAX: the condition holds (or the breaker is closed) */
	uint32_t breaker_device_nodes, breaker_unhealthy_nodes; /* of the last limits_breaker_update() */
	char breaker_reason[192];  /* filled by limits_breaker_reason() */
};

/* Whether time t still counts at now: t lies in (now - window, now]. */
static bool in_window(uint64_t t, uint64_t window, uint64_t now)
{
	return t + window > now;
}

/* 0 when one more eviction fits at now, else the ms until it does. */
static uint64_t slog_wait(const struct slog *s, uint32_t max, uint64_t window, uint64_t now)
{
	uint64_t oldest;

	if (!max || s->len < max)
		return 0;
	/* The max-th most recent time must leave the window first. */
	oldest = s->t[s->len - max];
	return in_window(oldest, window, now) ? oldest + window - now : 0;
}

static void slog_take(struct slog *s, uint32_t max, uint64_t window, uint64_t now)
{
	uint32_t drop = 0;

	if (!max)
		return;
	/* Times are kept in order even if a caller's clock stepped back. */
	if (s->len && now < s->t[s->len - 1])
		now = s->t[s->len - 1];
	while (drop < s->len && !in_window(s->t[drop], window, now))
		drop++;
	if (s->len - drop >= max)
		drop = s->len - max + 1;
	if (drop) {
		memmove(s->t, s->t + drop, (s->len - drop) * sizeof(*s->t));
		s->len -= drop;
	}
	if (s->len == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		if (s->cap > max)
			s->cap = max;
		s->t = kc_xrealloc(s->t, s->cap * sizeof(*s->t));
	}
	s->t[s->len++] = now;
}

static bool slog_expired(const struct slog *s, uint64_t window, uint64_t now)
{
	return !s->len || !in_window(s->t[s->len - 1], window, now);
}

static void slog_free(void *value)
{
	struct slog *s = value;

	if (s)
		free(s->t);
	free(s);
}

static void ledger_init(struct ledger *g)
{
	memset(g, 0, sizeof(*g));
	strmap_init(&g->nodes, slog_free);
	strmap_init(&g->nss, slog_free);
}

static void ledger_done(struct ledger *g)
{
	free(g->total.t);
	strmap_done(&g->nodes);
	strmap_done(&g->nss);
}

static void apply(struct limits *l, const struct policy *p)
{
	l->window = p->window_ms ? p->window_ms : 1;
	l->max_node = p->max_per_node;
	l->max_ns = p->max_per_namespace;
	l->max_total = p->max_total;
	l->max_in_flight = p->max_in_flight;
	l->breaker_enabled = p->breaker_enabled;
	l->breaker_max_nodes = p->breaker_max_nodes;
	l->breaker_max_percent = p->breaker_max_percent;
	l->breaker_min_nodes = p->breaker_min_nodes;
	l->breaker_close_after = p->breaker_close_after_ms;
}

struct limits *limits_new(const struct policy *p, uint64_t now_ms)
{
	struct limits *l = kc_xcalloc(1, sizeof(*l));

	(void)now_ms;
	ledger_init(&l->real);
	ledger_init(&l->dry);
	l->breaker_below_since = UINT64_MAX;
	apply(l, p);
	return l;
}

struct limits *limits_free(struct limits *l)
{
	if (!l)
		return NULL;
	ledger_done(&l->real);
	ledger_done(&l->dry);
	free(l);
	return NULL;
}

void limits_set_policy(struct limits *l, const struct policy *p, uint64_t now_ms)
{
	(void)now_ms;
	apply(l, p);
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

static uint64_t keyed_wait(const struct strmap *m, const char *key, uint32_t max, uint64_t window,
			   uint64_t now)
{
	const struct slog *s = max ? strmap_get(m, key) : NULL;

	return s ? slog_wait(s, max, window, now) : 0;
}

static enum limits_hold hold(enum limits_hold h, uint64_t wake, uint64_t *ret_wake_ms)
{
	if (ret_wake_ms)
		*ret_wake_ms = wake;
	return h;
}

enum limits_hold limits_check(struct limits *l, const char *ns, const char *node, bool dry_run,
			      uint64_t now_ms, uint64_t *ret_wake_ms)
{
	const struct ledger *g = dry_run ? &l->dry : &l->real;
	uint64_t w;

	if (l->breaker_open)
		return hold(LIMITS_HOLD_BREAKER, UINT64_MAX, ret_wake_ms);
	if (!dry_run && l->max_in_flight && l->in_flight >= l->max_in_flight)
		return hold(LIMITS_HOLD_IN_FLIGHT, UINT64_MAX, ret_wake_ms);
	w = slog_wait(&g->total, l->max_total, l->window, now_ms);
	if (w)
		return hold(LIMITS_HOLD_TOTAL, now_ms + w, ret_wake_ms);
	w = keyed_wait(&g->nodes, node, l->max_node, l->window, now_ms);
	if (w)
		return hold(LIMITS_HOLD_NODE, now_ms + w, ret_wake_ms);
	w = keyed_wait(&g->nss, ns, l->max_ns, l->window, now_ms);
	if (w)
		return hold(LIMITS_HOLD_NAMESPACE, now_ms + w, ret_wake_ms);
	return LIMITS_OK;
}

uint64_t limits_wake(const struct limits *l, bool dry_run, uint64_t now_ms)
{
	const struct ledger *g = dry_run ? &l->dry : &l->real;

	if (l->breaker_open || (!dry_run && l->max_in_flight && l->in_flight >= l->max_in_flight))
		return UINT64_MAX;
	return now_ms + slog_wait(&g->total, l->max_total, l->window, now_ms);
}

struct prune_ctx {
	uint64_t window, now;
	char **keys;
	size_t n;
};

static int collect_expired(const char *key, void *value, void *userdata)
{
	struct prune_ctx *c = userdata;

	if (slog_expired(value, c->window, c->now)) {
		c->keys = kc_xrealloc(c->keys, (c->n + 1) * sizeof(*c->keys));
		c->keys[c->n++] = kc_xstrdup(key);
	}
	return 0;
}

static void prune(struct strmap *m, uint64_t window, uint64_t now_ms)
{
	struct prune_ctx c = {window, now_ms, NULL, 0};

	strmap_foreach(m, collect_expired, &c);
	for (size_t i = 0; i < c.n; i++) {
		strmap_remove(m, c.keys[i]);
		free(c.keys[i]);
	}
	free(c.keys);
}

static void take_keyed(struct strmap *m, const char *key, uint32_t max, uint64_t window, uint64_t now_ms)
{
	struct slog *s;

	if (!max)
		return;
	s = strmap_get(m, key);
	if (!s) {
		if (m->count >= PRUNE_AT)
			prune(m, window, now_ms);
		s = kc_xcalloc(1, sizeof(*s));
		strmap_put(m, key, s);
	}
	slog_take(s, max, window, now_ms);
}

void limits_take(struct limits *l, const char *ns, const char *node, bool dry_run, uint64_t now_ms)
{
	struct ledger *g = dry_run ? &l->dry : &l->real;

	slog_take(&g->total, l->max_total, l->window, now_ms);
	take_keyed(&g->nodes, node, l->max_node, l->window, now_ms);
	take_keyed(&g->nss, ns, l->max_ns, l->window, now_ms);
	if (!dry_run)
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

/*
 * Whether the breaker's condition holds for these counts; with buf, also says
 * why (or the counts, when it does not).  Formatting is left to the reader of
 * the reason: the counts are updated on every pod event, the reason read on a
 * trip or a status request.
 */
static bool breaker_over(const struct limits *l, uint32_t device_nodes, uint32_t unhealthy_nodes, char *buf,
			 size_t size)
{
	if (l->breaker_enabled && l->breaker_max_nodes && unhealthy_nodes > l->breaker_max_nodes) {
		if (buf)
			snprintf(buf, size, "%u of %u device nodes are unhealthy (maximum %u)", unhealthy_nodes,
				 device_nodes, l->breaker_max_nodes);
		return true;
	}
	if (l->breaker_enabled && l->breaker_max_percent && device_nodes >= l->breaker_min_nodes &&
	    device_nodes &&
	    (uint64_t)unhealthy_nodes * 100 > (uint64_t)l->breaker_max_percent * device_nodes) {
		if (buf)
			snprintf(buf, size, "%u of %u device nodes (%u%%) are unhealthy (maximum %u%%)",
				 unhealthy_nodes, device_nodes,
				 (unsigned)((uint64_t)unhealthy_nodes * 100 / device_nodes), l->breaker_max_percent);
		return true;
	}
	if (buf)
		snprintf(buf, size, "%u of %u device nodes are unhealthy", unhealthy_nodes, device_nodes);
	return false;
}

enum limits_breaker_change limits_breaker_update(struct limits *l, uint32_t device_nodes,
						 uint32_t unhealthy_nodes, uint64_t now_ms)
{
	l->breaker_device_nodes = device_nodes;
	l->breaker_unhealthy_nodes = unhealthy_nodes;
	if (breaker_over(l, device_nodes, unhealthy_nodes, NULL, 0)) {
		l->breaker_below_since = UINT64_MAX;
		if (l->breaker_open)
			return LIMITS_BREAKER_SAME;
		l->breaker_open = true;
		return LIMITS_BREAKER_OPENED;
	}
	if (!l->breaker_open)
		return LIMITS_BREAKER_SAME;
	if (l->breaker_enabled) {
		/* Hysteresis: a count that flaps around the threshold must not flap the breaker. */
		if (l->breaker_below_since == UINT64_MAX)
			l->breaker_below_since = now_ms;
		if (now_ms < l->breaker_below_since || now_ms - l->breaker_below_since < l->breaker_close_after)
			return LIMITS_BREAKER_SAME;
	}
	l->breaker_open = false;
	l->breaker_below_since = UINT64_MAX;
	return LIMITS_BREAKER_CLOSED;
}

bool limits_breaker_open(const struct limits *l)
{
	return l->breaker_open;
}

uint64_t limits_breaker_wake(const struct limits *l)
{
	uint64_t t;

	if (!l->breaker_open || l->breaker_below_since == UINT64_MAX)
		return UINT64_MAX;
	t = l->breaker_below_since + l->breaker_close_after;
	return t < l->breaker_below_since ? UINT64_MAX : t;
}

const char *limits_breaker_reason(struct limits *l)
{
	breaker_over(l, l->breaker_device_nodes, l->breaker_unhealthy_nodes, l->breaker_reason,
		     sizeof(l->breaker_reason));
	return l->breaker_reason;
}
