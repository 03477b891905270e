/*
 * Unit tests of explain (controller/core/explain.c): one test per decision
 * kind (healthy, would evict now, would evict in N s, never, held by the node
 * limit, held by the circuit breaker, dry run, unknown pod), each with the
 * exact text, and the devices, hits and filters it reports, including DRA.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core_builders.h"
#include "explain.h"
#include "quarantine.h"

#define GPU "nvidia.com/gpu"
/* The wall clock given to explain_pod: 2026-12-03T08:00:00Z. */
#define NOW_S 1796284800

static struct kc_pod *gpu_pod(const char *name, const char *uid, const char *node, const char *dev,
			      enum kc_health h)
{
	struct kc_pod *p = tb_gpu_pod("ml", name, uid, node, GPU, 1);

	tb_status_health(tb_pod_status(p, "main"), GPU, dev, h, h == KC_HEALTH_UNHEALTHY ? "XID 79" : "");
	return p;
}

static void put_gpu_node(struct tb_env *e, const char *name)
{
	struct kc_node *n = tb_node(name);

	tb_node_resource(n, GPU, 8, 8);
	tb_put_node(e, n);
}

static void explain(struct tb_env *e, const char *name, struct explain *ret)
{
	assert_int_equal(explain_pod(e->p, e->pods, e->nodes, e->claims, e->slices, e->rules, "ml", name, NOW_S, ret),
			 0);
}

static void test_healthy_and_unknown_pod(void **state)
{
	struct tb_env e;
	struct explain x;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	put_gpu_node(&e, "n1");
	tb_put_pod(&e, gpu_pod("ok", "u1", "n1", "GPU-1", KC_HEALTH_HEALTHY));
	explain(&e, "ok", &x);
	assert_int_equal(x.decision, CORE_DECISION_HEALTHY);
	assert_string_equal(x.decision_text, "not evicted: no device it holds looks unhealthy");
	assert_string_equal(x.uid, "u1");
	assert_string_equal(x.node, "n1");
	assert_string_equal(x.owner_kind, "ReplicaSet");
	assert_int_equal(x.n_devices, 1);
	assert_string_equal(x.devices[0].resource, GPU);
	assert_string_equal(x.devices[0].device, "GPU-1");
	assert_string_equal(x.devices[0].health, "Healthy");
	assert_int_equal(x.n_hits, 0);
	assert_true(x.signal_enabled[HEALTH_POD_RESOURCE]);
	assert_false(x.signal_enabled[HEALTH_EXIT_CODE]);
	for (size_t i = 0; i < PLANNER_SKIP_COUNT; i++)
		assert_false(x.filter_fails[i]);
	explain_done(&x);
	assert_null(x.uid);
	assert_int_equal(explain_pod(e.p, e.pods, e.nodes, e.claims, e.slices, e.rules, "ml", "nope", NOW_S, &x), -ENOENT);
	explain_done(&x);
	tb_env_done(&e);
}

static void test_would_evict_now(void **state)
{
	struct tb_env e;
	struct explain x;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	put_gpu_node(&e, "n1");
	tb_put_pod(&e, gpu_pod("sick", "u1", "n1", "GPU-7", KC_HEALTH_UNHEALTHY));
	explain(&e, "sick", &x);
	assert_int_equal(x.decision, CORE_DECISION_DUE);
	assert_string_equal(x.decision_text, "would evict now");
	assert_string_equal(x.action_message, "Evicting pod ml/sick: nvidia.com/gpu device GPU-7 is Unhealthy "
					      "(signal PodResourceHealth: XID 79)");
	assert_int_equal(x.n_hits, 1);
	assert_int_equal(x.hits[0].signal, HEALTH_POD_RESOURCE);
	assert_string_equal(x.hits[0].device, "GPU-7");
	assert_string_equal(x.devices[0].health, "Unhealthy");
	assert_false(x.breaker_open);
	explain_done(&x);

	/* The same in dry run. */
	tb_set_policy(&e, tb_policy_yaml("dryRun: true\n"));
	explain(&e, "sick", &x);
	assert_string_equal(x.decision_text, "would evict now (dry run: only reported)");
	assert_string_equal(x.action_message, "Would evict pod ml/sick: nvidia.com/gpu device GPU-7 is Unhealthy "
					      "(signal PodResourceHealth: XID 79)");
	explain_done(&x);
	tb_env_done(&e);
}

static void test_would_evict_later(void **state)
{
	struct tb_env e;
	struct explain x;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("signals: {podResourceHealth: {for: 25s}}\n"), true);
	put_gpu_node(&e, "n1");
	tb_put_pod(&e, gpu_pod("sick", "u1", "n1", "GPU-7", KC_HEALTH_UNHEALTHY));
	explain(&e, "sick", &x);
	assert_int_equal(x.decision, CORE_DECISION_WAITING);
	assert_int_equal(x.due_in_ms, 25000);
	assert_string_equal(x.decision_text, "would evict in 25 s (debounce)");
	assert_int_equal(x.hits[0].for_ms, 25000);
	assert_null(x.action_message);
	explain_done(&x);
	tb_env_done(&e);
}

static void test_never(void **state)
{
	struct tb_env e;
	struct explain x;
	struct kc_pod *p;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("podFilters: {namespaces: {exclude: [ml]}}\n"), true);
	put_gpu_node(&e, "n1");
	p = tb_pod("ml", "agent", "u1", "n1");
	tb_pod_container(p, "main", GPU, 1);
	tb_pod_owner(p, "DaemonSet", "dcgm", true);
	tb_pod_annotation(p, "device-descheduler.io/evict", "false");
	tb_status_health(tb_pod_status(p, "main"), GPU, "GPU-1", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_put_pod(&e, p);
	explain(&e, "agent", &x);
	assert_int_equal(x.decision, CORE_DECISION_NEVER);
	assert_int_equal(x.skip, PLANNER_SKIP_DAEMONSET);
	assert_string_equal(x.decision_text, "never: pod is owned by a DaemonSet");
	/* Every filter that keeps it, not only the first. */
	assert_true(x.filter_fails[PLANNER_SKIP_DAEMONSET]);
	assert_true(x.filter_fails[PLANNER_SKIP_NAMESPACE]);
	assert_true(x.filter_fails[PLANNER_SKIP_OPT_OUT]);
	assert_false(x.filter_fails[PLANNER_SKIP_BARE]);
	assert_false(x.filter_fails[PLANNER_SKIP_SELECTOR]);
	assert_int_equal(x.n_hits, 1);
	explain_done(&x);
	tb_env_done(&e);
}

static void test_held_by_node_limit(void **state)
{
	struct tb_env e;
	struct explain a, b;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("eviction: {limits: {window: 1m, maxPerNode: 1, maxTotal: 0}}\n"), true);
	put_gpu_node(&e, "n1");
	tb_put_pod(&e, gpu_pod("first", "u1", "n1", "GPU-1", KC_HEALTH_UNHEALTHY));
	tb_put_pod(&e, gpu_pod("second", "u2", "n1", "GPU-2", KC_HEALTH_UNHEALTHY));
	explain(&e, "first", &a);
	explain(&e, "second", &b);
	/* The core's queue order decides which one goes first; the other waits a window. */
	if (a.decision != CORE_DECISION_DUE) {
		struct explain t = a;

		a = b;
		b = t;
	}
	assert_int_equal(a.decision, CORE_DECISION_DUE);
	assert_int_equal(b.decision, CORE_DECISION_HELD);
	assert_int_equal(b.hold, LIMITS_HOLD_NODE);
	assert_int_equal(b.due_in_ms, 60000);
	assert_string_equal(b.decision_text, "held: node limit (maxPerNode per window); would evict in 60 s");
	explain_done(&a);
	explain_done(&b);
	tb_env_done(&e);
}

static void test_held_by_breaker(void **state)
{
	struct tb_env e;
	struct explain x;

	(void)state;
	tb_env_init(&e,
		    tb_policy_yaml("eviction: {circuitBreaker: {maxUnhealthyNodePercent: 50, minNodes: 4}}\n"),
		    true);
	for (int i = 1; i <= 4; i++) {
		put_gpu_node(&e, tb_fmt("n%d", i));
		if (i <= 3)
			tb_put_pod(&e, gpu_pod(tb_fmt("p%d", i), tb_fmt("u%d", i), tb_fmt("n%d", i), "GPU-0",
					       KC_HEALTH_UNHEALTHY));
	}
	explain(&e, "p1", &x);
	assert_int_equal(x.decision, CORE_DECISION_HELD);
	assert_int_equal(x.hold, LIMITS_HOLD_BREAKER);
	assert_true(x.breaker_open);
	assert_int_equal(x.device_nodes, 4);
	assert_int_equal(x.unhealthy_nodes, 3);
	assert_string_equal(x.decision_text, "held: circuit breaker open");
	assert_non_null(strstr(x.breaker_reason, "3 of 4 device nodes"));
	explain_done(&x);
	tb_env_done(&e);
}

static void test_dra_devices(void **state)
{
	struct tb_env e;
	struct explain x;
	struct kc_pod *p;
	struct kc_resource_claim *c;
	struct kc_resource_slice *s;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	p = tb_pod("ml", "dra", "u1", "n1");
	tb_pod_owner(p, "StatefulSet", "s", true);
	tb_pod_container(p, "main", NULL, 0);
	tb_pod_claim(p, "gpu", "dra-gpu");
	tb_put_pod(&e, p);
	c = tb_claim("ml", "dra-gpu", "claim-u1");
	tb_claim_result(c, "gpu", "gpu.example.com", "n1", "gpu-0");
	tb_claim_consumer(c, "dra", "u1");
	tb_put_claim(&e, c);
	s = tb_slice("n1-gpu", "gpu.example.com", "n1", "n1");
	tb_slice_device(s, "gpu-0", "example.com/xid", "NoExecute");
	tb_put_slice(&e, s);
	explain(&e, "dra", &x);
	assert_int_equal(x.n_devices, 1);
	assert_string_equal(x.devices[0].resource, "claim:gpu/gpu");
	assert_string_equal(x.devices[0].device, "gpu.example.com/n1/gpu-0");
	assert_int_equal(x.n_hits, 1);
	assert_int_equal(x.hits[0].signal, HEALTH_DRA_TAINT);
	assert_string_equal(x.hits[0].detail, "taint example.com/xid:NoExecute");
	assert_string_equal(x.decision_text, "would evict now");
	assert_string_equal(x.owner_kind, "StatefulSet");
	explain_done(&x);
	tb_env_done(&e);
}

/* As the daemon: a claim's toleration counts (20 s of the 30 it tolerates are gone at NOW_S), and a
 * DeviceTaintRule of someone else's taints the device, its timeAdded being the API's "since". */
static void test_dra_tolerations_and_rules(void **state)
{
	struct tb_env e;
	struct explain x;
	struct kc_pod *p;
	struct kc_resource_claim *c;
	struct kc_resource_slice *s;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	p = tb_pod("ml", "dra", "u1", "n1");
	tb_pod_owner(p, "StatefulSet", "s", true);
	tb_pod_container(p, "main", NULL, 0);
	tb_pod_claim(p, "gpu", "dra-gpu");
	tb_put_pod(&e, p);
	c = tb_claim("ml", "dra-gpu", "claim-u1");
	tb_claim_result(c, "gpu", "gpu.example.com", "n1", "gpu-0");
	tb_claim_toleration(c, "example.com/xid", KC_TOLERATION_EXISTS, "", "NoExecute", 30);
	tb_claim_consumer(c, "dra", "u1");
	tb_put_claim(&e, c);
	s = tb_slice("n1-gpu", "gpu.example.com", "n1", "n1");
	tb_slice_device(s, "gpu-0", NULL, NULL);
	tb_slice_taint(s, "example.com/xid", "", "NoExecute", NOW_S - 20);
	tb_put_slice(&e, s);
	explain(&e, "dra", &x);
	assert_int_equal(x.n_hits, 1);
	assert_string_equal(x.decision_text, "would evict in 10 s (debounce)");
	explain_done(&x);
	tb_put_rule(&e, tb_rule("maint", "gpu.example.com", "", "", "example.com/maint", "NoExecute", NOW_S - 5));
	explain(&e, "dra", &x);
	assert_int_equal(x.n_hits, 1);
	assert_string_equal(x.hits[0].detail, "DeviceTaintRule maint: taint example.com/maint:NoExecute");
	assert_int_equal(x.hit_since[0], NOW_S - 5);
	assert_string_equal(x.decision_text, "would evict now");
	explain_done(&x);
	tb_env_done(&e);
}

static void put_sick_node(struct tb_env *e, const char *name, bool fenced)
{
	struct kc_node *n = tb_node(name);

	tb_node_resource(n, GPU, 8, 8);
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79");
	if (fenced) {
		tb_node_taint(n, "device-descheduler.io/unhealthy-device", "nvidia.com_gpu", "NoSchedule");
		tb_node_annotation(n, QUARANTINE_ANNOTATION, "{\"since\":\"2026-01-01T00:00:00Z\"}");
	}
	tb_put_node(e, n);
}

/* A node condition: the node is fenced first (the fence the controller would write is shown), then
 * the pod goes; a node that already carries our quarantine is reported as such. */
static void test_node_fence(void **state)
{
	struct tb_env e;
	struct explain x;

	(void)state;
	tb_env_init(&e,
		    tb_policy_yaml("signals:\n  nodeConditions:\n    - {type: GPUXIDErrors}\n"
				   "remediation: {maxQuarantinedNodePercent: 100}\n"),
		    true);
	put_sick_node(&e, "n1", false);
	put_sick_node(&e, "n2", true);
	tb_put_pod(&e, tb_gpu_pod("ml", "a", "u1", "n1", GPU, 1));
	tb_put_pod(&e, tb_gpu_pod("ml", "b", "u2", "n2", GPU, 1));
	explain(&e, "a", &x);
	assert_int_equal(x.decision, CORE_DECISION_DUE);
	assert_false(x.node_quarantined);
	assert_non_null(x.fence_message);
	assert_non_null(strstr(x.fence_message, "Quarantining node n1 (taint device-descheduler.io/unhealthy-device="));
	assert_int_equal(x.n_devices, 1);
	assert_string_equal(x.devices[0].device, "");
	assert_int_equal(x.hits[0].signal, HEALTH_NODE_CONDITION);
	explain_done(&x);
	explain(&e, "b", &x);
	assert_int_equal(x.decision, CORE_DECISION_DUE);
	assert_true(x.node_quarantined);
	assert_null(x.fence_message);
	explain_done(&x);
	tb_env_done(&e);
}

/* At the quarantine cap a pod that needs a new fence is held. */
static void test_quarantine_cap(void **state)
{
	struct tb_env e;
	struct explain x;

	(void)state;
	tb_env_init(&e,
		    tb_policy_yaml("signals:\n  nodeConditions:\n    - {type: GPUXIDErrors}\n"
				   "remediation: {maxQuarantinedNodes: 1}\n"),
		    true);
	put_sick_node(&e, "n1", true);
	put_sick_node(&e, "n2", false);
	tb_put_pod(&e, tb_gpu_pod("ml", "b", "u2", "n2", GPU, 1));
	explain(&e, "b", &x);
	assert_int_equal(x.decision, CORE_DECISION_HELD);
	assert_true(x.quarantine_capped);
	assert_string_equal(x.decision_text, "held: quarantine cap reached (remediation.maxQuarantinedNodes or "
					     "maxQuarantinedNodePercent)");
	assert_null(x.fence_message);
	explain_done(&x);
	tb_env_done(&e);
}

/* Where the API records when a failure began, explain reads it: a node condition's
 * lastTransitionTime, a slice taint's timeAdded, a claim device condition's lastTransitionTime. */
static void test_since(void **state)
{
	struct tb_env e;
	struct explain x;
	struct kc_node *n;
	struct kc_pod *p;
	struct kc_resource_claim *c;
	struct kc_resource_slice *s;

	(void)state;
	tb_env_init(&e,
		    tb_policy_yaml("signals:\n  nodeConditions:\n    - {type: GPUXIDErrors, for: 30s}\n"
				   "  draDeviceTaints: {for: 1m}\n  draDeviceConditions: {for: 1m}\n"
				   "remediation: {maxQuarantinedNodePercent: 100}\n"),
		    true);
	n = tb_node("n1");
	tb_node_resource(n, GPU, 8, 8);
	tb_node_condition(n, "Ready", KC_COND_TRUE, "");
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79");
	n->conditions[0].last_transition = NOW_S - 3600;
	n->conditions[1].last_transition = NOW_S - 20;
	tb_put_node(&e, n);
	tb_put_pod(&e, tb_gpu_pod("ml", "a", "u1", "n1", GPU, 1));
	explain(&e, "a", &x);
	assert_int_equal(x.n_hits, 1);
	assert_int_equal(x.hit_since[0], NOW_S - 20);
	assert_int_equal(explain_left_since(&x.hits[0], x.hit_since[0], NOW_S), 10000);
	assert_int_equal(explain_left_since(&x.hits[0], x.hit_since[0], NOW_S + 60), 0);
	assert_string_equal(x.decision_text, "would evict in 30 s (debounce)");
	explain_done(&x);

	p = tb_pod("ml", "dra", "u2", "n1");
	tb_pod_owner(p, "StatefulSet", "s", true);
	tb_pod_container(p, "main", NULL, 0);
	tb_pod_claim(p, "gpu", "dra-gpu");
	tb_put_pod(&e, p);
	c = tb_claim("ml", "dra-gpu", "claim-u2");
	tb_claim_result(c, "gpu", "gpu.example.com", "pool/a", "gpu-0");
	tb_claim_consumer(c, "dra", "u2");
	tb_claim_device_condition(c, "gpu.example.com", "pool/a", "gpu-0", "Ready", KC_COND_FALSE, "ECC");
	c->device_statuses[0].conditions[0].last_transition = NOW_S - 50;
	tb_put_claim(&e, c);
	s = tb_slice("n1-gpu", "gpu.example.com", "pool/a", "n1");
	tb_slice_device(s, "gpu-0", "example.com/xid", "NoExecute");
	s->devices[0].taints[0].time_added = NOW_S - 5;
	tb_put_slice(&e, s);
	explain(&e, "dra", &x);
	assert_int_equal(x.n_hits, 3); /* the node condition covers the claim too */
	for (size_t i = 0; i < x.n_hits; i++) {
		if (x.hits[i].signal == HEALTH_NODE_CONDITION)
			assert_int_equal(x.hit_since[i], NOW_S - 20);
		else if (x.hits[i].signal == HEALTH_DRA_TAINT)
			assert_int_equal(x.hit_since[i], NOW_S - 5);
		else if (x.hits[i].signal == HEALTH_DRA_CONDITION)
			assert_int_equal(x.hit_since[i], NOW_S - 50);
		else
			fail();
	}
	explain_done(&x);
	tb_env_done(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_healthy_and_unknown_pod),
	    cmocka_unit_test(test_would_evict_now),
	    cmocka_unit_test(test_would_evict_later),
	    cmocka_unit_test(test_never),
	    cmocka_unit_test(test_held_by_node_limit),
	    cmocka_unit_test(test_held_by_breaker),
	    cmocka_unit_test(test_dra_devices),
	    cmocka_unit_test(test_dra_tolerations_and_rules),
	    cmocka_unit_test(test_node_fence),
	    cmocka_unit_test(test_quarantine_cap),
	    cmocka_unit_test(test_since),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
