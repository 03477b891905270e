/*
 * Integration tests of the reflector against the test API server (run by
 * test/run_with_apiserver.py): paged LIST of 2,000 pods, the watch that
 * follows it, re-watch from the last resourceVersion after a dropped stream,
 * relist after 410 (as an ERROR event and as an HTTP status) with deletions
 * delivered for objects that vanished meanwhile, LIST retries after 429 and
 * 500, stall detection, and a field selector.  The store is compared, object
 * by object, with a full LIST read from the server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "kc_config.h"
#include "kc_http.h"
#include "kc_intern.h"
#include "kc_log.h"
#include "kc_reflector.h"
#include "kc_store.h"
#include "ktest.h"

#define N_PODS 2000
#define N_NODES 40
#define N_NS 4
#define WAIT_MS 15000

static struct ktest_env E;

/* One delivered change, copied out of the handler. */
struct change {
	enum kc_delta delta;
	char key[160]; /* "ns/name" */
	char rv[32];
};

struct recorder {
	struct change *v;
	size_t n, cap;
	unsigned synced;
	struct kc_reflector *r;
	/* Called from the handler once hook_at changes were recorded. */
	void (*hook)(struct recorder *rec);
	size_t hook_at;
	/* Set around kc_reflector_relist(): a MODIFIED may then keep its resourceVersion. */
	bool widening;
};

/* ------------------------------------------------------------- helpers */

static void on_change(struct kc_reflector *r, enum kc_delta delta, const void *obj, const void *old,
		      void *userdata)
{
	struct recorder *rec = userdata;
	const struct kc_meta *m = obj;
	const struct kc_meta *o = old;
	const struct kc_meta *in_store = kc_store_get(kc_reflector_store(r), m->ns, m->name);
	struct change *c;

	/* The store is updated before the handler runs. */
	if (delta == KC_DELTA_DELETED) {
		assert_null(in_store);
		assert_null(old);
	} else {
		assert_ptr_equal(in_store, obj);
	}
	if (delta == KC_DELTA_ADDED)
		assert_null(old);
	if (delta == KC_DELTA_MODIFIED) {
		assert_non_null(old);
		assert_true(o->rv_key != m->rv_key || rec->widening);
	}
	if (rec->n == rec->cap) {
		rec->cap = rec->cap ? rec->cap * 2 : 256;
		rec->v = kc_xrealloc(rec->v, rec->cap * sizeof(*rec->v));
	}
	c = &rec->v[rec->n++];
	c->delta = delta;
	snprintf(c->key, sizeof(c->key), "%s/%s", m->ns, m->name);
	snprintf(c->rv, sizeof(c->rv), "%llu", (unsigned long long)m->rv_key);
	if (rec->hook && rec->n == rec->hook_at)
		rec->hook(rec);
}

static void on_synced(struct kc_reflector *r, void *userdata)
{
	struct recorder *rec = userdata;

	assert_true(kc_reflector_has_synced(r));
	rec->synced++;
}

static void rec_clear(struct recorder *rec)
{
	rec->n = 0;
}

static void rec_done(struct recorder *rec)
{
	free(rec->v);
	memset(rec, 0, sizeof(*rec));
}

static size_t rec_count(const struct recorder *rec, enum kc_delta d, const char *key)
{
	size_t n = 0;

	for (size_t i = 0; i < rec->n; i++)
		if (rec->v[i].delta == d && (!key || strcmp(rec->v[i].key, key) == 0))
			n++;
	return n;
}

static void assert_change(const struct recorder *rec, size_t i, enum kc_delta d, const char *key)
{
	assert_true(i < rec->n);
	if (rec->v[i].delta != d || strcmp(rec->v[i].key, key) != 0)
		fail_msg("change %zu: got %d %s, want %d %s", i, rec->v[i].delta, rec->v[i].key, d, key);
}

static char *pod_json(const char *ns, const char *name, int node, const char *app)
{
	return kc_xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
			    "\"labels\":{\"app\":\"%s\"}},\"spec\":{\"nodeName\":\"node-%02d\",\"containers\":"
			    "[{\"name\":\"main\",\"image\":\"trainer:1\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":"
			    "\"1\"}}}]},\"status\":{\"phase\":\"Running\"}}",
			    name, ns, app, node);
}

static char *node_json(const char *name, bool unschedulable, const char *label)
{
	return kc_xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\",\"labels\":"
			    "{\"pool\":\"%s\"}},\"spec\":{\"unschedulable\":%s},\"status\":{\"allocatable\":"
			    "{\"nvidia.com/gpu\":\"8\"}}}",
			    name, label, unschedulable ? "true" : "false");
}

static void create_pod(const char *ns, const char *name, int node)
{
	char *body = pod_json(ns, name, node, "new");
	char *path = kc_xasprintf("/api/v1/namespaces/%s/pods", ns);

	ktest_admin_ok("POST", path, body);
	free(path);
	free(body);
}

static void modify_pod(const char *ns, const char *name, int node, const char *app)
{
	char *body = pod_json(ns, name, node, app);
	char *path = kc_xasprintf("/api/v1/namespaces/%s/pods/%s", ns, name);

	ktest_admin_ok("PUT", path, body);
	free(path);
	free(body);
}

static void delete_pod(const char *ns, const char *name)
{
	char *path = kc_xasprintf("/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=0", ns, name);

	ktest_admin_ok("DELETE", path, NULL);
	free(path);
}

static void put_node(const char *name, bool unschedulable, const char *label, bool create)
{
	char *body = node_json(name, unschedulable, label);
	char *path = create ? kc_xstrdup("/api/v1/nodes") : kc_xasprintf("/api/v1/nodes/%s", name);

	ktest_admin_ok(create ? "POST" : "PUT", path, body);
	free(path);
	free(body);
}

/* The initial data set: N_NODES nodes (the first five unschedulable) and N_PODS pods. */
static void load_cluster(void)
{
	size_t cap = 1024 * 1024, len = 0;
	char *buf = kc_xmalloc(cap);

	ktest_admin_ok("POST", "/_test/reset", "{}");
	len += (size_t)snprintf(buf + len, cap - len, "{\"items\":[");
	for (int i = 0; i < N_NODES; i++) {
		char name[32];
		char *n;

		snprintf(name, sizeof(name), "node-%02d", i);
		n = node_json(name, i < 5, "a");
		len += (size_t)snprintf(buf + len, cap - len, "%s%s,", "", n);
		free(n);
	}
	for (int i = 0; i < N_PODS; i++) {
		char ns[16], name[32];
		char *p;

		snprintf(ns, sizeof(ns), "team-%d", i % N_NS);
		snprintf(name, sizeof(name), "pod-%04d", i);
		p = pod_json(ns, name, i % N_NODES, "base");
		if (len + strlen(p) + 8 > cap) {
			cap *= 2;
			buf = kc_xrealloc(buf, cap);
		}
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", p, i + 1 < N_PODS ? "," : "");
		free(p);
	}
	snprintf(buf + len, cap - len, "]}");
	ktest_admin_ok("POST", "/_test/objects", buf);
	free(buf);
}

/* Compares the store with a full LIST from the server: same keys, same resourceVersions. */
static void assert_store_matches(struct kc_reflector *r, const char *list_path)
{
	const struct kc_store *s = kc_reflector_store(r);
	json_t *j = ktest_admin_json("GET", list_path, NULL);
	json_t *items = json_object_get(j, "items");
	size_t i;
	json_t *it;

	assert_true(json_is_array(items));
	assert_int_equal(kc_store_count(s), json_array_size(items));
	json_array_foreach(items, i, it) {
		json_t *md = json_object_get(it, "metadata");
		const char *ns = json_string_value(json_object_get(md, "namespace"));
		const char *name = json_string_value(json_object_get(md, "name"));
		const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
		const struct kc_meta *m = kc_store_get(s, ns ? ns : "", name);

		if (!m)
			fail_msg("%s/%s is on the server but not in the store", ns ? ns : "", name);
		assert_true(m->rv_key == kc_decode_rv_key(rv, strlen(rv)));
	}
	json_decref(j);
}

/* The statuses of the reflector's (paged) LIST requests on path, in order, as "429,429,500,200". */
static char *list_statuses(const char *path)
{
	json_t *j = ktest_admin_json("GET", "/_test/requests", NULL);
	json_t *items = json_object_get(j, "items");
	char *out = kc_xstrdup("");
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it) {
		const char *v = json_string_value(json_object_get(it, "verb"));
		const char *p = json_string_value(json_object_get(it, "path"));
		const char *q = json_string_value(json_object_get(it, "query"));
		char *n;

		if (!v || strcmp(v, "list") != 0 || !p || strcmp(p, path) != 0 || !q || !strstr(q, "limit="))
			continue;
		n = kc_xasprintf("%s%s%lld", out, *out ? "," : "",
				 (long long)json_integer_value(json_object_get(it, "status")));
		free(out);
		out = n;
	}
	json_decref(j);
	return out;
}

struct wait_changes {
	struct recorder *rec;
	size_t n;
};

static bool have_changes(void *ud)
{
	struct wait_changes *w = ud;

	return w->rec->n >= w->n;
}

static void wait_changes(struct recorder *rec, size_t n)
{
	struct wait_changes w = {rec, n};

	if (!ktest_run_loop_until(&E.loop, have_changes, &w, WAIT_MS))
		fail_msg("waited for %zu changes, got %zu", n, rec->n);
}

static bool is_synced(void *ud)
{
	return kc_reflector_has_synced(ud);
}

static void wait_caught_up(struct kc_reflector *r)
{
	ktest_wait_caught_up(&E.loop, r, WAIT_MS);
}

#define WAIT_STAT(r, field, value) KTEST_WAIT_STAT(&E.loop, (r), field, (value), WAIT_MS)

static struct kc_reflector *start_reflector(struct recorder *rec, const struct kc_type *type, unsigned page_size,
					    const char *field_selector, uint64_t stall_ms)
{
	struct kc_reflector_options o;
	struct kc_reflector *r = NULL;

	memset(&o, 0, sizeof(o));
	o.loop = &E.loop;
	o.type = type;
	o.page_size = page_size;
	o.field_selector = field_selector;
	o.watch_timeout_s = 60;
	o.stall_timeout_ms = stall_ms;
	o.backoff_initial_ms = 100;
	o.backoff_max_ms = 1000;
	o.on_change = on_change;
	o.on_synced = on_synced;
	o.userdata = rec;
	assert_int_equal(kc_reflector_new(E.client, E.intern, &o, &r), 0);
	rec->r = r;
	assert_int_equal(kc_reflector_start(r), 0);
	assert_int_equal(kc_reflector_start(r), -EALREADY);
	return r;
}

static void sync_reflector(struct kc_reflector *r)
{
	if (!ktest_run_loop_until(&E.loop, is_synced, r, WAIT_MS))
		fail_msg("reflector did not sync");
}

/* Frees the reflector and lets the loop close its timers and finish its request. */
static void free_reflector(struct kc_reflector *r, struct recorder *rec)
{
	kc_reflector_free(r);
	for (int i = 0; i < 20; i++)
		uv_run(&E.loop, UV_RUN_NOWAIT);
	rec_done(rec);
}

/* -------------------------------------------------------------- tests */

/* A paged LIST of 2,000 pods and 40 nodes, then live changes in order. */
static void test_list_then_watch(void **state)
{
	struct recorder pods = {0}, nodes = {0};
	struct kc_reflector *rp, *rn;
	const struct kc_reflector_stats *st;

	(void)state;
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	rp = start_reflector(&pods, &kc_type_pod, 100, NULL, 0);
	rn = start_reflector(&nodes, &kc_type_node, 0, NULL, 0);
	assert_false(kc_reflector_has_synced(rp));
	sync_reflector(rp);
	sync_reflector(rn);

	st = kc_reflector_stats(rp);
	assert_int_equal(kc_store_count(kc_reflector_store(rp)), N_PODS);
	assert_int_equal(pods.n, N_PODS);
	assert_int_equal(rec_count(&pods, KC_DELTA_ADDED, NULL), N_PODS);
	assert_int_equal(pods.synced, 1);
	assert_int_equal(st->lists, 1);
	assert_int_equal(st->relists, 0);
	assert_int_equal(st->pages, N_PODS / 100);
	assert_int_equal(ktest_count_requests("list", "/api/v1/pods", "limit=100", 200), N_PODS / 100);
	assert_int_equal(ktest_count_requests("list", "/api/v1/pods", "continue=", 200), N_PODS / 100 - 1);
	assert_int_equal(kc_store_count(kc_reflector_store(rn)), N_NODES);
	assert_int_equal(kc_reflector_stats(rn)->pages, 1);
	assert_ptr_equal(kc_reflector_type(rn), &kc_type_node);
	assert_store_matches(rp, "/api/v1/pods");
	assert_store_matches(rn, "/api/v1/nodes");

	/* Live changes, in order. */
	rec_clear(&pods);
	rec_clear(&nodes);
	create_pod("team-1", "live-a", 3);
	create_pod("team-2", "live-b", 4);
	modify_pod("team-0", "pod-0000", 0, "changed");
	modify_pod("team-1", "live-a", 3, "changed");
	delete_pod("team-3", "pod-0003");
	delete_pod("team-1", "live-a");
	put_node("node-40", false, "b", true);
	put_node("node-05", false, "b", false);
	ktest_admin_ok("DELETE", "/api/v1/nodes/node-40", NULL);
	wait_changes(&pods, 6);
	wait_changes(&nodes, 3);
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-1/live-a");
	assert_change(&pods, 1, KC_DELTA_ADDED, "team-2/live-b");
	assert_change(&pods, 2, KC_DELTA_MODIFIED, "team-0/pod-0000");
	assert_change(&pods, 3, KC_DELTA_MODIFIED, "team-1/live-a");
	assert_change(&pods, 4, KC_DELTA_DELETED, "team-3/pod-0003");
	assert_change(&pods, 5, KC_DELTA_DELETED, "team-1/live-a");
	assert_change(&nodes, 0, KC_DELTA_ADDED, "/node-40");
	assert_change(&nodes, 1, KC_DELTA_MODIFIED, "/node-05");
	assert_change(&nodes, 2, KC_DELTA_DELETED, "/node-40");
	wait_caught_up(rp);
	wait_caught_up(rn);
	assert_int_equal(pods.n, 6);
	assert_int_equal(nodes.n, 3);
	assert_int_equal(st->events, 6);
	assert_int_equal(st->watches, 1);
	assert_int_equal(st->watch_restarts, 0);
	assert_int_equal(st->decode_errors, 0);
	assert_int_equal(kc_store_count(kc_reflector_store(rp)), N_PODS);
	assert_store_matches(rp, "/api/v1/pods");
	assert_store_matches(rn, "/api/v1/nodes");

	free_reflector(rp, &pods);
	free_reflector(rn, &nodes);
}

/* A dropped watch is re-established from the last resourceVersion, without a LIST. */
static void test_drop_rewatch(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector *r;
	const struct kc_reflector_stats *st;
	char *rv0, *needle;

	(void)state;
	r = start_reflector(&pods, &kc_type_pod, 500, NULL, 0);
	st = kc_reflector_stats(r);
	sync_reflector(r);
	WAIT_STAT(r, watches, 1);
	wait_caught_up(r);
	rv0 = kc_xstrdup(kc_reflector_resource_version(r));
	rec_clear(&pods);
	ktest_admin_ok("DELETE", "/_test/requests", NULL);

	/* The loop does not run until the changes are made: they happen while the watch is down. */
	ktest_admin_ok("POST", "/_test/drop-watches", "{\"path_regex\":\"^/api/v1/pods\"}");
	create_pod("team-0", "while-down-1", 1);
	delete_pod("team-2", "pod-0002");
	create_pod("team-3", "while-down-2", 2);
	wait_changes(&pods, 3);
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-0/while-down-1");
	assert_change(&pods, 1, KC_DELTA_DELETED, "team-2/pod-0002");
	assert_change(&pods, 2, KC_DELTA_ADDED, "team-3/while-down-2");
	wait_caught_up(r);

	needle = kc_xasprintf("resourceVersion=%s&", rv0);
	assert_int_equal(ktest_count_requests("list", "/api/v1/pods", NULL, -1), 0);
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", NULL, -1), 1);
	/* A watch's status is logged when it ends: this one is still open. */
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", needle, -1), 1);
	assert_int_equal(st->lists, 1);
	assert_int_equal(st->relists, 0);
	assert_int_equal(st->watches, 2);
	assert_int_equal(st->watch_restarts, 1);
	assert_int_equal(st->gone, 0);
	assert_int_equal(pods.synced, 1);
	assert_store_matches(r, "/api/v1/pods");
	free(needle);
	free(rv0);
	free_reflector(r, &pods);
}

/* While the watch is stalled, pods change and the history is compacted; the re-watch gets 410. */
static void break_history(const char *compact_body, const char *label)
{
	ktest_admin_ok("POST", "/_test/stall-watches", "{\"enabled\":true}");
	delete_pod("team-0", "pod-0004");
	delete_pod("team-1", "pod-0005");
	create_pod("team-2", "after-410", 5);
	modify_pod("team-3", "pod-0007", 7, label);
	delete_pod("team-3", "pod-0011");
	ktest_admin_ok("POST", "/_test/compact", compact_body);
	ktest_admin_ok("POST", "/_test/drop-watches", "{}");
	ktest_admin_ok("POST", "/_test/stall-watches", "{\"enabled\":false}");
}

static void test_gone_relist(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector *r;
	const struct kc_reflector_stats *st;
	size_t before;

	(void)state;
	r = start_reflector(&pods, &kc_type_pod, 500, NULL, 0);
	st = kc_reflector_stats(r);
	sync_reflector(r);
	WAIT_STAT(r, watches, 1);
	wait_caught_up(r);
	before = kc_store_count(kc_reflector_store(r));
	rec_clear(&pods);

	/* 410 as an ERROR event in a 200 watch response. */
	break_history("{}", "changed-410");
	WAIT_STAT(r, lists, 2);
	assert_int_equal(pods.n, 5);
	assert_int_equal(rec_count(&pods, KC_DELTA_DELETED, "team-0/pod-0004"), 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_DELETED, "team-1/pod-0005"), 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_DELETED, "team-3/pod-0011"), 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_ADDED, "team-2/after-410"), 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_MODIFIED, "team-3/pod-0007"), 1);
	/* The LIST delivers in key order, then the deletions found by the sweep. */
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-2/after-410");
	assert_change(&pods, 1, KC_DELTA_MODIFIED, "team-3/pod-0007");
	assert_int_equal(st->gone, 1);
	assert_int_equal(st->relists, 1);
	assert_int_equal(pods.synced, 2);
	assert_int_equal(kc_store_count(kc_reflector_store(r)), before - 2);
	assert_store_matches(r, "/api/v1/pods");
	WAIT_STAT(r, watches, 2);
	wait_caught_up(r);

	/* 410 as the HTTP status of the watch request.  The same pods are gone
	 * already, so recreate the deleted ones first. */
	create_pod("team-0", "pod-0004", 4);
	create_pod("team-1", "pod-0005", 5);
	delete_pod("team-2", "after-410");
	create_pod("team-3", "pod-0011", 11);
	wait_changes(&pods, 9);
	wait_caught_up(r);
	rec_clear(&pods);
	break_history("{\"http_410\":true}", "changed-410-again");
	WAIT_STAT(r, lists, 3);
	assert_int_equal(pods.n, 5);
	assert_int_equal(rec_count(&pods, KC_DELTA_DELETED, NULL), 3);
	assert_int_equal(rec_count(&pods, KC_DELTA_DELETED, "team-3/pod-0011"), 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_ADDED, "team-2/after-410"), 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_MODIFIED, "team-3/pod-0007"), 1);
	assert_int_equal(st->gone, 2);
	assert_int_equal(st->relists, 2);
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", NULL, 410), 1);
	assert_store_matches(r, "/api/v1/pods");
	WAIT_STAT(r, watches, 3);
	ktest_admin_ok("POST", "/_test/compact", "{\"http_410\":false}");
	free_reflector(r, &pods);
}

/* 429 with Retry-After and 500 on the first page and on a later page are retried. */
static void test_list_faults(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector *r;
	const struct kc_reflector_stats *st;
	uint64_t t0, took;
	char *statuses;

	(void)state;
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	ktest_admin_ok("POST", "/_test/faults",
	      "{\"faults\":["
	      "{\"method\":\"GET\",\"path_regex\":\"^/api/v1/pods$\",\"query_regex\":\"^limit=500$\",\"count\":2,"
	      "\"status\":429,\"retry_after\":1},"
	      "{\"method\":\"GET\",\"path_regex\":\"^/api/v1/pods$\",\"query_regex\":\"^limit=500$\",\"count\":1,"
	      "\"status\":500},"
	      "{\"method\":\"GET\",\"path_regex\":\"^/api/v1/pods$\",\"query_regex\":\"continue=\",\"count\":2,"
	      "\"status\":500}]}");
	t0 = kc_monotonic_ms();
	r = start_reflector(&pods, &kc_type_pod, 500, NULL, 0);
	st = kc_reflector_stats(r);
	sync_reflector(r);
	took = kc_monotonic_ms() - t0;
	/* Two Retry-After: 1 waits. */
	assert_true(took >= 2000);
	statuses = list_statuses("/api/v1/pods");
	assert_string_equal(statuses, "429,429,500,200,500,500,200,200,200");
	free(statuses);
	assert_int_equal(st->lists, 1);
	assert_int_equal(st->pages, 4);
	assert_int_equal(pods.synced, 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_ADDED, NULL), kc_store_count(kc_reflector_store(r)));
	assert_store_matches(r, "/api/v1/pods");
	ktest_admin_ok("DELETE", "/_test/faults", NULL);
	free_reflector(r, &pods);
}

/* A watch that sends nothing for stall_timeout_ms is cancelled and re-established. */
static void test_stall(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector *r;
	const struct kc_reflector_stats *st;

	(void)state;
	r = start_reflector(&pods, &kc_type_pod, 500, NULL, 1500);
	st = kc_reflector_stats(r);
	sync_reflector(r);
	WAIT_STAT(r, watches, 1);
	wait_caught_up(r);
	rec_clear(&pods);
	ktest_admin_ok("POST", "/_test/stall-watches", "{\"enabled\":true}");
	create_pod("team-0", "stalled-1", 6);
	modify_pod("team-1", "pod-0009", 9, "changed-stall");
	WAIT_STAT(r, stalls, 1);
	assert_int_equal(pods.n, 0);
	ktest_admin_ok("POST", "/_test/stall-watches", "{\"enabled\":false}");
	wait_changes(&pods, 2);
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-0/stalled-1");
	assert_change(&pods, 1, KC_DELTA_MODIFIED, "team-1/pod-0009");
	wait_caught_up(r);
	assert_int_equal(pods.n, 2);
	assert_true(st->stalls >= 1);
	assert_true(st->watch_restarts >= 1);
	assert_int_equal(st->watches, st->watch_restarts + 1);
	assert_int_equal(st->lists, 1);
	assert_int_equal(st->gone, 0);
	assert_store_matches(r, "/api/v1/pods");
	free_reflector(r, &pods);
}

/* A node reflector with a field selector: objects entering and leaving it are ADDED and DELETED. */
static void test_field_selector(void **state)
{
	struct recorder nodes = {0};
	struct kc_reflector *r;

	(void)state;
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	r = start_reflector(&nodes, &kc_type_node, 2, "spec.unschedulable=true", 0);
	sync_reflector(r);
	/* node-00..04 are unschedulable: three pages of at most two. */
	assert_int_equal(kc_store_count(kc_reflector_store(r)), 5);
	assert_int_equal(kc_reflector_stats(r)->pages, 3);
	assert_int_equal(
	    ktest_count_requests("list", "/api/v1/nodes", "fieldSelector=spec.unschedulable%3Dtrue", 200), 3);
	assert_store_matches(r, "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue");
	rec_clear(&nodes);

	put_node("node-10", true, "a", false);  /* enters: ADDED */
	put_node("node-01", false, "a", false); /* leaves: DELETED */
	put_node("node-02", true, "c", false);  /* stays: MODIFIED */
	put_node("node-50", true, "a", true);   /* created matching: ADDED */
	put_node("node-51", false, "a", true);  /* created not matching: nothing */
	ktest_admin_ok("DELETE", "/api/v1/nodes/node-03", NULL);
	wait_changes(&nodes, 5);
	wait_caught_up(r);
	assert_int_equal(nodes.n, 5);
	assert_change(&nodes, 0, KC_DELTA_ADDED, "/node-10");
	assert_change(&nodes, 1, KC_DELTA_DELETED, "/node-01");
	assert_change(&nodes, 2, KC_DELTA_MODIFIED, "/node-02");
	assert_change(&nodes, 3, KC_DELTA_ADDED, "/node-50");
	assert_change(&nodes, 4, KC_DELTA_DELETED, "/node-03");
	assert_int_equal(kc_store_count(kc_reflector_store(r)), 5);
	assert_non_null(kc_store_get(kc_reflector_store(r), "", "node-50"));
	assert_null(kc_store_get(kc_reflector_store(r), "", "node-51"));
	assert_store_matches(r, "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue");
	free_reflector(r, &nodes);
}

/* A pod reflector with a set-based label selector (escaped: spaces, parentheses, commas). */
static void test_label_selector(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector_options o;
	struct kc_reflector *r = NULL;
	const char *sel = "/api/v1/pods?labelSelector=app%20in%20%28changed%2Cchanged-stall%2Cpicked%29";

	(void)state;
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	memset(&o, 0, sizeof(o));
	o.loop = &E.loop;
	o.type = &kc_type_pod;
	o.label_selector = "app in (changed,changed-stall,picked)";
	o.backoff_initial_ms = 100;
	o.on_change = on_change;
	o.on_synced = on_synced;
	o.userdata = &pods;
	assert_int_equal(kc_reflector_new(E.client, E.intern, &o, &r), 0);
	pods.r = r;
	assert_int_equal(kc_reflector_start(r), 0);
	sync_reflector(r);
	/* Changed in test_list_then_watch and test_stall. */
	assert_int_equal(kc_store_count(kc_reflector_store(r)), 2);
	assert_non_null(kc_store_get(kc_reflector_store(r), "team-0", "pod-0000"));
	assert_non_null(kc_store_get(kc_reflector_store(r), "team-1", "pod-0009"));
	assert_int_equal(ktest_count_requests("list", "/api/v1/pods",
					"labelSelector=app%20in%20%28changed%2Cchanged-stall%2Cpicked%29", 200), 1);
	assert_store_matches(r, sel);
	rec_clear(&pods);
	modify_pod("team-2", "pod-0010", 10, "picked");  /* enters */
	modify_pod("team-0", "pod-0000", 0, "dropped");  /* leaves */
	modify_pod("team-3", "pod-0015", 15, "ignored"); /* never matches */
	wait_changes(&pods, 2);
	wait_caught_up(r);
	assert_int_equal(pods.n, 2);
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-2/pod-0010");
	assert_change(&pods, 1, KC_DELTA_DELETED, "team-0/pod-0000");
	assert_store_matches(r, sel);
	free_reflector(r, &pods);
}

/* The server goes away for 1.5 s: re-watch attempts fail and back off, then the watch resumes
 * from the last resourceVersion without a LIST. */
static void test_server_restart(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector *r;
	const struct kc_reflector_stats *st;
	uint64_t deadline;
	char *rv0, *needle;
	long code;

	(void)state;
	r = start_reflector(&pods, &kc_type_pod, 500, NULL, 0);
	st = kc_reflector_stats(r);
	sync_reflector(r);
	WAIT_STAT(r, watches, 1);
	wait_caught_up(r);
	rv0 = kc_xstrdup(kc_reflector_resource_version(r));
	rec_clear(&pods);
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	ktest_admin_ok("POST", "/_test/restart", "{\"down_ms\":1500}");
	/* The dropped watch, then at least one refused connection. */
	WAIT_STAT(r, watch_restarts, 2);
	deadline = kc_monotonic_ms() + 10000;
	while ((code = ktest_admin("GET", "/_test/state", NULL, NULL)) != 200 && kc_monotonic_ms() < deadline)
		uv_sleep(50);
	assert_int_equal(code, 200);
	create_pod("team-1", "after-restart", 8);
	wait_changes(&pods, 1);
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-1/after-restart");
	wait_caught_up(r);
	needle = kc_xasprintf("resourceVersion=%s&", rv0);
	assert_int_equal(ktest_count_requests("list", "/api/v1/pods", NULL, -1), 0);
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", NULL, -1), 1);
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", needle, -1), 1);
	assert_int_equal(st->lists, 1);
	assert_int_equal(st->relists, 0);
	assert_int_equal(st->gone, 0);
	assert_int_equal(st->watches, st->watch_restarts + 1);
	assert_int_equal(pods.n, 1);
	assert_store_matches(r, "/api/v1/pods");
	free(needle);
	free(rv0);
	free_reflector(r, &pods);
}

/* Called after the first page: a change and a compaction make its continue token expire. */
static void expire_continue(struct recorder *rec)
{
	(void)rec;
	create_pod("team-0", "during-list", 9);
	ktest_admin_ok("POST", "/_test/compact", "{}");
}

/* A continue token that expired between pages (410) restarts the LIST from the first page. */
static void test_continue_expired(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector *r;
	const struct kc_reflector_stats *st;
	char *statuses, *want;
	size_t n, pages;

	(void)state;
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	pods.hook = expire_continue;
	pods.hook_at = 500;
	r = start_reflector(&pods, &kc_type_pod, 500, NULL, 0);
	st = kc_reflector_stats(r);
	sync_reflector(r);
	n = kc_store_count(kc_reflector_store(r));
	pages = (n + 499) / 500;
	assert_store_matches(r, "/api/v1/pods");
	assert_non_null(kc_store_get(kc_reflector_store(r), "team-0", "during-list"));
	want = kc_xstrdup("200,410");
	for (size_t i = 0; i < pages; i++) {
		char *w = kc_xasprintf("%s,200", want);

		free(want);
		want = w;
	}
	statuses = list_statuses("/api/v1/pods");
	assert_string_equal(statuses, want);
	assert_int_equal(st->gone, 1);
	assert_int_equal(st->lists, 1);
	assert_int_equal(st->relists, 0);
	assert_int_equal(st->pages, pages + 1);
	assert_int_equal(pods.synced, 1);
	/* The first page's objects came again unchanged and were not delivered twice. */
	assert_int_equal(pods.n, n);
	assert_int_equal(rec_count(&pods, KC_DELTA_ADDED, NULL), n);
	free(statuses);
	free(want);
	free_reflector(r, &pods);
}

static void stop_reflector(struct recorder *rec)
{
	kc_reflector_stop(rec->r);
	kc_reflector_stop(rec->r);
}

static bool never(void *ud)
{
	(void)ud;
	return false;
}

/* A handler may stop its reflector in the middle of a page: nothing is delivered afterwards. */
static void test_stop_in_handler(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector *r;

	(void)state;
	pods.hook = stop_reflector;
	pods.hook_at = 150;
	r = start_reflector(&pods, &kc_type_pod, 100, NULL, 0);
	ktest_run_loop_until(&E.loop, never, NULL, 2000);
	assert_int_equal(pods.n, 150);
	assert_false(kc_reflector_has_synced(r));
	assert_int_equal(pods.synced, 0);
	assert_int_equal(kc_reflector_stats(r)->pages, 1);
	assert_int_equal(kc_reflector_stats(r)->watches, 0);
	assert_int_equal(kc_store_count(kc_reflector_store(r)), 150);
	free_reflector(r, &pods);
}

/* The app labels test_keep's predicate keeps; widened in the middle of the test. */
static const char *keep_apps[3];

static bool keep_by_app(const void *obj, void *userdata)
{
	const struct kc_meta *m = obj;

	(void)userdata;
	for (uint32_t i = 0; i < m->n_labels; i++) {
		if (strcmp(m->labels[i].key, "app") != 0)
			continue;
		for (size_t j = 0; j < KC_ARRAY_SIZE(keep_apps) && keep_apps[j]; j++)
			if (strcmp(m->labels[i].value, keep_apps[j]) == 0)
				return true;
	}
	return false;
}

static void post_pod(const char *ns, const char *name, int node, const char *app)
{
	char *body = pod_json(ns, name, node, app);
	char *path = kc_xasprintf("/api/v1/namespaces/%s/pods", ns);

	ktest_admin_ok("POST", path, body);
	free(path);
	free(body);
}

static size_t server_pod_count(void)
{
	json_t *j = ktest_admin_json("GET", "/api/v1/pods", NULL);
	size_t n = json_array_size(json_object_get(j, "items"));

	json_decref(j);
	return n;
}

/* The pods a keep predicate accepts are exactly the store, and the others are counted. */
static void assert_kept(struct kc_reflector *r)
{
	json_t *j = ktest_admin_json("GET", "/api/v1/pods", NULL);
	json_t *items = json_object_get(j, "items"), *it;
	size_t i, kept = 0;

	json_array_foreach(items, i, it) {
		json_t *md = json_object_get(it, "metadata");
		const char *app = json_string_value(json_object_get(json_object_get(md, "labels"), "app"));
		const char *ns = json_string_value(json_object_get(md, "namespace"));
		const char *name = json_string_value(json_object_get(md, "name"));
		bool want = false;

		for (size_t k = 0; k < KC_ARRAY_SIZE(keep_apps) && keep_apps[k] && app; k++)
			want = want || strcmp(app, keep_apps[k]) == 0;
		if (want != (kc_store_get(kc_reflector_store(r), ns, name) != NULL))
			fail_msg("%s/%s (app %s): want kept %d", ns, name, app ? app : "-", want);
		kept += want;
	}
	assert_int_equal(kc_store_count(kc_reflector_store(r)), kept);
	assert_int_equal(kc_reflector_stats(r)->ignored, json_array_size(items) - kept);
	json_decref(j);
}

/*
 * A keep predicate: only the pods it accepts are stored and delivered, the
 * others counted; updates move pods in (ADDED) and out (DELETED); a widened
 * predicate takes effect through kc_reflector_relist().
 */
static void test_keep(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector_options o;
	struct kc_reflector *r = NULL;
	size_t total;

	(void)state;
	keep_apps[0] = "keep";
	keep_apps[1] = NULL;
	post_pod("team-2", "k-1", 1, "keep");
	post_pod("team-2", "k-2", 2, "later");
	post_pod("team-2", "k-3", 3, "other");
	post_pod("team-2", "k-4", 4, "other");
	total = server_pod_count();
	memset(&o, 0, sizeof(o));
	o.loop = &E.loop;
	o.type = &kc_type_pod;
	o.page_size = 300;
	o.backoff_initial_ms = 100;
	o.watch_timeout_s = 60;
	o.on_change = on_change;
	o.on_synced = on_synced;
	o.keep = keep_by_app;
	o.userdata = &pods;
	assert_int_equal(kc_reflector_new(E.client, E.intern, &o, &r), 0);
	pods.r = r;
	kc_reflector_relist(r); /* before start: nothing happens */
	assert_int_equal(kc_reflector_start(r), 0);
	sync_reflector(r);
	assert_int_equal(kc_store_count(kc_reflector_store(r)), 1);
	assert_int_equal(pods.n, 1);
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-2/k-1");
	assert_int_equal(kc_reflector_stats(r)->ignored, total - 1);
	assert_kept(r);

	/* Live: one gains, one loses, an ignored pod comes and another goes. */
	rec_clear(&pods);
	modify_pod("team-2", "k-3", 3, "keep");
	modify_pod("team-2", "k-1", 1, "gone");
	post_pod("team-2", "k-5", 5, "other");
	delete_pod("team-2", "k-4");
	post_pod("team-2", "k-6", 6, "keep");
	wait_changes(&pods, 3);
	wait_caught_up(r);
	assert_int_equal(pods.n, 3);
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-2/k-3");
	assert_change(&pods, 1, KC_DELTA_DELETED, "team-2/k-1");
	assert_change(&pods, 2, KC_DELTA_ADDED, "team-2/k-6");
	assert_kept(r);

	/* Widened: the relist brings in what was turned away, and delivers the cached pods again
	 * as MODIFIED though their resourceVersion did not move (the caller may keep more of
	 * each now: labels, node conditions); the watch carries on. */
	rec_clear(&pods);
	keep_apps[1] = "later";
	keep_apps[2] = "base";
	pods.widening = true;
	kc_reflector_relist(r);
	WAIT_STAT(r, lists, 2);
	pods.widening = false;
	assert_int_equal(kc_reflector_stats(r)->relists, 1);
	assert_int_equal(pods.synced, 2);
	assert_int_equal(rec_count(&pods, KC_DELTA_ADDED, "team-2/k-2"), 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_MODIFIED, "team-2/k-3"), 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_MODIFIED, "team-2/k-6"), 1);
	assert_int_equal(rec_count(&pods, KC_DELTA_MODIFIED, NULL), 2);
	assert_int_equal(rec_count(&pods, KC_DELTA_DELETED, NULL), 0);
	assert_kept(r);
	rec_clear(&pods);
	modify_pod("team-2", "k-5", 5, "later");
	wait_changes(&pods, 1);
	wait_caught_up(r);
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-2/k-5");
	assert_kept(r);
	free_reflector(r, &pods);
	keep_apps[1] = keep_apps[2] = NULL;
}

static struct kc_reflector *start_watch_list(struct recorder *rec)
{
	struct kc_reflector_options o;
	struct kc_reflector *r = NULL;

	memset(&o, 0, sizeof(o));
	o.loop = &E.loop;
	o.type = &kc_type_pod;
	o.page_size = 300;
	o.backoff_initial_ms = 100;
	o.watch_timeout_s = 60;
	o.watch_list = true;
	o.on_change = on_change;
	o.on_synced = on_synced;
	o.userdata = rec;
	assert_int_equal(kc_reflector_new(E.client, E.intern, &o, &r), 0);
	rec->r = r;
	assert_int_equal(kc_reflector_start(r), 0);
	return r;
}

#define WATCH_LIST_QUERY "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"

/*
 * Streaming initial sync: the state arrives as the ADDED events of one watch,
 * up to the bookmark annotated k8s.io/initial-events-end, and the same stream
 * carries the changes after it.  No LIST at all.
 */
static void test_watch_list(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector *r;
	const struct kc_reflector_stats *st;
	size_t n;

	(void)state;
	ktest_admin_ok("POST", "/_test/watch-list", "{\"enabled\":true}");
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	r = start_watch_list(&pods);
	st = kc_reflector_stats(r);
	sync_reflector(r);
	n = server_pod_count();
	assert_int_equal(kc_store_count(kc_reflector_store(r)), n);
	assert_int_equal(rec_count(&pods, KC_DELTA_ADDED, NULL), n);
	assert_int_equal(pods.synced, 1);
	assert_int_equal(st->lists, 1);
	assert_int_equal(st->watch_lists, 1);
	assert_int_equal(st->watch_list_fallbacks, 0);
	assert_int_equal(st->pages, 0);
	assert_int_equal(st->events, 0);
	assert_int_equal(ktest_count_requests("list", "/api/v1/pods", "limit=", -1), 0);
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", WATCH_LIST_QUERY, -1), 1);
	assert_store_matches(r, "/api/v1/pods");

	/* Changes come on the same stream. */
	rec_clear(&pods);
	create_pod("team-3", "wl-a", 7);
	modify_pod("team-3", "wl-a", 7, "wl");
	delete_pod("team-3", "wl-a");
	wait_changes(&pods, 3);
	wait_caught_up(r);
	assert_change(&pods, 0, KC_DELTA_ADDED, "team-3/wl-a");
	assert_change(&pods, 1, KC_DELTA_MODIFIED, "team-3/wl-a");
	assert_change(&pods, 2, KC_DELTA_DELETED, "team-3/wl-a");
	assert_int_equal(st->watches, 1);
	assert_int_equal(st->events, 3);

	/* A relist streams again: every cached pod comes again as MODIFIED (kc_reflector_relist),
	 * nothing is added or deleted. */
	rec_clear(&pods);
	pods.widening = true;
	kc_reflector_relist(r);
	WAIT_STAT(r, lists, 2);
	pods.widening = false;
	assert_int_equal(st->watch_lists, 2);
	assert_int_equal(st->relists, 1);
	assert_int_equal(pods.n, n);
	assert_int_equal(rec_count(&pods, KC_DELTA_MODIFIED, NULL), n);
	assert_int_equal(ktest_count_requests("list", "/api/v1/pods", "limit=", -1), 0);
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", WATCH_LIST_QUERY, -1), 2);
	assert_store_matches(r, "/api/v1/pods");
	free_reflector(r, &pods);
}

/* A server that refuses WatchList (422, as without the feature gate): paged LIST, from then on. */
static void test_watch_list_refused(void **state)
{
	struct recorder pods = {0};
	struct kc_reflector *r;
	const struct kc_reflector_stats *st;
	size_t n;

	(void)state;
	ktest_admin_ok("POST", "/_test/watch-list", "{\"enabled\":false}");
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	r = start_watch_list(&pods);
	st = kc_reflector_stats(r);
	sync_reflector(r);
	n = server_pod_count();
	assert_int_equal(kc_store_count(kc_reflector_store(r)), n);
	assert_int_equal(rec_count(&pods, KC_DELTA_ADDED, NULL), n);
	assert_int_equal(st->lists, 1);
	assert_int_equal(st->watch_lists, 0);
	assert_int_equal(st->watch_list_fallbacks, 1);
	assert_int_equal(st->pages, (n + 299) / 300);
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", WATCH_LIST_QUERY, 422), 1);
	assert_int_equal(ktest_count_requests("list", "/api/v1/pods", "limit=300", 200), (n + 299) / 300);
	assert_store_matches(r, "/api/v1/pods");

	/* Enabled later: this reflector keeps listing (it would only try again after a restart). */
	ktest_admin_ok("POST", "/_test/watch-list", "{\"enabled\":true}");
	pods.widening = true;
	kc_reflector_relist(r);
	WAIT_STAT(r, lists, 2);
	pods.widening = false;
	assert_int_equal(st->watch_lists, 0);
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", "sendInitialEvents", -1), 1);
	assert_int_equal(ktest_count_requests("list", "/api/v1/pods", "limit=300", 200), 2 * ((n + 299) / 300));
	ktest_admin_ok("POST", "/_test/watch-list", "{\"enabled\":false}");
	free_reflector(r, &pods);
}

/* ------------------------------------------------------------- fixture */

static int group_setup(void **state)
{
	(void)state;
	if (ktest_env_setup(&E, "itest_reflector") < 0)
		return -1;
	load_cluster();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return ktest_env_teardown(&E, "itest_reflector");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_then_watch), cmocka_unit_test(test_drop_rewatch),
		cmocka_unit_test(test_gone_relist),     cmocka_unit_test(test_list_faults),
		cmocka_unit_test(test_stall),           cmocka_unit_test(test_field_selector),
		cmocka_unit_test(test_label_selector),  cmocka_unit_test(test_server_restart),  cmocka_unit_test(test_continue_expired),
		cmocka_unit_test(test_stop_in_handler), cmocka_unit_test(test_keep),
		cmocka_unit_test(test_watch_list),      cmocka_unit_test(test_watch_list_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
