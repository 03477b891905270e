/*
 * Per-pod eviction state, filters and retry timing (see planner.h).
 */
#include "planner.h"

#include <string.h>

#include "kc_backoff.h"
#include "kc_util.h"
#include "strmap.h"

struct planner {
	struct strmap pods; /* uid -> struct planner_pod */
	struct planner_pod **heap;
	size_t n_heap;
	size_t cap_heap;
	uint64_t seq;
};

/* ---- filters ---- */

static const struct {
	const char *name;
	const char *message;
} skips[PLANNER_SKIP_COUNT] = {
    [PLANNER_SKIP_NONE] = {"None", "pod may be evicted"},
    [PLANNER_SKIP_UNSCHEDULED] = {"Unscheduled", "pod is not bound to a node"},
    [PLANNER_SKIP_TERMINATING] = {"Terminating", "pod is already terminating"},
    [PLANNER_SKIP_COMPLETED] = {"Completed", "pod has completed (Succeeded or Failed)"},
    [PLANNER_SKIP_MIRROR] = {"MirrorPod", "pod is a static (mirror) pod"},
    [PLANNER_SKIP_DAEMONSET] = {"DaemonSet", "pod is owned by a DaemonSet"},
    [PLANNER_SKIP_NAMESPACE] = {"Namespace", "pod's namespace is excluded by podFilters.namespaces"},
    [PLANNER_SKIP_SELECTOR] = {"LabelSelector", "pod does not match podFilters.labelSelector"},
    [PLANNER_SKIP_OPT_OUT] = {"OptOut", "pod has the annotation " POLICY_OPT_OUT_ANNOTATION "=\"false\""},
    [PLANNER_SKIP_PRIORITY] = {"Priority", "pod's priority is at or above podFilters.priorityThreshold"},
    [PLANNER_SKIP_BARE] = {"BarePod", "pod has no controller owner and eviction.evictBarePods is false"},
    [PLANNER_SKIP_LOOP] = {"loop", "its owner had a pod evicted from the same node or device within "
				   "remediation.loopWindow: the replacement came back to the failed hardware"},
};

const char *planner_skip_name(enum planner_skip s)
{
	return (unsigned)s < PLANNER_SKIP_COUNT ? skips[s].name : "Unknown";
}

const char *planner_skip_message(enum planner_skip s)
{
	return (unsigned)s < PLANNER_SKIP_COUNT ? skips[s].message : "unknown";
}

static const char *label(const struct kc_pod *pod, const char *key)
{
	for (uint32_t i = 0; i < pod->meta.n_labels; i++)
		if (strcmp(pod->meta.labels[i].key, key) == 0)
			return pod->meta.labels[i].value;
	return NULL;
}

static bool in_values(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

bool planner_selector_matches(const struct policy_selector *s, const struct kc_pod *pod)
{
	for (size_t i = 0; i < s->n_match_labels; i++) {
		const char *v = label(pod, s->match_labels[i].key);

		if (!v || strcmp(v, s->match_labels[i].value) != 0)
			return false;
	}
	for (size_t i = 0; i < s->n_exprs; i++) {
		const struct policy_label_expr *e = &s->exprs[i];
		const char *v = label(pod, e->key);
		bool ok;

		switch (e->op) {
		case POLICY_OP_IN:
			ok = v && in_values(e->values, e->n_values, v);
			break;
		case POLICY_OP_NOT_IN:
			ok = !v || !in_values(e->values, e->n_values, v);
			break;
		case POLICY_OP_EXISTS:
			ok = v != NULL;
			break;
		case POLICY_OP_DOES_NOT_EXIST:
			ok = v == NULL;
			break;
		default:
			ok = false;
			break;
		}
		if (!ok)
			return false;
	}
	return true;
}

static bool opted_out(const struct kc_pod *pod)
{
	const struct kc_kv *a = kc_meta_annotations(&pod->meta);

	for (uint32_t i = 0; i < pod->meta.n_annotations; i++)
		if (strcmp(a[i].key, POLICY_OPT_OUT_ANNOTATION) == 0)
			return strcmp(a[i].value, "false") == 0;
	return false;
}

void planner_filter_each(const struct policy *p, const struct kc_pod *pod, bool ret_fails[PLANNER_SKIP_COUNT])
{
	const struct kc_owner_ref *owner = kc_meta_controller(&pod->meta);
	int32_t prio = pod->has_priority ? pod->priority : 0;

	memset(ret_fails, 0, PLANNER_SKIP_COUNT * sizeof(*ret_fails));
	ret_fails[PLANNER_SKIP_UNSCHEDULED] = !*pod->node_name;
	ret_fails[PLANNER_SKIP_TERMINATING] = pod->meta.deleting;
	ret_fails[PLANNER_SKIP_COMPLETED] = pod->phase == KC_POD_SUCCEEDED || pod->phase == KC_POD_FAILED;
	ret_fails[PLANNER_SKIP_MIRROR] = pod->is_mirror;
	ret_fails[PLANNER_SKIP_DAEMONSET] = owner && strcmp(owner->kind, "DaemonSet") == 0;
	ret_fails[PLANNER_SKIP_NAMESPACE] =
	    (p->n_ns_include && !in_values(p->ns_include, p->n_ns_include, pod->meta.ns)) ||
	    in_values(p->ns_exclude, p->n_ns_exclude, pod->meta.ns);
	ret_fails[PLANNER_SKIP_SELECTOR] = !planner_selector_matches(&p->selector, pod);
	ret_fails[PLANNER_SKIP_OPT_OUT] = opted_out(pod);
	ret_fails[PLANNER_SKIP_PRIORITY] = p->has_priority_threshold && prio >= p->priority_threshold;
	ret_fails[PLANNER_SKIP_BARE] = !owner && !p->evict_bare_pods;
}

enum planner_skip planner_filter(const struct policy *p, const struct kc_pod *pod)
{
	bool fails[PLANNER_SKIP_COUNT];

	/* The first filter that fails, in the order of enum planner_skip. */
	planner_filter_each(p, pod, fails);
	for (size_t i = 1; i < PLANNER_SKIP_COUNT; i++)
		if (fails[i])
			return (enum planner_skip)i;
	return PLANNER_SKIP_NONE;
}

/* ---- records ---- */

/* The pods map's value destructor. */
static void record_free(void *value)
{
	struct planner_pod *r = value;

	health_hits_free(r->hits, r->n_hits);
	free(r->uid);
	free(r->ns);
	free(r->name);
	free(r->node);
	free(r);
}

struct planner *planner_new(void)
{
	struct planner *pl = kc_xcalloc(1, sizeof(*pl));

	strmap_init(&pl->pods, record_free);
	return pl;
}

struct planner *planner_free(struct planner *pl)
{
	if (!pl)
		return NULL;
	strmap_done(&pl->pods);
	free(pl->heap);
	free(pl);
	return NULL;
}

struct planner_pod *planner_get(const struct planner *pl, const char *uid)
{
	return strmap_get(&pl->pods, uid);
}

struct planner_pod *planner_add(struct planner *pl, const struct kc_pod *pod)
{
	struct planner_pod *r = kc_xcalloc(1, sizeof(*r));
	char ub[KC_UID_BUF];

	r->uid = kc_xstrdup(kc_uid_str(&pod->meta.uid, ub));
	r->ns = kc_xstrdup(pod->meta.ns);
	r->name = kc_xstrdup(pod->meta.name);
	r->node = kc_xstrdup(pod->node_name);
	r->heap_pos = SIZE_MAX;
	r->state = PLANNER_WAITING;
	strmap_put(&pl->pods, r->uid, r);
	return r;
}

size_t planner_count(const struct planner *pl)
{
	return pl->pods.count;
}

/* ---- the heap ---- */

static bool before(const struct planner_pod *a, const struct planner_pod *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_set(struct planner *pl, size_t i, struct planner_pod *r)
{
	pl->heap[i] = r;
	r->heap_pos = i;
}

static void sift_up(struct planner *pl, size_t i)
{
	struct planner_pod *r = pl->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!before(r, pl->heap[parent]))
			break;
		heap_set(pl, i, pl->heap[parent]);
		i = parent;
	}
	heap_set(pl, i, r);
}

static void sift_down(struct planner *pl, size_t i)
{
	struct planner_pod *r = pl->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= pl->n_heap)
			break;
		if (c + 1 < pl->n_heap && before(pl->heap[c + 1], pl->heap[c]))
			c++;
		if (!before(pl->heap[c], r))
			break;
		heap_set(pl, i, pl->heap[c]);
		i = c;
	}
	heap_set(pl, i, r);
}

static void heap_remove(struct planner *pl, struct planner_pod *r)
{
	size_t i = r->heap_pos;
	struct planner_pod *last;

	if (i == SIZE_MAX)
		return;
	r->heap_pos = SIZE_MAX;
	last = pl->heap[--pl->n_heap];
	if (i == pl->n_heap)
		return;
	heap_set(pl, i, last);
	sift_up(pl, i);
	sift_down(pl, last->heap_pos);
}

void planner_schedule(struct planner *pl, struct planner_pod *r, uint64_t due_ms)
{
	if (due_ms == UINT64_MAX) {
		heap_remove(pl, r);
		return;
	}
	if (r->heap_pos == SIZE_MAX) {
		if (pl->n_heap == pl->cap_heap) {
			pl->cap_heap = pl->cap_heap ? pl->cap_heap * 2 : 64;
			pl->heap = kc_xrealloc(pl->heap, pl->cap_heap * sizeof(*pl->heap));
		}
		r->due_ms = due_ms;
		r->seq = ++pl->seq;
		heap_set(pl, pl->n_heap++, r);
		sift_up(pl, r->heap_pos);
		return;
	}
	if (r->due_ms == due_ms)
		return;
	r->due_ms = due_ms;
	r->seq = ++pl->seq;
	sift_up(pl, r->heap_pos);
	sift_down(pl, r->heap_pos);
}

struct planner_pod *planner_peek(const struct planner *pl)
{
	return pl->n_heap ? pl->heap[0] : NULL;
}

void planner_remove(struct planner *pl, struct planner_pod *r)
{
	heap_remove(pl, r);
	strmap_remove(&pl->pods, r->uid);
}

struct foreach_ctx {
	planner_visit_cb cb;
	void *userdata;
};

static int foreach_cb(const char *key, void *value, void *userdata)
{
	struct foreach_ctx *c = userdata;

	(void)key;
	return c->cb(value, c->userdata);
}

int planner_foreach(const struct planner *pl, planner_visit_cb cb, void *userdata)
{
	struct foreach_ctx c = {cb, userdata};

	return strmap_foreach(&pl->pods, foreach_cb, &c);
}

/* ---- timing ---- */

uint64_t planner_hits_due(const struct planner_pod *r)
{
	uint64_t due = UINT64_MAX;

	for (size_t i = 0; i < r->n_hits; i++) {
		uint64_t d = health_hit_due(&r->hits[i]);

		if (d < due)
			due = d;
	}
	return due;
}

const struct health_hit *planner_primary_hit(const struct planner_pod *r, uint64_t now_ms)
{
	const struct health_hit *best = NULL;

	for (size_t i = 0; i < r->n_hits; i++) {
		uint64_t d = health_hit_due(&r->hits[i]);

		if (d <= now_ms && (!best || d < health_hit_due(best)))
			best = &r->hits[i];
	}
	return best ? best : (r->n_hits ? &r->hits[0] : NULL);
}

void planner_retry(const struct policy *p, struct planner_pod *r, bool blocked, uint64_t retry_after_ms,
		   uint64_t now_ms)
{
	uint64_t wait;

	r->attempts++;
	wait = kc_backoff_with_retry_after(kc_backoff_cap(p->retry_initial_ms, p->retry_max_ms, r->attempts),
					   retry_after_ms);
	r->retry_at_ms = now_ms + wait < now_ms ? UINT64_MAX : now_ms + wait;
	if (blocked) {
		if (!r->blocked)
			r->blocked_since_ms = now_ms;
		r->blocked = true;
	}
	if (r->blocked && p->delete_after_ms) {
		uint64_t deadline = r->blocked_since_ms + p->delete_after_ms;

		if (now_ms >= deadline) {
			r->delete_next = true;
			r->retry_at_ms = now_ms;
		} else if (r->retry_at_ms > deadline) {
			r->retry_at_ms = deadline;
		}
	}
}

void planner_check_delete(const struct policy *p, struct planner_pod *r, uint64_t now_ms)
{
	/* Recomputed each time: a reloaded policy may have changed or dropped deleteAfter. */
	r->delete_next =
	    r->blocked && p->delete_after_ms && now_ms >= r->blocked_since_ms + p->delete_after_ms;
}
