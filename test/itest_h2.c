/*
 * Integration tests of the client over HTTP/2, through nghttpx in front of the
 * test API server (run_with_apiserver.py starts the proxy for binaries whose
 * name contains "_h2": KUBECONFIG points at the proxy, KTEST_URL and the admin
 * API at the server itself, KTEST_H2_CTL controls the proxy).  Checked: the
 * protocol is HTTP/2; four reflectors' watches and concurrent GETs share ONE
 * TCP connection; a reset stream (RST_STREAM, from a dropped watch) re-watches
 * that reflector only and leaves the other streams alone; a graceful proxy
 * restart (GOAWAY, then the old connection closes) re-watches every reflector
 * from its last resourceVersion without a relist and delivers the changes made
 * meanwhile exactly once; an eviction in flight when the proxy dies reports a
 * transport error at once, and its retry after the proxy is back evicts once; a
 * connection that goes silent without closing (a relay that stops forwarding,
 * h2proxy.py relay-freeze) is closed by the health probes and the next request
 * is answered on a new connection; a stalled watch re-watches on a new one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "kc_config.h"
#include "kc_http.h"
#include "kc_intern.h"
#include "kc_log.h"
#include "kc_reflector.h"
#include "kc_store.h"
#include "ktest.h"

#define WAIT_MS 15000
#define N_PODS 200
#define N_NODES 10
#define N_REFL 4

static struct ktest_env E;
/* The port nghttpx listens on (KTEST_H2_URL). */
static unsigned proxy_port;

/* ------------------------------------------------------------- helpers */

/* Runs `$KTEST_H2_CTL op` (h2proxy.py start|reload|restart|kill|stop). */
static void proxy_ctl(const char *op)
{
	const char *ctl = getenv("KTEST_H2_CTL");
	char *cmd;
	int rc;

	assert_non_null(ctl);
	cmd = kc_xasprintf("%s %s >/dev/null", ctl, op);
	rc = system(cmd);
	if (rc != 0)
		fail_msg("%s: exit status %d", cmd, rc);
	free(cmd);
}

/* ESTABLISHED TCP connections accepted on 127.0.0.1:proxy_port (the proxy's side of each). */
static unsigned proxy_connections(void)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	unsigned n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned slot, lport, st;
		char laddr[16];

		if (sscanf(line, " %u: %8[0-9A-Fa-f]:%x %*8[0-9A-Fa-f]:%*x %x", &slot, laddr, &lport, &st) != 4)
			continue;
		if (st == 1 && lport == proxy_port && strcmp(laddr, "0100007F") == 0)
			n++;
	}
	fclose(f);
	return n;
}

static bool one_connection(void *ud)
{
	(void)ud;
	return proxy_connections() == 1;
}

static void create(const char *coll, const char *json)
{
	ktest_admin_ok("POST", coll, json);
}

static void create_pod(const char *ns, const char *name)
{
	char *coll = kc_xasprintf("/api/v1/namespaces/%s/pods", ns);
	char *body = kc_xasprintf(
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},"
	    "\"spec\":{\"nodeName\":\"node-01\",\"containers\":[{\"name\":\"main\",\"image\":\"trainer:1\","
	    "\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"1\"}}}]},\"status\":{\"phase\":\"Running\"}}",
	    name, ns);

	create(coll, body);
	free(body);
	free(coll);
}

static void create_node(const char *name)
{
	char *body = kc_xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"},"
				  "\"status\":{\"allocatable\":{\"nvidia.com/gpu\":\"8\"}}}",
				  name);

	create("/api/v1/nodes", body);
	free(body);
}

static void create_claim(const char *ns, const char *name)
{
	char *coll = kc_xasprintf("/apis/resource.k8s.io/v1/namespaces/%s/resourceclaims", ns);
	char *body = kc_xasprintf("{\"apiVersion\":\"resource.k8s.io/v1\",\"kind\":\"ResourceClaim\",\"metadata\":"
				  "{\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":{\"devices\":{\"requests\":"
				  "[{\"name\":\"gpu\",\"exactly\":{\"deviceClassName\":\"gpu.example.com\"}}]}}}",
				  name, ns);

	create(coll, body);
	free(body);
	free(coll);
}

static void create_slice(const char *name)
{
	char *body = kc_xasprintf("{\"apiVersion\":\"resource.k8s.io/v1\",\"kind\":\"ResourceSlice\",\"metadata\":"
				  "{\"name\":\"%s\"},\"spec\":{\"driver\":\"gpu.example.com\",\"nodeName\":\"node-01\","
				  "\"pool\":{\"name\":\"node-01\",\"generation\":1,\"resourceSliceCount\":1},"
				  "\"devices\":[{\"name\":\"gpu-0\"}]}}",
				  name);

	create("/apis/resource.k8s.io/v1/resourceslices", body);
	free(body);
}

static void load_cluster(void)
{
	size_t cap = 512 * 1024, len = 0;
	char *buf = kc_xmalloc(cap);

	ktest_admin_ok("POST", "/_test/reset", "{}");
	len += (size_t)snprintf(buf + len, cap - len, "{\"items\":[");
	for (int i = 0; i < N_NODES; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"node-%02d\"},"
					"\"status\":{\"allocatable\":{\"nvidia.com/gpu\":\"8\"}}},",
					i);
	for (int i = 0; i < N_PODS; i++)
		len += (size_t)snprintf(
		    buf + len, cap - len,
		    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-%04d\",\"namespace\":"
		    "\"team-%d\"},\"spec\":{\"nodeName\":\"node-%02d\",\"containers\":[{\"name\":\"main\",\"image\":"
		    "\"trainer:1\"}]},\"status\":{\"phase\":\"Running\"}}%s",
		    i, i % 4, i % N_NODES, i + 1 < N_PODS ? "," : "");
	snprintf(buf + len, cap - len, "]}");
	ktest_admin_ok("POST", "/_test/objects", buf);
	free(buf);
	create_claim("team-0", "claim-0");
	create_slice("slice-0");
}

/* ------------------------------------------------------------- reflectors */

struct recorder {
	struct kc_reflector *r;
	size_t added, modified, deleted;
	char last_key[160];
	/* How many times each watched-for name was ADDED (exactly-once checks). */
	const char *watch_name;
	size_t watch_name_added;
};

static void on_change(struct kc_reflector *r, enum kc_delta delta, const void *obj, const void *old,
		      void *userdata)
{
	struct recorder *rec = userdata;
	const struct kc_meta *m = obj;

	(void)r;
	(void)old;
	if (delta == KC_DELTA_ADDED)
		rec->added++;
	else if (delta == KC_DELTA_MODIFIED)
		rec->modified++;
	else
		rec->deleted++;
	snprintf(rec->last_key, sizeof(rec->last_key), "%s/%s", m->ns, m->name);
	if (delta == KC_DELTA_ADDED && rec->watch_name && strcmp(m->name, rec->watch_name) == 0)
		rec->watch_name_added++;
}

static const struct kc_type *const TYPES[N_REFL] = {&kc_type_pod, &kc_type_node, &kc_type_resource_claim,
						     &kc_type_resource_slice};
static const char *const PATHS[N_REFL] = {"/api/v1/pods", "/api/v1/nodes",
					  "/apis/resource.k8s.io/v1/resourceclaims",
					  "/apis/resource.k8s.io/v1/resourceslices"};

static struct recorder R[N_REFL];

static bool all_synced_and_watching(void *ud)
{
	(void)ud;
	for (int i = 0; i < N_REFL; i++)
		if (!kc_reflector_has_synced(R[i].r) || kc_reflector_stats(R[i].r)->watches < 1)
			return false;
	return true;
}

static void start_reflectors(void)
{
	memset(R, 0, sizeof(R));
	for (int i = 0; i < N_REFL; i++) {
		struct kc_reflector_options o;

		memset(&o, 0, sizeof(o));
		o.loop = &E.loop;
		o.type = TYPES[i];
		o.page_size = 50;
		o.watch_timeout_s = 120;
		o.backoff_initial_ms = 100;
		o.backoff_max_ms = 500;
		o.on_change = on_change;
		o.userdata = &R[i];
		assert_int_equal(kc_reflector_new(E.client, E.intern, &o, &R[i].r), 0);
	}
	for (int i = 0; i < N_REFL; i++)
		assert_int_equal(kc_reflector_start(R[i].r), 0);
	if (!ktest_run_loop_until(&E.loop, all_synced_and_watching, NULL, WAIT_MS))
		fail_msg("reflectors did not sync and start watching");
}

static void free_reflectors(void)
{
	for (int i = 0; i < N_REFL; i++)
		kc_reflector_free(R[i].r);
	for (int i = 0; i < 20; i++)
		uv_run(&E.loop, UV_RUN_NOWAIT);
	memset(R, 0, sizeof(R));
}

/* Until every reflector has seen the server's current resourceVersion (bookmarks come every second). */
static void wait_all_caught_up(void)
{
	for (int i = 0; i < N_REFL; i++)
		ktest_wait_caught_up(&E.loop, R[i].r, WAIT_MS);
}

struct wait_count {
	const size_t *v;
	size_t at_least;
};

static bool count_reached(void *ud)
{
	struct wait_count *w = ud;

	return *w->v >= w->at_least;
}

static void wait_count(const size_t *v, size_t at_least, const char *what)
{
	struct wait_count w = {v, at_least};

	if (!ktest_run_loop_until(&E.loop, count_reached, &w, WAIT_MS))
		fail_msg("%s: %zu, want >= %zu", what, *v, at_least);
}

#define WAIT_STAT(idx, field, value) KTEST_WAIT_STAT(&E.loop, R[idx].r, field, (value), WAIT_MS)

/* ------------------------------------------------------------- plain requests */

struct result {
	bool done;
	unsigned calls;
	long http_status;
	int error;
	uint64_t done_at;
};

static void on_response(struct kc_request *req, const struct kc_response *resp, void *ud)
{
	struct result *r = ud;

	(void)req;
	r->calls++;
	r->done = true;
	r->http_status = resp->http_status;
	r->error = resp->error;
	r->done_at = kc_monotonic_ms();
	if (resp->error)
		fprintf(stderr, "itest_h2: transport error %d: %s\n", resp->error,
			resp->error_message ? resp->error_message : "");
}

static bool is_done(void *ud)
{
	return ((struct result *)ud)->done;
}

static void start_request(const char *method, const char *path, const char *body, bool retry,
			  struct result *res)
{
	struct kc_request_options o = {
	    .method = method, .path = path, .body = body, .body_len = body ? strlen(body) : 0, .retry = retry,
	};

	memset(res, 0, sizeof(*res));
	assert_int_equal(kc_client_request(E.client, &o, on_response, res, NULL), 0);
}

static void wait_done(struct result *res, uint64_t ms)
{
	if (!ktest_run_loop_until(&E.loop, is_done, res, ms))
		fail_msg("request not answered within %llu ms", (unsigned long long)ms);
	assert_int_equal(res->calls, 1);
}

/* No request on path (ud) is still in flight at the server: the server's log gives an
 * entry its duration only when the handler has returned. */
static bool requests_ended(void *ud)
{
	json_t *j = ktest_admin_json("GET", "/_test/requests", NULL);
	json_t *items = json_object_get(j, "items");
	bool ended = true;
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it) {
		const char *p = json_string_value(json_object_get(it, "path"));

		if (p && strcmp(p, ud) == 0 && json_real_value(json_object_get(it, "duration_ms")) <= 0.0)
			ended = false;
	}
	json_decref(j);
	return ended;
}

/* -------------------------------------------------------------- tests */

/* Four watches and a burst of GETs: HTTP/2, all on one TCP connection. */
static void test_multiplexed_on_one_connection(void **state)
{
	static const char *const gets[] = {"/api/v1/namespaces", "/api/v1/nodes/node-03",
					   "/api/v1/namespaces/team-1/pods?limit=10", "/version",
					   "/apis/resource.k8s.io/v1/resourceslices", "/api/v1/namespaces/team-2/pods/pod-0002"};
	struct result res[6];

	(void)state;
	start_reflectors();
	assert_string_equal(kc_client_last_protocol(E.client), "HTTP/2");
	for (size_t i = 0; i < 6; i++)
		start_request("GET", gets[i], NULL, false, &res[i]);
	for (size_t i = 0; i < 6; i++) {
		wait_done(&res[i], WAIT_MS);
		assert_int_equal(res[i].error, 0);
		assert_int_equal(res[i].http_status, 200);
	}
	assert_string_equal(kc_client_last_protocol(E.client), "HTTP/2");
	/* The four watches are open (the server counts them) and share the single connection. */
	{
		json_t *j = ktest_admin_json("GET", "/_test/state", NULL);

		assert_int_equal(json_integer_value(json_object_get(j, "watches")), N_REFL);
		json_decref(j);
	}
	assert_int_equal(proxy_connections(), 1);
	for (int i = 0; i < N_REFL; i++) {
		assert_int_equal(kc_reflector_stats(R[i].r)->watches, 1);
		assert_int_equal(kc_reflector_stats(R[i].r)->watch_restarts, 0);
	}
	assert_int_equal(R[0].added, N_PODS);
	assert_int_equal(R[1].added, N_NODES);
	assert_int_equal(R[2].added, 1);
	assert_int_equal(R[3].added, 1);
	free_reflectors();
}

/* The pods watch's stream is reset (RST_STREAM): only that reflector re-watches, the connection stays. */
static void test_stream_reset_leaves_others(void **state)
{
	char *rv0, *needle;

	(void)state;
	start_reflectors();
	wait_all_caught_up();
	assert_int_equal(proxy_connections(), 1);
	rv0 = kc_xstrdup(kc_reflector_resource_version(R[0].r));
	ktest_admin_ok("DELETE", "/_test/requests", NULL);

	ktest_admin_ok("POST", "/_test/drop-watches", "{\"path_regex\":\"^/api/v1/pods\"}");
	create_pod("team-0", "after-rst");
	create_node("node-rst");
	R[0].watch_name = "after-rst";
	R[1].watch_name = "node-rst";
	WAIT_STAT(0, watch_restarts, 1);
	wait_count(&R[0].watch_name_added, 1, "pod after-rst ADDED");
	wait_count(&R[1].watch_name_added, 1, "node node-rst ADDED");
	wait_all_caught_up();

	assert_int_equal(R[0].watch_name_added, 1);
	assert_int_equal(kc_reflector_stats(R[0].r)->watches, 2);
	assert_int_equal(kc_reflector_stats(R[0].r)->watch_restarts, 1);
	assert_int_equal(kc_reflector_stats(R[0].r)->lists, 1);
	for (int i = 1; i < N_REFL; i++) {
		assert_int_equal(kc_reflector_stats(R[i].r)->watches, 1);
		assert_int_equal(kc_reflector_stats(R[i].r)->watch_restarts, 0);
	}
	/* The re-watch resumed from the last resourceVersion, on the same connection. */
	needle = kc_xasprintf("resourceVersion=%s&", rv0);
	assert_int_equal(ktest_count_requests("watch", "/api/v1/pods", needle, -1), 1);
	assert_int_equal(ktest_count_requests("list", NULL, NULL, -1), 0);
	assert_int_equal(proxy_connections(), 1);
	assert_string_equal(kc_client_last_protocol(E.client), "HTTP/2");
	free(needle);
	free(rv0);
	free_reflectors();
}

/* A graceful proxy restart: GOAWAY, the old worker serves its streams for the grace period
 * (1 s), then closes the connection.  Every reflector re-watches from its last
 * resourceVersion on a new connection, with no relist, and gets the changes made meanwhile
 * exactly once. */
static void test_goaway_rewatch(void **state)
{
	(void)state;
	start_reflectors();
	wait_all_caught_up();
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	R[0].watch_name = "during-goaway";
	R[1].watch_name = "node-goaway";
	R[2].watch_name = "claim-goaway";
	R[3].watch_name = "slice-goaway";

	/* The loop does not run while the proxy reloads and the objects are made. */
	proxy_ctl("reload");
	create_pod("team-1", "during-goaway");
	create_node("node-goaway");
	create_claim("team-1", "claim-goaway");
	create_slice("slice-goaway");
	for (int i = 0; i < N_REFL; i++)
		WAIT_STAT((size_t)i, watch_restarts, 1);
	for (int i = 0; i < N_REFL; i++)
		wait_count(&R[i].watch_name_added, 1, PATHS[i]);
	create_pod("team-2", "after-goaway");
	wait_all_caught_up();
	if (!ktest_run_loop_until(&E.loop, one_connection, NULL, WAIT_MS))
		fail_msg("%u connections to the proxy, want 1", proxy_connections());

	for (int i = 0; i < N_REFL; i++) {
		const struct kc_reflector_stats *st = kc_reflector_stats(R[i].r);

		assert_int_equal(R[i].watch_name_added, 1);
		assert_int_equal(st->lists, 1);
		assert_int_equal(st->relists, 0);
		assert_int_equal(st->gone, 0);
		assert_int_equal(st->watch_restarts, 1);
		assert_int_equal(st->watches, 2);
		assert_int_equal(ktest_count_requests("watch", PATHS[i], "resourceVersion=", -1), 1);
	}
	assert_int_equal(ktest_count_requests("list", NULL, NULL, -1), 0);
	assert_string_equal(R[0].last_key, "team-2/after-goaway");
	assert_string_equal(kc_client_last_protocol(E.client), "HTTP/2");
	free_reflectors();
}

/* An eviction whose stream dies with the proxy: a transport error at once (no hang, no
 * retry: the request is not marked retryable), then one successful eviction on retry. */
static void test_eviction_reset(void **state)
{
	const char *path = "/api/v1/namespaces/team-3/pods/victim/eviction";
	const char *body = "{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":"
			   "{\"name\":\"victim\",\"namespace\":\"team-3\"}}";
	struct result res;
	uint64_t t0;

	(void)state;
	start_reflectors();
	R[0].watch_name = "victim";
	create_pod("team-3", "victim");
	wait_count(&R[0].watch_name_added, 1, "victim ADDED");
	ktest_admin_ok("DELETE", "/_test/requests", NULL);
	/* The server holds this eviction 3 s, then answers 503: it never evicts. */
	ktest_admin_ok("POST", "/_test/faults",
	      "{\"method\":\"POST\",\"path_regex\":\"/pods/victim/eviction$\",\"count\":1,\"delay_ms\":3000,"
	      "\"status\":503}");
	start_request("POST", path, body, false, &res);
	ktest_run_loop_until(&E.loop, is_done, &res, 500);
	assert_false(res.done);
	assert_int_equal(ktest_count_requests("create", path, NULL, -1), 1);

	t0 = kc_monotonic_ms();
	proxy_ctl("kill");
	wait_done(&res, 3000);
	fprintf(stderr, "itest_h2: eviction failed %llu ms after the proxy was killed\n",
		(unsigned long long)(res.done_at - t0));
	assert_int_equal(res.http_status, 0);
	assert_true(res.error < 0);
	assert_true(res.done_at - t0 < 2000);

	proxy_ctl("start");
	start_request("POST", path, body, false, &res);
	wait_done(&res, WAIT_MS);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.http_status, 201);
	/* The reflectors came back too, without relisting. */
	wait_count(&R[0].deleted, 1, "victim DELETED");
	for (int i = 0; i < N_REFL; i++)
		WAIT_STAT((size_t)i, watch_restarts, 1);
	wait_all_caught_up();
	for (int i = 0; i < N_REFL; i++)
		assert_int_equal(kc_reflector_stats(R[i].r)->relists, 0);
	/* Once the held request has ended on the server (its 503 went nowhere: the server logs
	 * it with status 0 or 503): two POSTs, exactly one successful eviction. */
	if (!ktest_run_loop_until(&E.loop, requests_ended, (void *)path, WAIT_MS))
		fail_msg("the held eviction did not end on the server");
	assert_int_equal(ktest_count_requests("create", path, NULL, -1), 2);
	assert_int_equal(ktest_count_requests("create", path, NULL, 201), 1);
	assert_int_equal(ktest_count_requests("create", path, NULL, 0) + ktest_count_requests("create", path, NULL, 503),
			 1);
	assert_string_equal(kc_client_last_protocol(E.client), "HTTP/2");
	free_reflectors();
}

static bool two_connections(void *ud)
{
	(void)ud;
	return proxy_connections() >= 2;
}

/* A watch that stalls (the server sends nothing, not even bookmarks) is re-watched on a NEW
 * connection: the old one may be dead without anyone knowing.  The other reflectors' watches,
 * whose stall timeout is long, stay on the old connection. */
static void test_stall_rewatches_on_new_connection(void **state)
{
	struct recorder rec;
	struct kc_reflector_options o;
	struct kc_reflector *r;

	(void)state;
	start_reflectors();
	if (!ktest_run_loop_until(&E.loop, one_connection, NULL, WAIT_MS))
		fail_msg("%u connections to the proxy, want 1", proxy_connections());
	memset(&rec, 0, sizeof(rec));
	memset(&o, 0, sizeof(o));
	o.loop = &E.loop;
	o.type = &kc_type_node;
	o.page_size = 50;
	o.watch_timeout_s = 120;
	o.stall_timeout_ms = 1000;
	o.backoff_initial_ms = 100;
	o.backoff_max_ms = 500;
	o.on_change = on_change;
	o.userdata = &rec;
	assert_int_equal(kc_reflector_new(E.client, E.intern, &o, &r), 0);
	assert_int_equal(kc_reflector_start(r), 0);
	KTEST_WAIT_STAT(&E.loop, r, watches, 1, WAIT_MS);
	assert_int_equal(proxy_connections(), 1);

	ktest_admin_ok("POST", "/_test/stall-watches", "{\"enabled\":true}");
	KTEST_WAIT_STAT(&E.loop, r, stalls, 1, WAIT_MS);
	KTEST_WAIT_STAT(&E.loop, r, watches, 2, WAIT_MS);
	if (!ktest_run_loop_until(&E.loop, two_connections, NULL, WAIT_MS))
		fail_msg("the re-watch after the stall did not open a new connection (%u connections)",
			 proxy_connections());
	ktest_admin_ok("POST", "/_test/stall-watches", "{\"enabled\":false}");
	for (int i = 0; i < N_REFL; i++)
		assert_int_equal(kc_reflector_stats(R[i].r)->watch_restarts, 0);
	kc_reflector_free(r);
	free_reflectors();
}

/* Runs `$KTEST_H2_CTL op` and returns the number it prints (the relay's port). */
static unsigned proxy_ctl_number(const char *op)
{
	char *cmd = kc_xasprintf("%s %s", getenv("KTEST_H2_CTL"), op);
	FILE *p = popen(cmd, "r");
	unsigned n = 0;

	assert_non_null(p);
	if (fscanf(p, "%u", &n) != 1)
		n = 0;
	if (pclose(p) != 0 || n == 0)
		fail_msg("%s: no number", cmd);
	free(cmd);
	return n;
}

/* The local ports of this host's ESTABLISHED connections to 127.0.0.1:port (the client's ends). */
static size_t client_ports(unsigned port, unsigned *ports, size_t max)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	size_t n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned slot, lport, rport, st;
		char raddr[16];

		if (sscanf(line, " %u: %*8[0-9A-Fa-f]:%x %8[0-9A-Fa-f]:%x %x", &slot, &lport, raddr, &rport, &st) != 5)
			continue;
		if (st == 1 && rport == port && strcmp(raddr, "0100007F") == 0 && n < max)
			ports[n++] = lport;
	}
	fclose(f);
	return n;
}

struct stream {
	struct result res; /* first: on_response takes the stream as its result */
	size_t bytes;
};

static int on_stream_data(struct kc_request *req, const char *buf, size_t len, void *ud)
{
	(void)req;
	(void)buf;
	((struct stream *)ud)->bytes += len;
	return 0;
}

static bool stream_has_data(void *ud)
{
	return ((struct stream *)ud)->bytes > 0;
}

static bool client_closed_flag(void *ud)
{
	return *(bool *)ud;
}

static void set_flag(void *ud)
{
	*(bool *)ud = true;
}

/* A relay between the client and the proxy stops forwarding but keeps its sockets open, as a
 * middlebox that lost its state does: nothing on the HTTP/2 connection moves, and neither side
 * notices.  The health checks (read idle, then an unanswered probe) close the connection, the
 * watch on it fails, and a request queued behind the silence is answered on a NEW connection. */
static void test_silent_connection_abandoned(void **state)
{
	struct kc_client_options co = {.qps = 1000, .burst = 1000, .read_idle_ms = 500, .ping_timeout_ms = 500,
				       .backoff_initial_ms = 100, .backoff_max_ms = 500, .max_attempts = 20};
	struct kc_request_options wo = {.method = "GET", .path = "/api/v1/pods?watch=1&allowWatchBookmarks=true",
					.timeout_ms = UINT64_MAX, .on_data = on_stream_data};
	struct kc_config cfg = E.cfg;
	struct kc_client *c = NULL;
	struct kc_error err;
	struct stream watch;
	struct result res;
	unsigned before[8], after[8];
	size_t n_before, n_after;
	char *op, *url;
	unsigned relay_port;
	uint64_t frozen_at, frozen_mono;
	bool closed = false;

	(void)state;
	op = kc_xasprintf("relay-start --owner-pid %d", (int)getpid());
	relay_port = proxy_ctl_number(op);
	free(op);
	url = kc_xasprintf("https://127.0.0.1:%u", relay_port);
	cfg.server = url;
	assert_int_equal(kc_client_new(&E.loop, &cfg, &co, &c, &err), 0);

	memset(&watch, 0, sizeof(watch));
	assert_int_equal(kc_client_request(c, &wo, on_response, &watch, NULL), 0);
	if (!ktest_run_loop_until(&E.loop, stream_has_data, &watch, WAIT_MS))
		fail_msg("the watch through the relay got no data");
	memset(&res, 0, sizeof(res));
	assert_int_equal(kc_client_request(c, &(struct kc_request_options){.method = "GET", .path = "/version"},
					   on_response, &res, NULL),
			 0);
	wait_done(&res, WAIT_MS);
	assert_int_equal(res.http_status, 200);
	assert_string_equal(kc_client_last_protocol(c), "HTTP/2");
	n_before = client_ports(relay_port, before, KC_ARRAY_SIZE(before));
	assert_int_equal(n_before, 1);

	proxy_ctl("relay-freeze");
	frozen_at = uv_now(&E.loop);
	frozen_mono = kc_monotonic_ms();
	memset(&res, 0, sizeof(res));
	assert_int_equal(kc_client_request(c,
					   &(struct kc_request_options){.method = "GET", .path = "/api/v1/namespaces",
									.retry = true},
					   on_response, &res, NULL),
			 0);
	wait_done(&res, WAIT_MS);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.http_status, 200);
	assert_true(kc_client_dead_connections(c) >= 1);
	assert_true(kc_client_last_success_ms(c) > frozen_at);
	/* The watch on the dead connection ended with a transport error. */
	if (!ktest_run_loop_until(&E.loop, is_done, &watch.res, WAIT_MS))
		fail_msg("the watch on the silent connection did not end");
	assert_true(watch.res.error < 0);
	/* The answer came on another connection: the old one is no longer established. */
	n_after = client_ports(relay_port, after, KC_ARRAY_SIZE(after));
	assert_true(n_after >= 1);
	for (size_t i = 0; i < n_after; i++)
		assert_int_not_equal(after[i], before[0]);
	fprintf(stderr, "itest_h2: silent connection abandoned; answered %llu ms after the freeze\n",
		(unsigned long long)(res.done_at - frozen_mono));

	kc_client_close(c, set_flag, &closed);
	if (!ktest_run_loop_until(&E.loop, client_closed_flag, &closed, WAIT_MS))
		fail_msg("client did not close");
	proxy_ctl("relay-stop");
	free(url);
}

/* ------------------------------------------------------------- fixture */

static int group_setup(void **state)
{
	const char *url = getenv("KTEST_H2_URL");
	const char *colon;

	(void)state;
	if (!ktest_env_present() || !url || !getenv("KTEST_H2_CTL")) {
		fprintf(stderr, "itest_h2: run me with test/run_with_apiserver.py (--h2; needs nghttpx)\n");
		return -1;
	}
	colon = strrchr(url, ':');
	if (!colon || (proxy_port = (unsigned)atoi(colon + 1)) == 0)
		return -1;
	if (ktest_env_setup(&E, "itest_h2") < 0)
		return -1;
	load_cluster();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return ktest_env_teardown(&E, "itest_h2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_multiplexed_on_one_connection),
	    cmocka_unit_test(test_stream_reset_leaves_others),
	    cmocka_unit_test(test_goaway_rewatch),
	    cmocka_unit_test(test_eviction_reset),
	    cmocka_unit_test(test_silent_connection_abandoned),
	    cmocka_unit_test(test_stall_rewatches_on_new_connection),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
