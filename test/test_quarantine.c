/*
 * Unit tests of quarantine (fencing before eviction, recovery, the cap, the
 * loop guard) through the core, and of the fence request builders: the
 * matrix of signals to fences, "fence confirmed before the first eviction",
 * recovery never early, state rebuilt from the node after a restart, dry
 * run, the DeviceTaintRule fallback, and node patches that never touch a
 * foreign taint.
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

#include "core.h"
#include "core_builders.h"
#include "quarantine.h"
#include "requests.h"

#define GPU "nvidia.com/gpu"
#define KEY "device-descheduler.io/unhealthy-device"

static struct core_action act;

static int next(struct tb_env *e)
{
	memset(&act, 0, sizeof(act));
	return core_next_action(e->core, e->now, &act);
}

static void put_gpu_node(struct tb_env *e, const char *name)
{
	struct kc_node *n = tb_node(name);

	tb_node_resource(n, GPU, 8, 8);
	tb_put_node(e, n);
}

static void set_condition(struct tb_env *e, const char *node, enum kc_cond_status st)
{
	struct kc_node *n = tb_node_clone(kc_store_get(e->nodes, "", node));

	tb_node_condition(n, "GPUXIDErrors", st, "XID 79");
	tb_put_node(e, n);
}

/* What the watch shows after our PATCH landed: the taint and the annotation. */
static void node_fenced(struct tb_env *e, const char *node)
{
	struct kc_node *n = tb_node_clone(kc_store_get(e->nodes, "", node));

	tb_node_taint(n, KEY, "nvidia.com_gpu", "NoSchedule");
	tb_node_annotation(n, QUARANTINE_ANNOTATION, "{\"since\":\"2026-01-01T00:00:00Z\"}");
	tb_put_node(e, n);
}

static const char *const node_policy = "signals:\n  nodeConditions:\n    - {type: GPUXIDErrors}\n"
				       "remediation: {recoverAfter: 1m, loopWindow: 10m}\n";

/* Four pods of one ReplicaSet on n1, one on n2. */
static void four_pods(struct tb_env *e)
{
	put_gpu_node(e, "n1");
	put_gpu_node(e, "n2");
	for (int i = 0; i < 4; i++)
		tb_put_pod(e, tb_gpu_pod("ml", tb_fmt("a%d", i), tb_fmt("u%d", i), "n1", GPU, 1));
	tb_put_pod(e, tb_gpu_pod("ml", "b", "ub", "n2", GPU, 1));
}

static void test_matrix(void **state)
{
	static const struct {
		enum health_signal sig;
		const char *resource, *device, *state, *detail;
		enum quarantine_fence want;
	} cases[] = {
	    {HEALTH_POD_RESOURCE, GPU, "GPU-1", "Unhealthy", "XID 79", QUARANTINE_FENCE_NONE},
	    {HEALTH_POD_RESOURCE, GPU, "GPU-1", "Unknown", "", QUARANTINE_FENCE_NODE},
	    {HEALTH_NODE_CONDITION, GPU, "", "unhealthy", "GPUXIDErrors=True", QUARANTINE_FENCE_NODE},
	    {HEALTH_NODE_CONDITION, GPU, "GPU-1", "unhealthy", "GPUXIDErrors=True", QUARANTINE_FENCE_NODE},
	    {HEALTH_ALLOC_DROP, GPU, "", "unhealthy", "", QUARANTINE_FENCE_NODE},
	    {HEALTH_EXIT_CODE, GPU, "", "failing", "", QUARANTINE_FENCE_NODE},
	    {HEALTH_EXIT_CODE, "claim:gpu/gpu", "", "failing", "", QUARANTINE_FENCE_NODE},
	    {HEALTH_DRA_CONDITION, "claim:gpu/gpu", "d.example.com/n1/gpu-0", "unhealthy", "Ready=False",
	     QUARANTINE_FENCE_DEVICE},
	    {HEALTH_POD_RESOURCE, "claim:gpu/gpu", "d.example.com/n1/gpu-0", "Unhealthy", "",
	     QUARANTINE_FENCE_DEVICE},
	    {HEALTH_POD_RESOURCE, "claim:gpu/gpu", "gpu-0", "Unhealthy", "", QUARANTINE_FENCE_NODE},
	    {HEALTH_DRA_TAINT, "claim:gpu/gpu", "d/n1/gpu-0", "tainted", "taint k=v:NoExecute",
	     QUARANTINE_FENCE_NONE},
	    {HEALTH_DRA_TAINT, "claim:gpu/gpu", "d/n1/gpu-0", "tainted", "taint k=v:None", QUARANTINE_FENCE_DEVICE},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct health_hit h = {cases[i].sig,
				       (char *)cases[i].resource,
				       (char *)cases[i].device,
				       (char *)cases[i].state,
				       (char *)cases[i].detail,
				       0,
				       0};

		if (quarantine_fence_for(&h) != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, quarantine_fence_for(&h), cases[i].want);
	}
}

/* The taint is written and confirmed before the first eviction; then every pod of the node goes. */
static void test_fence_before_evict(void **state)
{
	struct tb_env e;
	int evicted = 0;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), true);
	four_pods(&e);
	set_condition(&e, "n1", KC_COND_TRUE);
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	assert_int_equal(act.fence.kind, QUARANTINE_NODE);
	assert_int_equal(act.fence.op, QUARANTINE_ADD);
	assert_string_equal(act.fence.unit, "n1");
	assert_string_equal(act.fence.signal, "NodeCondition");
	assert_string_equal(act.fence.resource, GPU);
	assert_string_equal(act.message, "Quarantining node n1 (taint " KEY "=nvidia.com_gpu) before evicting its "
					 "pods: nvidia.com/gpu is unhealthy (signal NodeCondition: GPUXIDErrors=True: "
					 "XID 79)");
	/* Nothing else while the fence is on its way, however long it takes. */
	assert_int_equal(next(&e), -EAGAIN);
	e.now += 60000;
	assert_int_equal(next(&e), -EAGAIN);
	core_fence_done(e.core, QUARANTINE_NODE, "n1", QUARANTINE_OK, e.now);
	while (next(&e) == 0) {
		assert_int_equal(act.kind, CORE_EVICT);
		assert_string_equal(act.node, "n1");
		core_action_done(e.core, act.uid, CORE_RESULT_EVICTED, 0, e.now);
		evicted++;
	}
	assert_int_equal(evicted, 4);
	assert_int_equal(core_stats(e.core)->quarantined_nodes, 1);
	assert_int_equal(core_stats(e.core)->quarantine_adds, 1);
	/* The watch then shows the fence: nothing new. */
	node_fenced(&e, "n1");
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);
}

/* Confirmation by the watch alone (the PATCH answer lost) also releases the pods. */
static void test_confirmed_by_watch(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), true);
	four_pods(&e);
	set_condition(&e, "n1", KC_COND_TRUE);
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	node_fenced(&e, "n1");
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_EVICT);
	/* The late answer changes nothing and is not a second write. */
	core_fence_done(e.core, QUARANTINE_NODE, "n1", QUARANTINE_OK, e.now);
	assert_int_equal(core_stats(e.core)->quarantine_adds, 1);
	tb_env_done(&e);
}

/* A failed write is retried with backoff, and no pod goes meanwhile. */
static void test_fence_retry(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), true);
	four_pods(&e);
	set_condition(&e, "n1", KC_COND_TRUE);
	assert_int_equal(next(&e), 0);
	core_fence_done(e.core, QUARANTINE_NODE, "n1", QUARANTINE_FAILED, e.now);
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), e.now + 1000);
	e.now += 1000;
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	tb_env_done(&e);
}

/* Recovery: removed after recoverAfter of health, never early; only then. */
static void test_recovery(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), true);
	four_pods(&e);
	set_condition(&e, "n1", KC_COND_TRUE);
	assert_int_equal(next(&e), 0);
	core_fence_done(e.core, QUARANTINE_NODE, "n1", QUARANTINE_OK, e.now);
	node_fenced(&e, "n1");
	while (next(&e) == 0)
		core_action_done(e.core, act.uid, CORE_RESULT_EVICTED, 0, e.now);
	for (int i = 0; i < 4; i++)
		tb_del_pod(&e, "ml", tb_fmt("a%d", i));
	/* Still unhealthy by the condition: never removed, whatever the time. */
	e.now += 3600 * 1000;
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), UINT64_MAX);
	set_condition(&e, "n1", KC_COND_FALSE);
	assert_int_equal(core_next_wakeup(e.core, e.now), e.now + 60000);
	e.now += 59999;
	assert_int_equal(next(&e), -EAGAIN);
	/* Sick again then healthy again: the clock starts over. */
	set_condition(&e, "n1", KC_COND_TRUE);
	set_condition(&e, "n1", KC_COND_FALSE);
	e.now += 1;
	assert_int_equal(next(&e), -EAGAIN);
	e.now += 60000;
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	assert_int_equal(act.fence.op, QUARANTINE_REMOVE);
	assert_string_equal(act.fence.unit, "n1");
	assert_int_equal(next(&e), -EAGAIN);
	core_fence_done(e.core, QUARANTINE_NODE, "n1", QUARANTINE_OK, e.now);
	assert_int_equal(core_stats(e.core)->quarantined_nodes, 0);
	assert_int_equal(core_stats(e.core)->quarantine_removes, 1);
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);
}

/* Someone else's taints with our key but another effect, or a similar key, are not our fence. */
static void test_foreign_taint_is_not_ours(void **state)
{
	struct tb_env e;
	struct kc_node *n;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), true);
	n = tb_node("n1");
	tb_node_resource(n, GPU, 8, 8);
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79");
	tb_node_taint(n, KEY, "z", "PreferNoSchedule");
	tb_node_taint(n, KEY "-other", "x", "NoSchedule");
	tb_put_node(&e, n);
	tb_put_pod(&e, tb_gpu_pod("ml", "a", "u1", "n1", GPU, 1));
	assert_int_equal(core_stats(e.core)->quarantined_nodes, 0);
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	assert_int_equal(act.fence.op, QUARANTINE_ADD);
	tb_env_done(&e);
}

/* A restart finds the annotation: no second fence, and recovery still removes it. */
static void test_restart_rebuilds(void **state)
{
	struct tb_env e;
	struct kc_node *n;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), false);
	n = tb_node("n1");
	tb_node_resource(n, GPU, 8, 8);
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79");
	tb_node_taint(n, KEY, "nvidia.com_gpu", "NoSchedule");
	tb_node_annotation(n, QUARANTINE_ANNOTATION, "{}");
	tb_put_node(&e, n);
	tb_put_pod(&e, tb_gpu_pod("ml", "late", "u9", "n1", GPU, 1));
	core_set_synced(e.core, true, e.now);
	assert_int_equal(core_stats(e.core)->quarantined_nodes, 1);
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_EVICT);
	assert_string_equal(act.uid, "u9");
	core_action_done(e.core, "u9", CORE_RESULT_EVICTED, 0, e.now);
	tb_del_pod(&e, "ml", "late");
	set_condition(&e, "n1", KC_COND_FALSE);
	e.now += 60000;
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.fence.op, QUARANTINE_REMOVE);
	tb_env_done(&e);
}

/* Before the caches sync nothing says how long a fence found on the API has been healthy: the clock starts at sync. */
static void test_recovery_clock_starts_at_sync(void **state)
{
	struct tb_env e;
	struct kc_node *n;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), false);
	n = tb_node("n1");
	tb_node_resource(n, GPU, 8, 8);
	tb_node_taint(n, KEY, "nvidia.com_gpu", "NoSchedule");
	tb_node_annotation(n, QUARANTINE_ANNOTATION, "{}");
	tb_put_node(&e, n);
	e.now += 3600 * 1000;
	core_set_synced(e.core, true, e.now);
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), e.now + 60000);
	e.now += 60000;
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.fence.op, QUARANTINE_REMOVE);
	tb_env_done(&e);
}

/* At the cap nothing more is fenced and nothing on such a node is evicted; one Warning. */
static void test_cap(void **state)
{
	struct tb_env e;
	struct core_notice no;
	const char *first;
	int capped = 0;

	(void)state;
	tb_env_init(&e,
		    tb_policy_yaml("signals:\n  nodeConditions:\n    - {type: GPUXIDErrors}\n"
				   "remediation: {maxQuarantinedNodes: 1}\n"),
		    true);
	four_pods(&e);
	put_gpu_node(&e, "n3");
	tb_put_pod(&e, tb_gpu_pod("ml", "c", "uc", "n3", GPU, 1));
	set_condition(&e, "n1", KC_COND_TRUE);
	set_condition(&e, "n2", KC_COND_TRUE);
	set_condition(&e, "n3", KC_COND_TRUE);
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	first = tb_str(act.fence.unit);
	assert_int_equal(next(&e), -EAGAIN);
	core_fence_done(e.core, QUARANTINE_NODE, first, QUARANTINE_OK, e.now);
	while (next(&e) == 0) {
		assert_int_equal(act.kind, CORE_EVICT);
		core_action_done(e.core, act.uid, CORE_RESULT_EVICTED, 0, e.now);
	}
	assert_int_equal(core_stats(e.core)->quarantined_nodes, 1);
	assert_true(core_stats(e.core)->quarantine_at_cap);
	while (core_next_notice(e.core, &no) == 0)
		if (strcmp(no.reason, "QuarantineCapReached") == 0) {
			assert_true(no.cluster_wide);
			assert_string_equal(no.type, "Warning");
			capped++;
		}
	assert_int_equal(capped, 1);
	tb_env_done(&e);
}

/* The replacement that came back to the failed node is not evicted: EvictionLoop. */
static void test_loop_guard(void **state)
{
	struct tb_env e;
	struct core_notice no;
	int loops = 0;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), true);
	four_pods(&e);
	set_condition(&e, "n1", KC_COND_TRUE);
	assert_int_equal(next(&e), 0);
	core_fence_done(e.core, QUARANTINE_NODE, "n1", QUARANTINE_OK, e.now);
	/* The second original pod, evicted in the same millisecond as the first, is no loop. */
	while (next(&e) == 0)
		core_action_done(e.core, act.uid, CORE_RESULT_EVICTED, 0, e.now);
	assert_int_equal(core_stats(e.core)->evicted, 4);
	/* A scheduler that ignores the taint puts the replacement back. */
	e.now += 500;
	tb_del_pod(&e, "ml", "a0");
	tb_put_pod(&e, tb_gpu_pod("ml", "a0-new", "u10", "n1", GPU, 1));
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_stats(e.core)->eviction_loops, 1);
	assert_int_equal(core_stats(e.core)->skipped[PLANNER_SKIP_LOOP], 1);
	while (core_next_notice(e.core, &no) == 0)
		if (strcmp(no.reason, "EvictionLoop") == 0) {
			assert_string_equal(no.name, "a0-new");
			assert_string_equal(no.type, "Warning");
			loops++;
		}
	assert_int_equal(loops, 1);
	/* An update of the same pod: still not evicted, not counted twice. */
	tb_put_pod(&e, tb_pod_clone(kc_store_get(e.pods, "ml", "a0-new")));
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_stats(e.core)->eviction_loops, 1);
	/* A pod of another owner on that node is a first eviction. */
	{
		struct kc_pod *p = tb_pod("ml", "other", "u11", "n1");

		tb_pod_owner(p, "ReplicaSet", "rs2", true);
		tb_pod_container(p, "main", GPU, 1);
		tb_put_pod(&e, p);
	}
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u11");
	tb_env_done(&e);
}

/* Per device: a replacement on another device of the same node is a new failure. */
static void test_loop_guard_per_device(void **state)
{
	struct tb_env e;
	struct kc_pod *p;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("remediation: {}\n"), true);
	put_gpu_node(&e, "n1");
	p = tb_gpu_pod("ml", "a", "u1", "n1", GPU, 1);
	tb_status_health(tb_pod_status(p, "main"), GPU, "GPU-1", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_put_pod(&e, p);
	/* KEP-4680 Unhealthy on a device-plugin device: the kubelet fences it, no taint. */
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_EVICT);
	core_action_done(e.core, "u1", CORE_RESULT_EVICTED, 0, e.now);
	tb_del_pod(&e, "ml", "a");
	e.now += 100;
	p = tb_gpu_pod("ml", "a2", "u2", "n1", GPU, 1);
	tb_status_health(tb_pod_status(p, "main"), GPU, "GPU-2", KC_HEALTH_UNHEALTHY, "XID 48");
	tb_put_pod(&e, p);
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u2");
	core_action_done(e.core, "u2", CORE_RESULT_EVICTED, 0, e.now);
	e.now += 100;
	p = tb_gpu_pod("ml", "a3", "u3", "n1", GPU, 1);
	tb_status_health(tb_pod_status(p, "main"), GPU, "GPU-2", KC_HEALTH_UNHEALTHY, "XID 48");
	tb_put_pod(&e, p);
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_stats(e.core)->eviction_loops, 1);
	/* After the window the guard lets go. */
	e.now += 600000;
	tb_put_pod(&e, tb_pod_clone(kc_store_get(e.pods, "ml", "a3")));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u3");
	tb_env_done(&e);
}

/* Dry run: no write, a "Would taint" notice, and a "Would evict". */
static void test_dry_run(void **state)
{
	struct tb_env e;
	struct core_notice no;
	int would = 0;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("dryRun: true\nsignals:\n  nodeConditions:\n    - {type: GPUXIDErrors}\n"
				       "remediation: {}\n"),
		    true);
	four_pods(&e);
	set_condition(&e, "n1", KC_COND_TRUE);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(next(&e), 0);
		assert_int_equal(act.kind, CORE_EVICT);
		assert_true(act.dry_run);
	}
	assert_int_equal(next(&e), -EAGAIN);
	while (core_next_notice(e.core, &no) == 0)
		if (strcmp(no.reason, "WouldTaint") == 0) {
			assert_string_equal(no.type, "Normal");
			assert_non_null(strstr(no.message, "Would taint node n1 with " KEY "=nvidia.com_gpu:NoSchedule"));
			would++;
		}
	assert_int_equal(would, 1);
	assert_int_equal(core_stats(e.core)->quarantine_adds, 0);
	tb_env_done(&e);
}

/* A reload that turns remediation off removes our fences at once. */
static void test_disable_removes(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), true);
	four_pods(&e);
	set_condition(&e, "n1", KC_COND_TRUE);
	assert_int_equal(next(&e), 0);
	core_fence_done(e.core, QUARANTINE_NODE, "n1", QUARANTINE_OK, e.now);
	node_fenced(&e, "n1");
	while (next(&e) == 0)
		core_action_done(e.core, act.uid, CORE_RESULT_EVICTED, 0, e.now);
	tb_set_policy(&e, tb_policy_yaml("signals:\n  nodeConditions:\n    - {type: GPUXIDErrors}\n"
					 "remediation: {enabled: false}\n"));
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	assert_int_equal(act.fence.op, QUARANTINE_REMOVE);
	assert_string_equal(act.fence.unit, "n1");
	tb_env_done(&e);
}

static struct kc_pod *dra_pod(const char *name, const char *uid)
{
	struct kc_pod *p = tb_pod("ml", name, uid, "n1");

	tb_pod_owner(p, "StatefulSet", "s", true);
	tb_pod_container(p, "main", NULL, 0);
	tb_pod_claim(p, "gpu", tb_fmt("%s-gpu", name));
	return p;
}

/* A claim device condition: a DeviceTaintRule first; with no rule API, the node taint. */
static void test_dra_device_rule_and_fallback(void **state)
{
	struct tb_env e;
	struct kc_resource_claim *c;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("remediation: {}\n"), true);
	put_gpu_node(&e, "n1");
	tb_put_pod(&e, dra_pod("a", "u1"));
	c = tb_claim("ml", "a-gpu", "claim-u1");
	tb_claim_result(c, "gpu", "gpu.example.com", "n1", "gpu-0");
	tb_claim_consumer(c, "a", "u1");
	tb_claim_device_condition(c, "gpu.example.com", "n1", "gpu-0", "Ready", KC_COND_FALSE, "ECC errors");
	tb_put_claim(&e, c);
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	assert_int_equal(act.fence.kind, QUARANTINE_DEVICE);
	assert_string_equal(act.fence.driver, "gpu.example.com");
	assert_string_equal(act.fence.pool, "n1");
	assert_string_equal(act.fence.device, "gpu-0");
	assert_string_equal(act.fence.node, "n1");
	assert_string_equal(act.fence.unit, "gpu.example.com/n1/gpu-0");
	assert_int_equal(next(&e), -EAGAIN);
	core_fence_done(e.core, QUARANTINE_DEVICE, "gpu.example.com/n1/gpu-0", QUARANTINE_UNSUPPORTED, e.now);
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	assert_int_equal(act.fence.kind, QUARANTINE_NODE);
	assert_string_equal(act.fence.unit, "n1");
	core_fence_done(e.core, QUARANTINE_NODE, "n1", QUARANTINE_OK, e.now);
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_EVICT);
	assert_string_equal(act.uid, "u1");
	tb_env_done(&e);
}

/* A rule listed after a restart is recovered (deleted) once its device is healthy. */
static void test_rule_observed_recovers(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("remediation: {recoverAfter: 2s}\n"), true);
	core_rule_observed(e.core, "gpu.example.com", "n1", "gpu-0", e.now);
	assert_int_equal(core_stats(e.core)->quarantined_devices, 1);
	e.now += 1999;
	assert_int_equal(next(&e), -EAGAIN);
	e.now += 1;
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.fence.kind, QUARANTINE_DEVICE);
	assert_int_equal(act.fence.op, QUARANTINE_REMOVE);
	assert_string_equal(act.fence.unit, "gpu.example.com/n1/gpu-0");
	core_fence_done(e.core, QUARANTINE_DEVICE, act.fence.unit, QUARANTINE_OK, e.now);
	assert_int_equal(core_stats(e.core)->quarantined_devices, 0);
	tb_env_done(&e);
}

/* A rule listed after a restart (its node unknown, most often gone) holds no place under the cap. */
static void test_listed_rule_does_not_hold_the_cap(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), true);
	core_rule_observed(e.core, "gpu.example.com", "gone-node", "gpu-0", e.now);
	put_gpu_node(&e, "n1");
	tb_put_pod(&e, tb_gpu_pod("ml", "a", "u1", "n1", GPU, 1));
	set_condition(&e, "n1", KC_COND_TRUE);
	/* One device node: the cap is 1 node (25%, at least 1), and the stale rule is not on it. */
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_FENCE);
	assert_int_equal(act.fence.kind, QUARANTINE_NODE);
	assert_string_equal(act.fence.unit, "n1");
	assert_false(core_stats(e.core)->quarantine_at_cap);
	tb_env_done(&e);
}

/* A quarantined node counts against the breaker even once its signal is gone. */
static void test_breaker_counts_quarantine(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml(node_policy), true);
	four_pods(&e);
	set_condition(&e, "n1", KC_COND_TRUE);
	assert_int_equal(next(&e), 0);
	core_fence_done(e.core, QUARANTINE_NODE, "n1", QUARANTINE_OK, e.now);
	node_fenced(&e, "n1");
	set_condition(&e, "n1", KC_COND_FALSE);
	for (int i = 0; i < 4; i++)
		tb_del_pod(&e, "ml", tb_fmt("a%d", i));
	assert_int_equal(core_stats(e.core)->unhealthy_nodes, 1);
	tb_env_done(&e);
}

/* ---- request builders ---- */

static const struct requests_fence fence = {
    .key = KEY,
    .effect = "NoSchedule",
    .taint = true,
    .cordon = false,
    .since_ms = 1767225600000, /* 2026-01-01T00:00:00Z */
    .signal = "NodeCondition",
    .resource = GPU,
    .message = "GPUXIDErrors=True",
};

static json_t *patch_of(const char *node, const struct requests_fence *f, bool add)
{
	char *patch = NULL;
	json_t *j;

	assert_int_equal(requests_node_fence_patch(node, strlen(node), f, add, &patch), 0);
	j = json_loads(patch, 0, NULL);
	assert_non_null(j);
	free(patch);
	return j;
}

static void test_label_value(void **state)
{
	char *v;

	(void)state;
	v = requests_label_value("nvidia.com/gpu");
	assert_string_equal(v, "nvidia.com_gpu");
	free(v);
	v = requests_label_value("claim:gpu-claim/gpu");
	assert_string_equal(v, "claim_gpu-claim_gpu");
	free(v);
	v = requests_label_value("/x/");
	assert_string_equal(v, "x");
	free(v);
	/* Cut at 63 characters, where a '/' became '_': the trailing separator goes too. */
	v = requests_label_value("abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/ccc");
	assert_int_equal(strlen(v), 62);
	assert_string_equal(v + 60, "bb");
	free(v);
}

/* Adding keeps every other taint, including one with a similar key, and sends the resourceVersion. */
static void test_node_patch_add(void **state)
{
	const char *node =
	    "{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"42\"},\"spec\":{\"taints\":["
	    "{\"key\":\"nvidia.com/gpu\",\"value\":\"present\",\"effect\":\"NoSchedule\"},"
	    "{\"key\":\"device-descheduler.io/unhealthy-device-x\",\"value\":\"v\",\"effect\":\"NoSchedule\"},"
	    "{\"key\":\"device-descheduler.io/unhealthy-device\",\"value\":\"v\",\"effect\":\"NoExecute\"}]}}";
	json_t *p = patch_of(node, &fence, true), *taints, *rec;
	const char *ann;

	(void)state;
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "metadata"), "resourceVersion")),
			    "42");
	taints = json_object_get(json_object_get(p, "spec"), "taints");
	assert_int_equal(json_array_size(taints), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(taints, 1), "key")),
			    "device-descheduler.io/unhealthy-device-x");
	assert_string_equal(json_string_value(json_object_get(json_array_get(taints, 2), "effect")), "NoExecute");
	assert_string_equal(json_string_value(json_object_get(json_array_get(taints, 3), "key")), KEY);
	assert_string_equal(json_string_value(json_object_get(json_array_get(taints, 3), "value")), "nvidia.com_gpu");
	assert_string_equal(json_string_value(json_object_get(json_array_get(taints, 3), "timeAdded")),
			    "2026-01-01T00:00:00Z");
	assert_null(json_object_get(json_object_get(p, "spec"), "unschedulable"));
	ann = json_string_value(
	    json_object_get(json_object_get(json_object_get(p, "metadata"), "annotations"), QUARANTINE_ANNOTATION));
	assert_non_null(ann);
	rec = json_loads(ann, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(rec, "since")), "2026-01-01T00:00:00Z");
	assert_string_equal(json_string_value(json_object_get(rec, "signal")), "NodeCondition");
	assert_string_equal(json_string_value(json_object_get(rec, "resource")), GPU);
	assert_string_equal(json_string_value(json_object_get(rec, "message")), "GPUXIDErrors=True");
	assert_false(json_is_true(json_object_get(rec, "cordoned")));
	json_decref(rec);
	json_decref(p);
}

/* Already fenced: nothing to write.  Not a node: an error. */
static void test_node_patch_idempotent(void **state)
{
	const char *node = "{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"7\",\"annotations\":{"
			   "\"device-descheduler.io/quarantine\":\"{}\"}},\"spec\":{\"taints\":["
			   "{\"key\":\"device-descheduler.io/unhealthy-device\",\"value\":\"v\","
			   "\"effect\":\"NoSchedule\"}]}}";
	char *patch = NULL;

	(void)state;
	assert_int_equal(requests_node_fence_patch(node, strlen(node), &fence, true, &patch), -EALREADY);
	assert_int_equal(requests_node_fence_patch("[]", 2, &fence, true, &patch), -EINVAL);
	assert_int_equal(requests_node_fence_patch("{\"metadata\":{}}", 15, &fence, true, &patch), -EINVAL);
	node = "{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"7\"},\"spec\":{\"taints\":["
	       "{\"key\":\"device-descheduler.io/unhealthy-device-x\",\"effect\":\"NoSchedule\"}]}}";
	assert_int_equal(requests_node_fence_patch(node, strlen(node), &fence, false, &patch), -EALREADY);
	assert_null(patch);
}

/* Removing drops only our taint and the record; a cordon only if we set it. */
static void test_node_patch_remove_and_cordon(void **state)
{
	struct requests_fence both = fence;
	const char *plain = "{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"1\"},\"spec\":{}}";
	const char *cordoned = "{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"1\"},\"spec\":{\"unschedulable\":"
			       "true}}";
	const char *fenced =
	    "{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"9\",\"annotations\":{\"device-descheduler.io/"
	    "quarantine\":\"{\\\"key\\\":\\\"device-descheduler.io/unhealthy-device\\\",\\\"effect\\\":"
	    "\\\"NoSchedule\\\",\\\"cordoned\\\":true}\"}},\"spec\":{\"unschedulable\":true,\"taints\":["
	    "{\"key\":\"other\",\"effect\":\"NoSchedule\"},"
	    "{\"key\":\"device-descheduler.io/unhealthy-device\",\"value\":\"v\",\"effect\":\"NoSchedule\"}]}}";
	json_t *p, *spec, *rec;

	(void)state;
	both.cordon = true;
	p = patch_of(plain, &both, true);
	spec = json_object_get(p, "spec");
	assert_true(json_is_true(json_object_get(spec, "unschedulable")));
	rec = json_loads(json_string_value(json_object_get(
			     json_object_get(json_object_get(p, "metadata"), "annotations"), QUARANTINE_ANNOTATION)),
			 0, NULL);
	assert_true(json_is_true(json_object_get(rec, "cordoned")));
	json_decref(rec);
	json_decref(p);
	/* Someone else cordoned it: we do not claim the cordon. */
	p = patch_of(cordoned, &both, true);
	assert_null(json_object_get(json_object_get(p, "spec"), "unschedulable"));
	json_decref(p);
	p = patch_of(fenced, &fence, false);
	spec = json_object_get(p, "spec");
	assert_true(json_is_false(json_object_get(spec, "unschedulable")));
	assert_int_equal(json_array_size(json_object_get(spec, "taints")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(spec, "taints"), 0), "key")),
			    "other");
	assert_true(json_is_null(
	    json_object_get(json_object_get(json_object_get(p, "metadata"), "annotations"), QUARANTINE_ANNOTATION)));
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "metadata"), "resourceVersion")),
			    "9");
	json_decref(p);
}

static void test_taint_rule(void **state)
{
	char *name = requests_taint_rule_name("gpu.example.com", "n1", "gpu-0");
	char *body = requests_taint_rule_body("v1beta2", &fence, "gpu.example.com", "n1", "gpu-0");
	char *path = requests_taint_rule_path("v1", NULL);
	json_t *j = json_loads(body, 0, NULL), *sel;
	struct requests_rule *rules = NULL;
	size_t n = 0;
	char *list;

	(void)state;
	assert_int_equal(strlen(name), strlen("device-descheduler-") + 16);
	assert_string_equal(path, "/apis/resource.k8s.io/v1/devicetaintrules");
	assert_string_equal(json_string_value(json_object_get(j, "apiVersion")), "resource.k8s.io/v1beta2");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "metadata"), "name")), name);
	sel = json_object_get(json_object_get(j, "spec"), "deviceSelector");
	assert_string_equal(json_string_value(json_object_get(sel, "driver")), "gpu.example.com");
	assert_string_equal(json_string_value(json_object_get(sel, "pool")), "n1");
	assert_string_equal(json_string_value(json_object_get(sel, "device")), "gpu-0");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(json_object_get(j, "spec"), "taint"), "effect")),
	    "NoSchedule");
	list = kc_xasprintf("{\"kind\":\"DeviceTaintRuleList\",\"items\":[%s,{\"metadata\":{\"name\":\"foreign\"},"
			    "\"spec\":{\"deviceSelector\":{\"driver\":\"d\",\"pool\":\"p\",\"device\":\"x\"}}}]}",
			    body);
	assert_int_equal(requests_taint_rules_parse(list, strlen(list), &rules, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rules[0].name, name);
	assert_string_equal(rules[0].device, "gpu-0");
	requests_rules_free(rules, n);
	assert_int_equal(requests_taint_rules_parse("{}", 2, &rules, &n), -EINVAL);
	free(list);
	json_decref(j);
	free(name);
	free(body);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matrix),
	    cmocka_unit_test(test_fence_before_evict),
	    cmocka_unit_test(test_confirmed_by_watch),
	    cmocka_unit_test(test_fence_retry),
	    cmocka_unit_test(test_recovery),
	    cmocka_unit_test(test_restart_rebuilds),
	    cmocka_unit_test(test_foreign_taint_is_not_ours),
	    cmocka_unit_test(test_recovery_clock_starts_at_sync),
	    cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_loop_guard),
	    cmocka_unit_test(test_loop_guard_per_device),
	    cmocka_unit_test(test_dry_run),
	    cmocka_unit_test(test_disable_removes),
	    cmocka_unit_test(test_dra_device_rule_and_fallback),
	    cmocka_unit_test(test_rule_observed_recovers),
	    cmocka_unit_test(test_listed_rule_does_not_hold_the_cap),
	    cmocka_unit_test(test_breaker_counts_quarantine),
	    cmocka_unit_test(test_label_value),
	    cmocka_unit_test(test_node_patch_add),
	    cmocka_unit_test(test_node_patch_idempotent),
	    cmocka_unit_test(test_node_patch_remove_and_cordon),
	    cmocka_unit_test(test_taint_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
