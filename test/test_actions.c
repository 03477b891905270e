/*
 * Unit tests of the action runner (controller/actions.c) over a real core and
 * a fake sender: exactly which requests are built, in what order, and what
 * their answers do to the core and the metrics.  No server, no loop.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "actions.h"
#include "core_builders.h"
#include "kc_log.h"
#include "kc_util.h"

#define GPU "nvidia.com/gpu"
#define MAX_SENT 16

/* A request the runner sent, kept until the test answers it. */
struct sent {
	char method[8];
	char path[256];
	char *body;
	kc_response_cb done;
	void *userdata;
	bool answered;
};

struct fake {
	struct sent sent[MAX_SENT];
	size_t n;
	int fail_with; /* < 0: the sender refuses the request */
	bool deny;     /* may_write says no: the lease is not fresh */
	unsigned wakeups;
	uint64_t now;
	struct tb_env env;
	struct metrics *metrics;
	struct actions *actions;
};

static int fake_send(void *sender, const struct kc_request_options *o, kc_response_cb done, void *userdata)
{
	struct fake *f = sender;
	struct sent *s;

	if (f->fail_with < 0)
		return f->fail_with;
	assert_true(f->n < MAX_SENT);
	s = &f->sent[f->n++];
	snprintf(s->method, sizeof(s->method), "%s", o->method);
	snprintf(s->path, sizeof(s->path), "%s", o->path);
	s->body = kc_xstrdup(o->body ? o->body : "");
	s->done = done;
	s->userdata = userdata;
	return 0;
}

static uint64_t fake_now(void *ud)
{
	return ((struct fake *)ud)->now;
}

static bool fake_may_write(void *ud)
{
	return !((struct fake *)ud)->deny;
}

static void fake_done(void *ud)
{
	((struct fake *)ud)->wakeups++;
}

static void answer(struct fake *f, size_t i, long status)
{
	/* A 429 is a PodDisruptionBudget's refusal, as the eviction subresource words it. */
	static struct kc_status_cause pdb_cause = {.reason = "DisruptionBudget",
						   .message = "The disruption budget pdb needs 1 healthy pods"};
	static struct kc_status pdb = {.code = 429, .status = "Failure", .reason = "TooManyRequests",
				       .message = "Cannot evict pod as it would violate the pod's disruption budget.",
				       .causes = &pdb_cause, .n_causes = 1};
	struct kc_response resp = {.http_status = status, .status = status == 429 ? &pdb : NULL};

	/* The API server echoes a created Event (the recorder learns its name from it). */
	if (status == 201 && strcmp(f->sent[i].method, "POST") == 0 && strstr(f->sent[i].path, "/events")) {
		resp.body = f->sent[i].body;
		resp.body_len = strlen(f->sent[i].body);
	}
	assert_true(i < f->n);
	assert_false(f->sent[i].answered);
	f->sent[i].answered = true;
	f->sent[i].done(NULL, &resp, f->sent[i].userdata);
}

/* Answers request i with a body (a GET of a node, a list). */
static void answer_body(struct fake *f, size_t i, long status, const char *body)
{
	struct kc_response resp = {.http_status = status, .body = body, .body_len = strlen(body)};

	assert_true(i < f->n);
	assert_false(f->sent[i].answered);
	f->sent[i].answered = true;
	f->sent[i].done(NULL, &resp, f->sent[i].userdata);
}

/* A GPU node n1 and, with sick, pod ml/trainer-x (uid u1) on a device the kubelet calls Unhealthy. */
static void setup(struct fake *f, struct policy *p)
{
	struct actions_options o = {0};
	struct kc_node *n = tb_node("n1");
	struct kc_pod *pod = tb_gpu_pod("ml", "trainer-x", "u1", "n1", GPU, 1);

	memset(f, 0, sizeof(*f));
	tb_env_init(&f->env, p, true);
	tb_node_resource(n, GPU, 8, 8);
	tb_put_node(&f->env, n);
	tb_status_health(tb_pod_status(pod, "main"), GPU, "GPU-1", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_put_pod(&f->env, pod);
	f->metrics = metrics_new();
	f->now = 60000;
	o.core = f->env.core;
	o.metrics = f->metrics;
	o.identity = "host_1";
	o.pod_ns = "kube-system";
	o.pod_name = "dd-0";
	o.pod_uid = "dd-uid";
	o.send = fake_send;
	o.sender = f;
	o.now_ms = fake_now;
	o.may_write = fake_may_write;
	o.on_done = fake_done;
	o.userdata = f;
	f->actions = actions_new(&o);
}

static void teardown_fake(struct fake *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->sent[i].body);
	assert_int_equal(actions_in_flight(f->actions), 0);
	actions_free(f->actions);
	metrics_free(f->metrics);
	tb_env_done(&f->env);
	tb_reset();
}

static json_t *body_json(const struct sent *s)
{
	json_t *j = json_loads(s->body, 0, NULL);

	assert_non_null(j);
	return j;
}

static double metric(struct fake *f, const char *name, const char *l1, const char *l2)
{
	double v = -1;

	if (metrics_get(f->metrics, name, &v, l1, l2, NULL) < 0)
		return 0;
	return v;
}

/* An eviction: the Event first, the Eviction only once the Event is answered, then the core hears the result. */
static void test_event_then_eviction(void **state)
{
	struct fake f;
	json_t *j;

	(void)state;
	setup(&f, tb_policy());
	assert_int_equal(actions_pump(f.actions, true, f.now), UINT64_MAX);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.sent[0].method, "POST");
	assert_string_equal(f.sent[0].path, "/api/v1/namespaces/ml/events");
	j = body_json(&f.sent[0]);
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "UnhealthyDevice");
	assert_string_equal(json_string_value(json_object_get(j, "type")), "Warning");
	assert_string_equal(json_string_value(json_object_get(j, "action")), "Evict");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "involvedObject"), "uid")), "u1");
	assert_string_equal(json_string_value(json_object_get(j, "reportingInstance")), "host_1");
	json_decref(j);
	assert_int_equal(actions_in_flight(f.actions), 1);

	answer(&f, 0, 201);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.sent[1].method, "POST");
	assert_string_equal(f.sent[1].path, "/api/v1/namespaces/ml/pods/trainer-x/eviction");
	assert_string_equal(f.sent[1].body,
			    "{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{\"name\":\"trainer-x\","
			    "\"namespace\":\"ml\"},\"deleteOptions\":{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\","
			    "\"preconditions\":{\"uid\":\"u1\"}}}");
	assert_int_equal(f.wakeups, 0);

	answer(&f, 1, 201);
	assert_int_equal(actions_in_flight(f.actions), 0);
	assert_int_equal(f.wakeups, 1);
	assert_int_equal(core_stats(f.env.core)->evicted, 1);
	assert_true(metric(&f, "evictions_total", "success", "PodResourceHealth") == 1);
	assert_int_equal(actions_pump(f.actions, true, f.now), UINT64_MAX);
	assert_int_equal(f.n, 2); /* never twice */
	teardown_fake(&f);
}

/* A blocked eviction goes back to the core, which retries it later: Event and Eviction again. */
static void test_blocked_then_retried(void **state)
{
	struct fake f;
	uint64_t next;

	(void)state;
	setup(&f, tb_policy());
	actions_pump(f.actions, true, f.now);
	answer(&f, 0, 201);
	answer(&f, 1, 429);
	assert_int_equal(core_stats(f.env.core)->blocked, 1);
	assert_true(metric(&f, "evictions_total", "blocked", "PodResourceHealth") == 1);
	next = actions_pump(f.actions, true, f.now);
	assert_true(next > f.now && next != UINT64_MAX);
	assert_int_equal(f.n, 2);
	f.now = next;
	actions_pump(f.actions, true, f.now);
	assert_int_equal(f.n, 3);
	/* The same Event again: counted on the first one, not created anew (issue 14 #11). */
	assert_string_equal(f.sent[2].method, "PATCH");
	assert_non_null(strstr(f.sent[2].path, "/api/v1/namespaces/ml/events/trainer-x."));
	assert_non_null(strstr(f.sent[2].body, "\"count\":2"));
	answer(&f, 2, 200);
	assert_string_equal(f.sent[3].path, "/api/v1/namespaces/ml/pods/trainer-x/eviction");
	answer(&f, 3, 201);
	teardown_fake(&f);
}

/* deleteAfter: once evictions were refused long enough, the write is a DELETE with a UID precondition. */
static void test_delete_after(void **state)
{
	struct fake f;
	size_t i = 0;

	(void)state;
	setup(&f, tb_policy_yaml("eviction: {deleteAfter: 1s}\n"));
	for (int round = 0; round < 20 && f.n < MAX_SENT - 2; round++) {
		uint64_t next;

		actions_pump(f.actions, true, f.now);
		if (i == f.n)
			break;
		answer(&f, i++, 201); /* the Event */
		if (strcmp(f.sent[i].method, "DELETE") == 0)
			break;
		answer(&f, i++, 429);
		next = actions_pump(f.actions, true, f.now);
		assert_true(next != UINT64_MAX);
		f.now = next;
	}
	assert_string_equal(f.sent[i].method, "DELETE");
	assert_string_equal(f.sent[i].path, "/api/v1/namespaces/ml/pods/trainer-x");
	assert_non_null(strstr(f.sent[i].body, "\"preconditions\":{\"uid\":\"u1\"}"));
	assert_non_null(strstr(f.sent[i - 1].body, "\"action\":\"Delete\""));
	answer(&f, i, 200);
	assert_int_equal(core_stats(f.env.core)->deleted, 1);
	teardown_fake(&f);
}

/* A dry run posts a Normal Event and nothing else. */
static void test_dry_run(void **state)
{
	struct fake f;

	(void)state;
	setup(&f, tb_policy_yaml("dryRun: true\n"));
	actions_pump(f.actions, true, f.now);
	assert_int_equal(f.n, 1);
	assert_non_null(strstr(f.sent[0].body, "\"type\":\"Normal\""));
	assert_non_null(strstr(f.sent[0].body, "\"action\":\"None\""));
	assert_true(metric(&f, "evictions_total", "dry_run", "PodResourceHealth") == 1);
	answer(&f, 0, 201);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.wakeups, 1);
	teardown_fake(&f);
}

/* A failed Event still lets the eviction go; a request the sender refuses counts as an error. */
static void test_send_failures(void **state)
{
	struct fake f;

	(void)state;
	setup(&f, tb_policy());
	actions_pump(f.actions, true, f.now);
	answer(&f, 0, 500);
	assert_int_equal(f.n, 2);
	f.fail_with = -ESHUTDOWN;
	answer(&f, 1, 201);
	teardown_fake(&f);

	setup(&f, tb_policy());
	f.fail_with = -ESHUTDOWN;
	actions_pump(f.actions, true, f.now);
	assert_int_equal(f.n, 0);
	assert_int_equal(actions_in_flight(f.actions), 0);
	assert_int_equal(core_stats(f.env.core)->errors, 1);
	assert_true(metric(&f, "evictions_total", "error", "PodResourceHealth") == 1);
	teardown_fake(&f);
}

/* Not while shutting down; without a core nothing at all. */
static void test_no_actions(void **state)
{
	struct fake f;

	(void)state;
	setup(&f, tb_policy());
	actions_pump(f.actions, false, f.now);
	assert_int_equal(f.n, 0);
	actions_set_core(f.actions, NULL);
	assert_int_equal(actions_pump(f.actions, true, f.now), UINT64_MAX);
	assert_int_equal(f.n, 0);
	teardown_fake(&f);
}

/* Notices: a bare pod's NotEvicted on the pod; the breaker's on our own pod. */
static void test_notices(void **state)
{
	struct fake f;
	struct kc_pod *bare = tb_pod("ml", "bare", "u2", "n1");

	(void)state;
	setup(&f, tb_policy());
	tb_pod_container(bare, "main", GPU, 1);
	tb_status_health(tb_pod_status(bare, "main"), GPU, "GPU-2", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_put_pod(&f.env, bare);
	actions_pump(f.actions, false, f.now);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.sent[0].path, "/api/v1/namespaces/ml/events");
	assert_non_null(strstr(f.sent[0].body, "\"reason\":\"NotEvicted\""));
	assert_non_null(strstr(f.sent[0].body, "\"name\":\"bare\""));
	answer(&f, 0, 201);
	assert_int_equal(f.wakeups, 1); /* room for the next notice */
	teardown_fake(&f);
}

static void test_breaker_notice_on_own_pod(void **state)
{
	struct fake f;
	bool seen = false;

	(void)state;
	setup(&f, tb_policy_yaml("eviction: {circuitBreaker: {enabled: true, minNodes: 0}}\n"));
	actions_pump(f.actions, false, f.now);
	assert_true(f.n >= 1);
	for (size_t i = 0; i < f.n; i++)
		if (strstr(f.sent[i].body, "CircuitBreakerOpen")) {
			seen = true;
			assert_string_equal(f.sent[i].path, "/api/v1/namespaces/kube-system/events");
			assert_non_null(strstr(f.sent[i].body, "\"name\":\"dd-0\""));
			assert_non_null(strstr(f.sent[i].body, "\"uid\":\"dd-uid\""));
		}
	assert_true(seen);
	for (size_t i = 0; i < f.n; i++)
		answer(&f, i, 201);
	teardown_fake(&f);
}

/* Issue 14 #16: the lease goes stale while the Event is in flight: no eviction. */
static void test_lease_lost_while_event_in_flight(void **state)
{
	struct fake f;

	(void)state;
	setup(&f, tb_policy());
	actions_pump(f.actions, true, f.now);
	assert_int_equal(f.n, 1);
	f.deny = true;
	answer(&f, 0, 201);
	assert_int_equal(f.n, 1); /* no Eviction */
	assert_int_equal(actions_in_flight(f.actions), 0);
	assert_int_equal(core_stats(f.env.core)->errors, 0);
	assert_int_equal(core_stats(f.env.core)->in_flight, 0);
	/* Nothing is chosen while the lease is stale, not even notices... */
	assert_int_equal(actions_pump(f.actions, true, f.now), UINT64_MAX);
	assert_int_equal(f.n, 1);
	/* ...and once it is fresh again the pod is still due (it was never given up). */
	f.deny = false;
	actions_pump(f.actions, true, f.now);
	assert_int_equal(f.n, 2);
	answer(&f, 1, 200);
	assert_string_equal(f.sent[2].path, "/api/v1/namespaces/ml/pods/trainer-x/eviction");
	answer(&f, 2, 201);
	assert_int_equal(core_stats(f.env.core)->evicted, 1);
	teardown_fake(&f);
}

/* Issue 14 #16: a reload excludes the namespace while the Event is in flight: no eviction. */
static void test_reload_excludes_namespace_while_event_in_flight(void **state)
{
	struct fake f;

	(void)state;
	setup(&f, tb_policy());
	actions_pump(f.actions, true, f.now);
	tb_set_policy(&f.env, tb_policy_yaml("podFilters: {namespaces: {exclude: [ml]}}\n"));
	answer(&f, 0, 201);
	assert_int_equal(f.n, 1);
	assert_int_equal(actions_in_flight(f.actions), 0);
	assert_int_equal(actions_pump(f.actions, true, f.now), UINT64_MAX);
	assert_int_equal(f.n, 1);
	assert_int_equal(core_stats(f.env.core)->skipped[PLANNER_SKIP_NAMESPACE], 1);
	teardown_fake(&f);
}

/* Issue 14 #16: the pod is deleted, or its device is healthy again, while the Event is in flight. */
static void test_pod_changed_while_event_in_flight(void **state)
{
	struct fake f;
	struct kc_pod *healthy;

	(void)state;
	setup(&f, tb_policy());
	actions_pump(f.actions, true, f.now);
	tb_del_pod(&f.env, "ml", "trainer-x");
	answer(&f, 0, 201);
	assert_int_equal(f.n, 1);
	assert_int_equal(core_stats(f.env.core)->in_flight, 0);
	teardown_fake(&f);

	setup(&f, tb_policy());
	actions_pump(f.actions, true, f.now);
	healthy = tb_gpu_pod("ml", "trainer-x", "u1", "n1", GPU, 1);
	tb_status_health(tb_pod_status(healthy, "main"), GPU, "GPU-1", KC_HEALTH_HEALTHY, "");
	tb_put_pod(&f.env, healthy);
	answer(&f, 0, 201);
	assert_int_equal(f.n, 1);
	assert_int_equal(actions_pump(f.actions, true, f.now), UINT64_MAX);
	assert_int_equal(f.n, 1);
	teardown_fake(&f);
}

/* Issue 14 #14: one latency sample per pod rescued, however many attempts it took. */
static void test_latency_once_per_rescue(void **state)
{
	struct fake f;
	double count = -1;
	size_t i = 0;

	(void)state;
	setup(&f, tb_policy());
	for (int attempt = 0; attempt < 3; attempt++) {
		actions_pump(f.actions, true, f.now);
		answer(&f, i++, attempt == 0 ? 201 : 200); /* the Event (then its PATCHes) */
		answer(&f, i++, attempt < 2 ? 429 : 201);
		f.now = actions_pump(f.actions, true, f.now) == UINT64_MAX ? f.now : core_next_wakeup(f.env.core, f.now);
	}
	assert_int_equal(core_stats(f.env.core)->evicted, 1);
	assert_int_equal(metrics_get(f.metrics, "eviction_latency_seconds", &count, NULL), 0);
	assert_true(count == 1);
	assert_true(metric(&f, "evictions_total", "blocked", "PodResourceHealth") == 2);
	teardown_fake(&f);
}

/* Issue 14 #11/#19: at most ACTIONS_MAX_NOTICES_IN_FLIGHT notice Events wait for an answer. */
static void test_notices_bounded(void **state)
{
	struct fake f;

	(void)state;
	setup(&f, tb_policy());
	for (int i = 0; i < 12; i++) {
		struct kc_pod *bare = tb_pod("ml", tb_fmt("bare-%d", i), tb_fmt("ub%d", i), "n1");

		tb_pod_container(bare, "main", GPU, 1);
		tb_status_health(tb_pod_status(bare, "main"), GPU, tb_fmt("GPU-%d", 10 + i), KC_HEALTH_UNHEALTHY, "XID");
		tb_put_pod(&f.env, bare);
	}
	actions_pump(f.actions, false, f.now);
	assert_int_equal(f.n, ACTIONS_MAX_NOTICES_IN_FLIGHT);
	answer(&f, 0, 201);
	actions_pump(f.actions, false, f.now);
	assert_int_equal(f.n, ACTIONS_MAX_NOTICES_IN_FLIGHT + 1);
	for (size_t i = 1; i < f.n; i++)
		answer(&f, i, 201);
	actions_pump(f.actions, false, f.now);
	assert_int_equal(f.n, 12);
	for (size_t i = ACTIONS_MAX_NOTICES_IN_FLIGHT + 1; i < f.n; i++)
		answer(&f, i, 201);
	teardown_fake(&f);
}

static const char *const node_json_5 =
    "{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"5\"},\"spec\":{\"taints\":["
    "{\"key\":\"nvidia.com/gpu\",\"value\":\"present\",\"effect\":\"NoSchedule\"}]}}";
static const char *const node_json_6 =
    "{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"6\",\"labels\":{\"x\":\"y\"}},\"spec\":{"
    "\"taints\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"present\",\"effect\":\"NoSchedule\"},"
    "{\"key\":\"other\",\"effect\":\"NoSchedule\"}]}}";

/*
 * A node fence: GET the node, merge-patch its taints with its resourceVersion; a 409
 * reads it again and patches the new version; only then the pod's Event and eviction.
 */
static void test_node_fence_read_modify_write(void **state)
{
	struct fake f;
	struct kc_node *n;
	json_t *j, *taints;

	(void)state;
	setup(&f, tb_policy_yaml("devices: {dra: false}\nsignals:\n  nodeConditions:\n    - {type: GPUXIDErrors}\n"
				 "remediation: {}\n"));
	n = tb_node_clone(kc_store_get(f.env.nodes, "", "n1"));
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79");
	tb_put_node(&f.env, n);
	actions_pump(f.actions, true, f.now);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.sent[0].method, "GET");
	assert_string_equal(f.sent[0].path, "/api/v1/nodes/n1");
	answer_body(&f, 0, 200, node_json_5);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.sent[1].method, "PATCH");
	assert_string_equal(f.sent[1].path, "/api/v1/nodes/n1");
	j = body_json(&f.sent[1]);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion")), "5");
	json_decref(j);
	answer(&f, 1, 409);
	/* Read again, never a blind write; no eviction meanwhile. */
	assert_int_equal(f.n, 3);
	assert_string_equal(f.sent[2].method, "GET");
	actions_pump(f.actions, true, f.now);
	assert_int_equal(f.n, 3);
	answer_body(&f, 2, 200, node_json_6);
	assert_int_equal(f.n, 4);
	j = body_json(&f.sent[3]);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion")), "6");
	taints = json_object_get(json_object_get(j, "spec"), "taints");
	assert_int_equal(json_array_size(taints), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(taints, 1), "key")), "other");
	json_decref(j);
	answer(&f, 3, 200);
	assert_int_equal(core_stats(f.env.core)->quarantine_adds, 1);
	/* Now the pod: its Event first. */
	actions_pump(f.actions, true, f.now);
	assert_int_equal(f.n, 5);
	assert_string_equal(f.sent[4].path, "/api/v1/namespaces/ml/events");
	answer(&f, 4, 201);
	assert_string_equal(f.sent[5].path, "/api/v1/namespaces/ml/pods/trainer-x/eviction");
	answer(&f, 5, 201);
	teardown_fake(&f);
}

/* The one unanswered request with this method and exactly this path. */
static size_t pending(struct fake *f, const char *method, const char *path)
{
	size_t found = SIZE_MAX;

	for (size_t i = 0; i < f->n; i++)
		if (!f->sent[i].answered && strcmp(f->sent[i].method, method) == 0 && strcmp(f->sent[i].path, path) == 0) {
			assert_int_equal(found, SIZE_MAX);
			found = i;
		}
	if (found == SIZE_MAX)
		fail_msg("no pending %s %s", method, path);
	return found;
}

#define RULES_API "/apis/resource.k8s.io/%s/devicetaintrules"
#define OURS "?labelSelector=app.kubernetes.io%%2Fmanaged-by%%3Ddevice-descheduler"

/*
 * DeviceTaintRule versions: the list of our rules and a create race down the versions;
 * once the list finds the served version (v1alpha3) the create uses it, and the device is
 * never taken for one no version serves.
 */
static void test_rule_version_fallback_while_listing(void **state)
{
	struct fake f;
	struct kc_pod *p = tb_pod("ml", "dra", "u9", "n1");
	struct kc_resource_claim *c;
	size_t i;

	(void)state;
	setup(&f, tb_policy_yaml("remediation: {}\n"));
	tb_pod_owner(p, "StatefulSet", "s", true);
	tb_pod_container(p, "main", NULL, 0);
	tb_pod_claim(p, "gpu", "dra-gpu");
	tb_put_pod(&f.env, p);
	c = tb_claim("ml", "dra-gpu", "claim-u9");
	tb_claim_result(c, "gpu", "gpu.example.com", "n1", "gpu-0");
	tb_claim_consumer(c, "dra", "u9");
	tb_claim_device_condition(c, "gpu.example.com", "n1", "gpu-0", "Ready", KC_COND_FALSE, "ECC");
	tb_put_claim(&f.env, c);
	actions_pump(f.actions, true, f.now);
	/* The other pod needs no fence (KEP-4680 Unhealthy): it goes its own way. */
	answer(&f, pending(&f, "POST", "/api/v1/namespaces/ml/events"), 201);
	answer(&f, pending(&f, "POST", "/api/v1/namespaces/ml/pods/trainer-x/eviction"), 201);
	/* The list of our rules and the rule race down the versions. */
	answer(&f, pending(&f, "GET", tb_fmt(RULES_API OURS, "v1")), 404);
	answer(&f, pending(&f, "POST", tb_fmt(RULES_API, "v1")), 404);
	answer(&f, pending(&f, "GET", tb_fmt(RULES_API OURS, "v1beta2")), 404);
	i = pending(&f, "GET", tb_fmt(RULES_API OURS, "v1alpha3"));
	answer_body(&f, i, 200, "{\"kind\":\"DeviceTaintRuleList\",\"items\":[]}");
	/* The list found v1alpha3 meanwhile: the create's next try goes there, not "no API at all". */
	answer(&f, pending(&f, "POST", tb_fmt(RULES_API, "v1beta2")), 404);
	answer(&f, pending(&f, "POST", tb_fmt(RULES_API, "v1alpha3")), 201);
	assert_int_equal(core_stats(f.env.core)->quarantined_devices, 1);
	assert_int_equal(core_stats(f.env.core)->quarantined_nodes, 0);
	actions_pump(f.actions, true, f.now);
	answer(&f, pending(&f, "POST", "/api/v1/namespaces/ml/events"), 201);
	answer(&f, pending(&f, "POST", "/api/v1/namespaces/ml/pods/dra/eviction"), 201);
	teardown_fake(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_event_then_eviction), cmocka_unit_test(test_blocked_then_retried),
	    cmocka_unit_test(test_delete_after),	cmocka_unit_test(test_dry_run),
	    cmocka_unit_test(test_send_failures),	cmocka_unit_test(test_no_actions),
	    cmocka_unit_test(test_notices),		cmocka_unit_test(test_breaker_notice_on_own_pod),
	    cmocka_unit_test(test_lease_lost_while_event_in_flight),
	    cmocka_unit_test(test_reload_excludes_namespace_while_event_in_flight),
	    cmocka_unit_test(test_pod_changed_while_event_in_flight),
	    cmocka_unit_test(test_latency_once_per_rescue),
	    cmocka_unit_test(test_notices_bounded),
	    cmocka_unit_test(test_node_fence_read_modify_write),
	    cmocka_unit_test(test_rule_version_fallback_while_listing),
	};

	kc_log_setup(-1, KC_LOG_TEXT, stderr);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
