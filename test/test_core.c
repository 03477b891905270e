/*
 * Unit tests of the core: each signal with the exact action it yields, each
 * filter, each limit, the circuit breaker, debounce on an injected clock,
 * idempotence, retry/backoff/deleteAfter, dry run and "nothing before sync".
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core.h"
#include "core_builders.h"
#include "kc_decode.h"
#include "kc_intern.h"
#include "kc_log.h"
#include "kc_util.h"

#define GPU "nvidia.com/gpu"

static struct core_action act;

static int next(struct tb_env *e)
{
	memset(&act, 0, sizeof(act));
	return core_next_action(e->core, e->now, &act);
}

/* A pod on node n1 with one GPU, healthy, and node n1 with 8 GPUs. */
static struct kc_pod *gpu_pod(const char *name, const char *uid, const char *node)
{
	return tb_gpu_pod("ml", name, uid, node, GPU, 1);
}

static struct kc_pod *sick_pod(const char *name, const char *uid, const char *node, const char *dev)
{
	struct kc_pod *p = gpu_pod(name, uid, node);

	tb_status_health(tb_pod_status(p, "main"), GPU, dev, KC_HEALTH_UNHEALTHY, "XID 79");
	return p;
}

static void put_gpu_node(struct tb_env *e, const char *name)
{
	struct kc_node *n = tb_node(name);

	tb_node_resource(n, GPU, 8, 8);
	tb_put_node(e, n);
}

static void test_pod_resource_health(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	put_gpu_node(&e, "n1");
	tb_put_pod(&e, gpu_pod("healthy", "u0", "n1"));
	assert_int_equal(next(&e), -EAGAIN);
	e.now = 5000;
	tb_put_pod(&e, sick_pod("trainer-x", "u1", "n1", "GPU-7540a9b3"));
	e.now = 6000;
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_EVICT);
	assert_string_equal(act.ns, "ml");
	assert_string_equal(act.name, "trainer-x");
	assert_string_equal(act.uid, "u1");
	assert_string_equal(act.node, "n1");
	assert_int_equal(act.grace_period_s, -1);
	assert_false(act.dry_run);
	assert_string_equal(act.signal, "PodResourceHealth");
	assert_string_equal(act.resource, GPU);
	assert_string_equal(act.device, "GPU-7540a9b3");
	assert_string_equal(act.reason, "UnhealthyDevice");
	assert_string_equal(act.message,
			    "Evicting pod ml/trainer-x: nvidia.com/gpu device GPU-7540a9b3 is Unhealthy "
			    "(signal PodResourceHealth: XID 79)");
	assert_int_equal(act.detected_ms, 5000);
	assert_int_equal(next(&e), -EAGAIN); /* in flight: not again */
	assert_int_equal(core_stats(e.core)->in_flight, 1);
	assert_int_equal(core_stats(e.core)->unhealthy_pods, 1);
	assert_int_equal(core_stats(e.core)->actions_by_signal[HEALTH_POD_RESOURCE], 1);
	assert_int_equal(core_stats(e.core)->n_unhealthy_devices, 1);
	assert_string_equal(core_stats(e.core)->unhealthy_devices[0].resource, GPU);
	assert_int_equal(core_stats(e.core)->unhealthy_devices[0].count, 1);
	core_action_done(e.core, "u1", CORE_RESULT_EVICTED, 0, e.now);
	assert_int_equal(core_stats(e.core)->evicted, 1);
	assert_int_equal(core_stats(e.core)->in_flight, 0);
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);
}

static void test_not_before_sync_nor_inactive(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy(), false);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), UINT64_MAX);
	core_set_active(e.core, false, e.now);
	core_set_synced(e.core, true, e.now);
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), UINT64_MAX);
	core_set_active(e.core, true, e.now);
	assert_int_equal(core_next_wakeup(e.core, e.now), 1000);
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u1");
	tb_env_done(&e);
}

static void test_debounce(void **state)
{
	struct tb_env e;
	struct policy *p =
	    tb_policy_yaml("signals: {podResourceHealth: {for: 30s, unknown: {enabled: true, for: 5m}}}\n");
	struct kc_pod *pod;

	(void)state;
	tb_env_init(&e, p, true);
	e.now = 10000;
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	assert_int_equal(core_next_wakeup(e.core, e.now), 40000);
	e.now = 39999;
	/* A status update that changes nothing else keeps the first-seen time. */
	pod = sick_pod("a", "u1", "n1", "GPU-1");
	tb_put_pod(&e, pod);
	assert_int_equal(next(&e), -EAGAIN);
	e.now = 40000;
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.detected_ms, 10000);

	/* Recovered before the debounce: nothing. */
	tb_put_pod(&e, sick_pod("b", "u2", "n1", "GPU-2"));
	e.now = 50000;
	tb_put_pod(&e, gpu_pod("b", "u2", "n1"));
	assert_int_equal(core_stats(e.core)->unhealthy_pods, 1);
	e.now = 100000;
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), UINT64_MAX);

	/* Unknown with its own, longer debounce. */
	pod = gpu_pod("c", "u3", "n1");
	tb_status_health(tb_pod_status(pod, "main"), GPU, "GPU-3", KC_HEALTH_UNKNOWN, "");
	tb_put_pod(&e, pod);
	assert_int_equal(core_next_wakeup(e.core, e.now), 100000 + 300000);
	e.now = 400000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.message, "Evicting pod ml/c: nvidia.com/gpu device GPU-3 is Unknown "
					 "(signal PodResourceHealth: reported Unknown)");
	tb_env_done(&e);
}

static void test_unknown_disabled_by_default(void **state)
{
	struct tb_env e;
	struct kc_pod *pod;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	pod = gpu_pod("c", "u3", "n1");
	tb_status_health(tb_pod_status(pod, "main"), GPU, "GPU-3", KC_HEALTH_UNKNOWN, "");
	tb_put_pod(&e, pod);
	e.now += 3600000;
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_stats(e.core)->unhealthy_pods, 0);
	tb_env_done(&e);
}

static void test_node_condition(void **state)
{
	struct tb_env e;
	struct kc_node *n;

	(void)state;
	tb_env_init(
	    &e,
	    tb_policy_yaml(
		"signals:\n  nodeConditions:\n    - {type: GPUXIDErrors, status: \"True\", for: 1m}\n"),
	    true);
	put_gpu_node(&e, "n1");
	put_gpu_node(&e, "n2");
	tb_put_pod(&e, gpu_pod("a", "u1", "n1"));
	tb_put_pod(&e, tb_pod("ml", "cpu-only", "u2", "n1"));
	tb_put_pod(&e, gpu_pod("other-node", "u3", "n2"));
	e.now = 2000;
	n = tb_node_clone(kc_store_get(e.nodes, "", "n1"));
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79 on GPU-1");
	tb_put_node(&e, n);
	assert_int_equal(core_next_wakeup(e.core, e.now), 62000);
	/* A node update that keeps the condition keeps its first-seen time. */
	e.now = 30000;
	tb_put_node(&e, tb_node_clone(kc_store_get(e.nodes, "", "n1")));
	e.now = 61999;
	assert_int_equal(next(&e), -EAGAIN);
	e.now = 62000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u1");
	assert_string_equal(act.signal, "NodeCondition");
	assert_string_equal(act.resource, GPU);
	assert_string_equal(act.device, "");
	assert_string_equal(act.message, "Evicting pod ml/a: nvidia.com/gpu on node n1 is unhealthy "
					 "(signal NodeCondition: GPUXIDErrors=True: XID 79 on GPU-1)");
	assert_int_equal(act.detected_ms, 2000);
	assert_int_equal(next(&e), -EAGAIN);

	/* A pod arriving later on the node is due at once (the condition has held for a minute). */
	tb_put_pod(&e, gpu_pod("late", "u4", "n1"));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u4");
	tb_env_done(&e);
}

static void test_node_condition_device_pattern(void **state)
{
	struct tb_env e;
	struct kc_node *n;
	struct kc_pod *p1, *p2;

	(void)state;
	tb_env_init(
	    &e,
	    tb_policy_yaml(
		"signals:\n  nodeConditions:\n    - {type: GPUXIDErrors, status: \"True\", resources: "
		"[nvidia.com/gpu], deviceIDPattern: \"GPU-[0-9a-f]+\"}\n"),
	    true);
	p1 = gpu_pod("a", "u1", "n1");
	tb_status_health(tb_pod_status(p1, "main"), GPU, "GPU-aa", KC_HEALTH_HEALTHY, "");
	p2 = gpu_pod("b", "u2", "n1");
	tb_status_health(tb_pod_status(p2, "main"), GPU, "GPU-bb", KC_HEALTH_HEALTHY, "");
	tb_put_pod(&e, p1);
	tb_put_pod(&e, p2);
	n = tb_node("n1");
	tb_node_resource(n, GPU, 2, 2);
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79 on GPU-bb, XID 48 on GPU-cc");
	tb_put_node(&e, n);
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u2");
	assert_string_equal(act.device, "GPU-bb");
	assert_string_equal(act.message,
			    "Evicting pod ml/b: nvidia.com/gpu device GPU-bb is unhealthy (signal "
			    "NodeCondition: GPUXIDErrors=True: XID 79 on GPU-bb, XID 48 on GPU-cc)");
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);
}

static void test_allocatable_drop(void **state)
{
	struct tb_env e;
	struct kc_node *n;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("signals: {allocatableDrop: {enabled: true, for: 5m}}\n"), true);
	put_gpu_node(&e, "n1");
	tb_put_pod(&e, gpu_pod("a", "u1", "n1"));
	n = tb_node_clone(kc_store_get(e.nodes, "", "n1"));
	tb_node_resource(n, GPU, 8, 7);
	tb_put_node(&e, n);
	assert_int_equal(core_next_wakeup(e.core, e.now), 1000 + 300000);
	e.now = 301000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.signal, "AllocatableDrop");
	assert_string_equal(act.message, "Evicting pod ml/a: nvidia.com/gpu on node n1 is unhealthy "
					 "(signal AllocatableDrop: node n1 allocatable 7 < capacity 8)");
	tb_env_done(&e);
}

static void test_exit_code(void **state)
{
	struct tb_env e;
	struct kc_pod *pod;
	struct kc_container_status *cs;

	(void)state;
	tb_env_init(
	    &e, tb_policy_yaml("signals: {exitCodes: {enabled: true, codes: [79], minRestarts: 3}}\n"), true);
	pod = gpu_pod("a", "u1", "n1");
	cs = tb_pod_status(pod, "main");
	cs->has_last_exit_code = true;
	cs->last_exit_code = 79;
	cs->restart_count = 2;
	tb_put_pod(&e, pod);
	assert_int_equal(next(&e), -EAGAIN);
	pod = tb_pod_clone(kc_store_get(e.pods, "ml", "a"));
	pod->statuses[0].restart_count = 3;
	tb_put_pod(&e, pod);
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.signal, "ExitCode");
	assert_string_equal(act.resource, GPU);
	assert_string_equal(act.message,
			    "Evicting pod ml/a: nvidia.com/gpu on node n1 is failing "
			    "(signal ExitCode: container main exited with code 79 after 3 restarts)");
	/* A container without a device does not count. */
	pod = tb_pod("ml", "cpu", "u2", "n1");
	tb_pod_owner(pod, "ReplicaSet", "rs", true);
	tb_pod_container(pod, "main", NULL, 0);
	cs = tb_pod_status(pod, "main");
	cs->has_exit_code = true;
	cs->exit_code = 79;
	cs->restart_count = 9;
	tb_put_pod(&e, pod);
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);
}

/* Sets a container's state as the kubelet reports it. */
static void set_state(struct kc_container_status *cs, enum kc_container_state st, const char *reason, bool ready)
{
	cs->state = st;
	cs->crash_loop_backoff = strcmp(reason, "CrashLoopBackOff") == 0;
	cs->ready = ready;
}

/*
 * Issue 14 #12: the exitCodes signal holds only while the container is not
 * running and ready, or is crash-looping; Running and Ready again clears it,
 * so `for:` debounces.
 */
static void test_exit_code_clears_when_ready(void **state)
{
	struct tb_env e;
	struct kc_pod *pod;
	struct kc_container_status *cs;
	uint64_t t0;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("signals: {exitCodes: {enabled: true, codes: [79], minRestarts: 3, for: 3s}}\n"),
		    true);
	pod = gpu_pod("a", "u1", "n1");
	cs = tb_pod_status(pod, "main");
	cs->has_last_exit_code = true;
	cs->last_exit_code = 79;
	cs->restart_count = 3;
	set_state(cs, KC_STATE_WAITING, "CrashLoopBackOff", false);
	t0 = e.now;
	tb_put_pod(&e, pod);
	assert_int_equal(core_next_wakeup(e.core, e.now), t0 + 3000);
	/* Running and Ready again 1 s later: the signal clears. */
	e.now = t0 + 1000;
	pod = tb_pod_clone(kc_store_get(e.pods, "ml", "a"));
	set_state(&pod->statuses[0], KC_STATE_RUNNING, "", true);
	tb_put_pod(&e, pod);
	e.now = t0 + 3010;
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), UINT64_MAX);
	/* Running but not (yet) ready after a restart: it holds again, from now. */
	e.now = t0 + 4000;
	pod = tb_pod_clone(kc_store_get(e.pods, "ml", "a"));
	pod->statuses[0].restart_count = 4;
	set_state(&pod->statuses[0], KC_STATE_RUNNING, "", false);
	tb_put_pod(&e, pod);
	assert_int_equal(core_next_wakeup(e.core, e.now), t0 + 7000);
	/* Terminated with a listed code counts even when the last ready flag lingers. */
	e.now = t0 + 5000;
	pod = tb_pod_clone(kc_store_get(e.pods, "ml", "a"));
	set_state(&pod->statuses[0], KC_STATE_TERMINATED, "Error", true);
	pod->statuses[0].has_exit_code = true;
	pod->statuses[0].exit_code = 79;
	tb_put_pod(&e, pod);
	e.now = t0 + 7000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.signal, "ExitCode");
	tb_env_done(&e);
}

/* A pod whose container uses the DRA claim "gpu" (resources.claims) and crash-loops with code 79. */
static struct kc_pod *crashing_dra_pod(void)
{
	struct kc_pod *pod = tb_pod("ml", "dra", "u1", "n1");
	struct kc_container *c;
	struct kc_container_status *cs;

	tb_pod_owner(pod, "StatefulSet", "s", true);
	tb_pod_container(pod, "main", NULL, 0);
	tb_pod_claim(pod, "gpu", "dra-gpu");  /* moves the containers: they share one array */
	c = &pod->containers[0];
	c->claim = 1;  /* the pod's first claim, "gpu" */
	cs = tb_pod_status(pod, "main");
	cs->has_last_exit_code = true;
	cs->last_exit_code = 79;
	cs->restart_count = 3;
	set_state(cs, KC_STATE_WAITING, "CrashLoopBackOff", false);
	return pod;
}

/* Issue 14 #7: exitCodes also covers a container that holds a DRA claim (resources.claims). */
static void test_exit_code_dra_claim(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("signals: {exitCodes: {enabled: true, codes: [79], minRestarts: 3}}\n"), true);
	tb_put_pod(&e, crashing_dra_pod());
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.signal, "ExitCode");
	assert_string_equal(act.resource, "claim:gpu");
	assert_string_equal(act.name, "dra");
	tb_env_done(&e);
	/* With devices.dra off, a claim is not a device. */
	tb_env_init(&e, tb_policy_yaml("devices: {dra: false}\n"
				       "signals: {exitCodes: {enabled: true, codes: [79], minRestarts: 3}}\n"),
		    true);
	tb_put_pod(&e, crashing_dra_pod());
	assert_int_equal(next(&e), -EAGAIN);
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

static void put_dra_claim(struct tb_env *e, const char *pod, const char *uid, const char *dev)
{
	struct kc_resource_claim *c = tb_claim("ml", tb_fmt("%s-gpu", pod), tb_fmt("claim-%s", uid));

	tb_claim_result(c, "gpu", "gpu.example.com", "n1", dev);
	tb_claim_consumer(c, pod, uid);
	tb_put_claim(e, c);
}

static void test_dra_taint(void **state)
{
	struct tb_env e;
	struct kc_resource_slice *s;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	tb_put_pod(&e, dra_pod("a", "u1"));
	tb_put_pod(&e, dra_pod("b", "u2"));
	put_dra_claim(&e, "a", "u1", "gpu-0");
	put_dra_claim(&e, "b", "u2", "gpu-1");
	s = tb_slice("n1-gpu", "gpu.example.com", "n1", "n1");
	tb_slice_device(s, "gpu-0", NULL, NULL);
	tb_slice_device(s, "gpu-1", "example.com/soft", "NoSchedule");
	tb_put_slice(&e, s);
	assert_int_equal(next(&e), -EAGAIN); /* NoSchedule is not listed by default */
	e.now = 3000;
	s = tb_slice("n1-gpu", "gpu.example.com", "n1", "n1");
	tb_slice_device(s, "gpu-0", "example.com/xid", "NoExecute");
	tb_slice_device(s, "gpu-1", NULL, NULL);
	tb_put_slice(&e, s);
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u1");
	assert_string_equal(act.signal, "DRADeviceTaint");
	assert_string_equal(act.resource, "claim:gpu/gpu");
	assert_string_equal(act.device, "gpu.example.com/n1/gpu-0");
	assert_string_equal(act.message,
			    "Evicting pod ml/a: claim:gpu/gpu device gpu.example.com/n1/gpu-0 is tainted "
			    "(signal DRADeviceTaint: taint example.com/xid:NoExecute)");
	assert_int_equal(act.detected_ms, 3000);
	assert_int_equal(next(&e), -EAGAIN);
	/* Taint removed: the other pod stays; the slice deleted: nothing left. */
	tb_del_slice(&e, "n1-gpu");
	assert_int_equal(core_stats(e.core)->unhealthy_pods,
			 0); /* the gauge follows the device, even in flight */
	tb_env_done(&e);
}

/*
 * A claim that tolerates the NoExecute taint keeps its pod (the old code evicted it); one that
 * tolerates it for 30 s after its timeAdded is evicted once that ends (the core wakes then); a
 * foreign DeviceTaintRule evicts like a slice taint, and deleting it before the end spares the pod.
 */
static void test_dra_tolerations_and_rules(void **state)
{
	struct tb_env e;
	struct kc_resource_claim *c;
	struct kc_resource_slice *s;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	core_set_wall_clock(e.core, 1795741318000LL + 10000, e.now); /* the taint was added 10 s ago */
	tb_put_pod(&e, dra_pod("a", "u1"));
	tb_put_pod(&e, dra_pod("b", "u2"));
	c = tb_claim("ml", "a-gpu", "claim-a");
	tb_claim_result(c, "gpu", "gpu.example.com", "n1", "gpu-0");
	tb_claim_toleration(c, "example.com/xid", KC_TOLERATION_EXISTS, "", "NoExecute", -1);
	tb_claim_consumer(c, "a", "u1");
	tb_put_claim(&e, c);
	c = tb_claim("ml", "b-gpu", "claim-b");
	tb_claim_result(c, "gpu", "gpu.example.com", "n1", "gpu-1");
	tb_claim_toleration(c, "example.com/xid", KC_TOLERATION_EQUAL, "79", "NoExecute", 30);
	tb_claim_consumer(c, "b", "u2");
	tb_put_claim(&e, c);
	s = tb_slice("n1-gpu", "gpu.example.com", "n1", "n1");
	tb_slice_device(s, "gpu-0", NULL, NULL);
	tb_slice_taint(s, "example.com/xid", "79", "NoExecute", 1795741318);
	tb_slice_device(s, "gpu-1", NULL, NULL);
	tb_slice_taint(s, "example.com/xid", "79", "NoExecute", 1795741318);
	tb_put_slice(&e, s);
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), 1000 + 20000);
	e.now = 1000 + 20000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u2");
	assert_int_equal(act.detected_ms, 21000);
	core_action_done(e.core, "u2", CORE_RESULT_EVICTED, 0, e.now);
	tb_del_pod(&e, "ml", "b");
	assert_int_equal(next(&e), -EAGAIN);

	/* A rule that picks gpu-0 with another key: "a" tolerates only example.com/xid. */
	e.now = 30000;
	tb_put_rule(&e, tb_rule("maintenance", "gpu.example.com", "n1", "gpu-0", "example.com/maint", "NoExecute",
				1795741318 + 38));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u1");
	assert_string_equal(act.message,
			    "Evicting pod ml/a: claim:gpu/gpu device gpu.example.com/n1/gpu-0 is tainted "
			    "(signal DRADeviceTaint: DeviceTaintRule maintenance: taint example.com/maint:NoExecute)");
	core_action_done(e.core, "u1", CORE_RESULT_CANCELLED, 0, e.now);
	/* Deleted: nothing left to act on. */
	tb_del_rule(&e, "maintenance");
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_stats(e.core)->unhealthy_pods, 0);
	tb_env_done(&e);
}

static void test_dra_condition(void **state)
{
	struct tb_env e;
	struct kc_resource_claim *c;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	tb_put_pod(&e, dra_pod("a", "u1"));
	put_dra_claim(&e, "a", "u1", "gpu-0");
	assert_int_equal(next(&e), -EAGAIN);
	c = tb_claim("ml", "a-gpu", "claim-u1");
	tb_claim_result(c, "gpu", "gpu.example.com", "n1", "gpu-0");
	tb_claim_consumer(c, "a", "u1");
	tb_claim_device_condition(c, "gpu.example.com", "n1", "gpu-0", "Ready", KC_COND_FALSE, "ECC errors");
	tb_put_claim(&e, c);
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.signal, "DRADeviceCondition");
	assert_string_equal(act.message,
			    "Evicting pod ml/a: claim:gpu/gpu device gpu.example.com/n1/gpu-0 is unhealthy "
			    "(signal DRADeviceCondition: Ready=False: ECC errors)");
	tb_env_done(&e);
}

static void test_dra_pod_resource_health(void **state)
{
	struct tb_env e;
	struct kc_pod *p;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	p = dra_pod("a", "u1");
	tb_status_health(tb_pod_status(p, "main"), "claim:gpu/gpu", "gpu.example.com/n1/gpu-1",
			 KC_HEALTH_UNHEALTHY, "critical XID 79");
	tb_put_pod(&e, p);
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.resource, "claim:gpu/gpu");
	assert_string_equal(act.device, "gpu.example.com/n1/gpu-1");
	tb_env_done(&e);
}

/* Each filter: the pod is bound to an unhealthy device but not evicted, counted by reason. */
static void check_skip(struct policy *p, struct kc_pod *pod, enum planner_skip why)
{
	struct tb_env e;

	tb_env_init(&e, p, true);
	tb_status_health(tb_pod_status(pod, "main"), GPU, "GPU-1", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_put_pod(&e, pod);
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_stats(e.core)->skipped[why], 1);
	assert_int_equal(core_stats(e.core)->unhealthy_pods, 1);
	/* The same pod updated again is not counted twice. */
	tb_put_pod(&e, tb_pod_clone(kc_store_get(e.pods, pod->meta.ns, pod->meta.name)));
	assert_int_equal(core_stats(e.core)->skipped[why], 1);
	tb_env_done(&e);
}

static void test_filters(void **state)
{
	struct kc_pod *pod;

	(void)state;
	check_skip(tb_policy_yaml("podFilters: {namespaces: {include: [prod]}}\n"), gpu_pod("a", "u", "n1"),
		   PLANNER_SKIP_NAMESPACE);
	check_skip(tb_policy_yaml("podFilters: {namespaces: {exclude: [ml]}}\n"), gpu_pod("a", "u", "n1"),
		   PLANNER_SKIP_NAMESPACE);
	check_skip(tb_policy_yaml("podFilters: {labelSelector: {matchLabels: {team: ml}}}\n"),
		   gpu_pod("a", "u", "n1"), PLANNER_SKIP_SELECTOR);
	pod = gpu_pod("a", "u", "n1");
	tb_pod_label(pod, "tier", "gold");
	check_skip(
	    tb_policy_yaml("podFilters: {labelSelector: {matchExpressions: [{key: tier, operator: NotIn, "
			   "values: [gold]}]}}\n"),
	    pod, PLANNER_SKIP_SELECTOR);
	check_skip(tb_policy_yaml(
		       "podFilters: {labelSelector: {matchExpressions: [{key: tier, operator: Exists}]}}\n"),
		   gpu_pod("a", "u", "n1"), PLANNER_SKIP_SELECTOR);
	pod = gpu_pod("a", "u", "n1");
	tb_pod_label(pod, "x", "1");
	check_skip(
	    tb_policy_yaml(
		"podFilters: {labelSelector: {matchExpressions: [{key: x, operator: DoesNotExist}]}}\n"),
	    pod, PLANNER_SKIP_SELECTOR);
	pod = gpu_pod("a", "u", "n1");
	pod->has_priority = true;
	pod->priority = 1000;
	check_skip(tb_policy_yaml("podFilters: {priorityThreshold: {value: 1000}}\n"), pod,
		   PLANNER_SKIP_PRIORITY);
	pod = gpu_pod("a", "u", "n1");
	tb_pod_annotation(pod, POLICY_OPT_OUT_ANNOTATION, "false");
	check_skip(tb_policy(), pod, PLANNER_SKIP_OPT_OUT);
	pod = tb_pod("ml", "a", "u", "n1");
	tb_pod_owner(pod, "DaemonSet", "ds", true);
	tb_pod_container(pod, "main", GPU, 1);
	check_skip(tb_policy(), pod, PLANNER_SKIP_DAEMONSET);
	pod = gpu_pod("a", "u", "n1");
	pod->is_mirror = true;
	check_skip(tb_policy(), pod, PLANNER_SKIP_MIRROR);
	pod = gpu_pod("a", "u", "n1");
	pod->meta.deleting = true;
	check_skip(tb_policy(), pod, PLANNER_SKIP_TERMINATING);
	pod = gpu_pod("a", "u", "n1");
	pod->phase = KC_POD_FAILED;
	check_skip(tb_policy(), pod, PLANNER_SKIP_COMPLETED);
	pod = gpu_pod("a", "u", "n1");
	pod->phase = KC_POD_SUCCEEDED;
	check_skip(tb_policy(), pod, PLANNER_SKIP_COMPLETED);
	pod = tb_pod("ml", "a", "u", "n1");
	tb_pod_container(pod, "main", GPU, 1);
	check_skip(tb_policy(), pod, PLANNER_SKIP_BARE);

	/* Matching selector, priority below the threshold, opt-out "true": evicted. */
	{
		struct tb_env e;

		tb_env_init(
		    &e,
		    tb_policy_yaml(
			"podFilters:\n  labelSelector: {matchLabels: {team: ml}, matchExpressions: "
			"[{key: tier, operator: In, values: [gold]}]}\n  priorityThreshold: {value: 1000}\n"),
		    true);
		pod = sick_pod("a", "u", "n1", "GPU-1");
		tb_pod_label(pod, "team", "ml");
		tb_pod_label(pod, "tier", "gold");
		tb_pod_annotation(pod, POLICY_OPT_OUT_ANNOTATION, "true");
		pod->has_priority = true;
		pod->priority = 999;
		tb_put_pod(&e, pod);
		assert_int_equal(next(&e), 0);
		tb_env_done(&e);
	}
}

static void test_bare_pod_notice(void **state)
{
	struct tb_env e;
	struct core_notice n;
	struct kc_pod *pod;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	pod = tb_pod("ml", "bare", "u1", "n1");
	tb_pod_container(pod, "main", GPU, 1);
	tb_status_health(tb_pod_status(pod, "main"), GPU, "GPU-1", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_put_pod(&e, pod);
	assert_int_equal(core_next_notice(e.core, &n), 0);
	assert_string_equal(n.type, "Normal");
	assert_string_equal(n.reason, "NotEvicted");
	assert_string_equal(n.ns, "ml");
	assert_string_equal(n.name, "bare");
	assert_string_equal(n.uid, "u1");
	assert_false(n.cluster_wide);
	assert_string_equal(n.message,
			    "Not evicting pod ml/bare bound to unhealthy nvidia.com/gpu device GPU-1: "
			    "pod has no controller owner and eviction.evictBarePods is false");
	assert_int_equal(core_next_notice(e.core, &n), -EAGAIN);
	/* Once per UID, even across recovery and a new failure. */
	tb_put_pod(&e, tb_pod_clone(kc_store_get(e.pods, "ml", "bare")));
	pod = tb_pod("ml", "bare", "u1", "n1");
	tb_pod_container(pod, "main", GPU, 1);
	tb_put_pod(&e, pod);
	pod = tb_pod("ml", "bare", "u1", "n1");
	tb_pod_container(pod, "main", GPU, 1);
	tb_status_health(tb_pod_status(pod, "main"), GPU, "GPU-1", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_put_pod(&e, pod);
	assert_int_equal(core_next_notice(e.core, &n), -EAGAIN);
	assert_int_equal(next(&e), -EAGAIN);
	/* evictBarePods: true evicts it. */
	tb_set_policy(&e, tb_policy_yaml("podFilters: {evictBarePods: true}\n"));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u1");
	tb_env_done(&e);
}

static void test_standby_is_quiet(void **state)
{
	struct tb_env e;
	struct core_notice n;
	struct kc_pod *pod;

	(void)state;
	tb_env_init(&e,
		    tb_policy_yaml("eviction: {circuitBreaker: {enabled: true, maxUnhealthyNodes: 1, "
				   "maxUnhealthyNodePercent: 0}}\n"),
		    true);
	core_set_active(e.core, false, e.now);
	pod = tb_pod("ml", "bare", "u1", "n1");
	tb_pod_container(pod, "main", GPU, 1);
	tb_status_health(tb_pod_status(pod, "main"), GPU, "GPU-1", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_put_pod(&e, pod);
	tb_put_pod(&e, sick_pod("a", "u2", "n2", "GPU-2"));
	assert_true(core_stats(e.core)->breaker_open);
	assert_int_equal(core_next_notice(e.core, &n), -EAGAIN);
	/* Taking over: the new leader announces both. */
	core_set_active(e.core, true, e.now);
	assert_int_equal(core_next_notice(e.core, &n), 0);
	assert_string_equal(n.reason, "CircuitBreakerOpen");
	assert_int_equal(core_next_notice(e.core, &n), 0);
	assert_string_equal(n.reason, "NotEvicted");
	assert_int_equal(core_next_notice(e.core, &n), -EAGAIN);
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);
}

static void test_idempotence(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	assert_int_equal(next(&e), 0);
	core_action_done(e.core, "u1", CORE_RESULT_EVICTED, 0, e.now);
	/* The same UID again (still unhealthy, not yet terminating): never again. */
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	e.now += 3600000;
	assert_int_equal(next(&e), -EAGAIN);
	core_set_policy(e.core, e.p, e.now); /* a full re-evaluation remembers it too */
	assert_int_equal(next(&e), -EAGAIN);
	/* A results for an unknown or finished UID is ignored. */
	core_action_done(e.core, "u1", CORE_RESULT_EVICTED, 0, e.now);
	core_action_done(e.core, "nope", CORE_RESULT_EVICTED, 0, e.now);
	assert_int_equal(core_stats(e.core)->evicted, 1);
	/* Recreated under the same name with a new UID: a new pod. */
	tb_put_pod(&e, sick_pod("a", "u2", "n1", "GPU-1"));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u2");
	core_action_done(e.core, "u2", CORE_RESULT_GONE, 0, e.now);
	assert_int_equal(core_stats(e.core)->gone, 1);
	assert_int_equal(next(&e), -EAGAIN);
	tb_del_pod(&e, "ml", "a");
	assert_int_equal(core_stats(e.core)->tracked_pods, 0);
	assert_int_equal(core_stats(e.core)->unhealthy_pods, 0);
	tb_env_done(&e);
}

static void test_retry_backoff_delete_after(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(
	    &e, tb_policy_yaml("eviction: {retry: {initialBackoff: 5s, maxBackoff: 20s}, deleteAfter: 1m}\n"),
	    true);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	assert_int_equal(next(&e), 0);
	core_action_done(e.core, "u1", CORE_RESULT_BLOCKED, 0, e.now); /* t=1000 */
	assert_int_equal(core_stats(e.core)->blocked, 1);
	assert_int_equal(core_next_wakeup(e.core, e.now), 6000);
	e.now = 5999;
	assert_int_equal(next(&e), -EAGAIN);
	e.now = 6000;
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_EVICT);
	core_action_done(e.core, "u1", CORE_RESULT_BLOCKED, 0, e.now);
	assert_int_equal(core_next_wakeup(e.core, e.now), 16000); /* 10 s */
	e.now = 16000;
	assert_int_equal(next(&e), 0);
	core_action_done(e.core, "u1", CORE_RESULT_BLOCKED, 30000, e.now); /* Retry-After larger than 20 s */
	assert_int_equal(core_next_wakeup(e.core, e.now), 46000);
	e.now = 46000;
	assert_int_equal(next(&e), 0);
	core_action_done(e.core, "u1", CORE_RESULT_ERROR, 0, e.now);
	assert_int_equal(core_stats(e.core)->errors, 1);
	/* The next retry (20 s, the maximum) would pass the deleteAfter deadline (1000 + 60000): brought
	 * forward. */
	assert_int_equal(core_next_wakeup(e.core, e.now), 61000);
	e.now = 61000;
	assert_int_equal(next(&e), 0);
	assert_int_equal(act.kind, CORE_DELETE);
	assert_string_equal(act.message,
			    "Deleting pod ml/a: nvidia.com/gpu device GPU-1 is Unhealthy (signal "
			    "PodResourceHealth: XID 79); eviction blocked for 60 s, deleting without the "
			    "eviction API");
	core_action_done(e.core, "u1", CORE_RESULT_EVICTED, 0, e.now);
	assert_int_equal(core_stats(e.core)->deleted, 1);
	assert_int_equal(core_stats(e.core)->evicted, 0);
	e.now += 1000000;
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);
}

/*
 * Issue 14 #4: a 409 to an eviction is "gone" only when the cache no longer
 * has that UID (a failed UID precondition); the same pod, still cached and
 * still unhealthy (a conflicting PodDisruptionBudget update), is retried with
 * backoff.
 */
static void test_conflict_retried_unless_gone(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("eviction: {retry: {initialBackoff: 5s, maxBackoff: 20s}}\n"), true);
	e.now = 1000;
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	assert_int_equal(next(&e), 0);
	core_action_done(e.core, "u1", CORE_RESULT_CONFLICT, 0, e.now);
	assert_int_equal(core_stats(e.core)->gone, 0);
	assert_int_equal(core_stats(e.core)->errors, 1);
	assert_int_equal(core_next_wakeup(e.core, e.now), 6000);
	e.now = 6000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "u1");
	/* Replaced under the same name (the cache has a new UID): the old one is gone. */
	tb_put_pod(&e, gpu_pod("a", "u2", "n1"));
	core_action_done(e.core, "u1", CORE_RESULT_CONFLICT, 0, e.now);
	assert_int_equal(core_stats(e.core)->gone, 1);
	assert_int_equal(core_stats(e.core)->errors, 1);
	e.now += 60000;
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);
}

static void test_blocked_then_recovered(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	assert_int_equal(next(&e), 0);
	/* The device recovers while the eviction is in flight. */
	tb_put_pod(&e, gpu_pod("a", "u1", "n1"));
	core_action_done(e.core, "u1", CORE_RESULT_BLOCKED, 0, e.now);
	assert_int_equal(core_next_wakeup(e.core, e.now), UINT64_MAX);
	assert_int_equal(core_stats(e.core)->tracked_pods, 0);
	/* Deleted while in flight: the result frees the record. */
	tb_put_pod(&e, sick_pod("b", "u2", "n1", "GPU-2"));
	assert_int_equal(next(&e), 0);
	tb_del_pod(&e, "ml", "b");
	assert_int_equal(core_stats(e.core)->tracked_pods, 1);
	core_action_done(e.core, "u2", CORE_RESULT_EVICTED, 0, e.now);
	assert_int_equal(core_stats(e.core)->tracked_pods, 0);
	tb_env_done(&e);
}

static void test_dry_run(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("dryRun: true\neviction: {limits: {maxInFlight: 1, maxTotal: 0}}\n"),
		    true);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	tb_put_pod(&e, sick_pod("b", "u2", "n1", "GPU-2"));
	assert_int_equal(next(&e), 0);
	assert_true(act.dry_run);
	assert_int_equal(act.kind, CORE_EVICT);
	assert_int_equal(strncmp(act.message, "Would evict pod ml/", 19), 0);
	assert_int_equal(next(&e), 0); /* not in flight: maxInFlight does not hold it */
	assert_true(act.dry_run);
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_stats(e.core)->dry_run, 2);
	assert_int_equal(core_stats(e.core)->in_flight, 0);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	core_set_policy(e.core, e.p, e.now);
	e.now += 3600000;
	assert_int_equal(next(&e), -EAGAIN);
	/* Dry run turned off: the pods are evicted for real, once. */
	tb_set_policy(&e, tb_policy());
	assert_int_equal(next(&e), 0);
	assert_false(act.dry_run);
	assert_int_equal(strncmp(act.message, "Evicting pod ml/", 16), 0);
	assert_int_equal(next(&e), 0);
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);
}

static void test_limit_per_node(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(
	    &e,
	    tb_policy_yaml("eviction: {limits: {window: 1m, maxPerNode: 1, maxTotal: 0, maxInFlight: 0}}\n"),
	    true);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	tb_put_pod(&e, sick_pod("b", "u2", "n1", "GPU-2"));
	tb_put_pod(&e, sick_pod("c", "u3", "n2", "GPU-3"));
	assert_int_equal(next(&e), 0);
	assert_int_equal(next(&e), 0);
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_stats(e.core)->held_by_limit, 1);
	assert_int_equal(core_next_wakeup(e.core, e.now), 61000);
	e.now = 60999;
	assert_int_equal(next(&e), -EAGAIN);
	e.now = 61000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.node, "n1");
	assert_int_equal(core_stats(e.core)->held_by_limit, 1);
	tb_env_done(&e);
}

static void test_limit_per_namespace_total_in_flight(void **state)
{
	struct tb_env e;
	struct kc_pod *p;

	(void)state;
	tb_env_init(
	    &e,
	    tb_policy_yaml(
		"eviction: {limits: {window: 10s, maxPerNamespace: 2, maxTotal: 3, maxInFlight: 2}}\n"),
	    true);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	tb_put_pod(&e, sick_pod("b", "u2", "n2", "GPU-2"));
	tb_put_pod(&e, sick_pod("c", "u3", "n3", "GPU-3"));
	p = tb_gpu_pod("other", "d", "u4", "n4", GPU, 1);
	tb_status_health(tb_pod_status(p, "main"), GPU, "GPU-4", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_put_pod(&e, p);
	assert_int_equal(next(&e), 0);
	assert_int_equal(next(&e), 0);
	assert_int_equal(next(&e), -EAGAIN); /* maxInFlight 2 */
	assert_int_equal(core_next_wakeup(e.core, e.now), UINT64_MAX);
	core_action_done(e.core, "u2", CORE_RESULT_EVICTED, 0, e.now);
	assert_int_equal(next(&e), 0); /* the namespace ml is out of tokens: the other namespace's pod */
	assert_string_equal(act.ns, "other");
	core_action_done(e.core, act.uid, CORE_RESULT_EVICTED, 0, e.now);
	assert_int_equal(next(&e), -EAGAIN); /* maxTotal 3 */
	/* At most 3 in any 10 s, and 2 for ml: room again once the first ones leave the window. */
	assert_int_equal(core_next_wakeup(e.core, e.now), 11000);
	e.now = 10999;
	assert_int_equal(next(&e), -EAGAIN);
	e.now = 11000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.name, "c");
	tb_env_done(&e);
}

static void test_breaker(void **state)
{
	struct tb_env e;
	struct core_notice n;

	(void)state;
	tb_env_init(
	    &e,
	    tb_policy_yaml(
		"eviction: {circuitBreaker: {enabled: true, maxUnhealthyNodePercent: 50, minNodes: 4}}\n"),
	    false);
	for (int i = 0; i < 4; i++)
		put_gpu_node(&e, tb_fmt("n%d", i));
	tb_put_pod(&e, sick_pod("a", "u1", "n0", "GPU-1"));
	tb_put_pod(&e, sick_pod("b", "u2", "n1", "GPU-2"));
	tb_put_pod(&e, sick_pod("c", "u3", "n2", "GPU-3"));
	core_set_synced(e.core, true, e.now);
	assert_true(core_stats(e.core)->breaker_open);
	assert_int_equal(core_stats(e.core)->breaker_trips, 1);
	assert_int_equal(core_stats(e.core)->device_nodes, 4);
	assert_int_equal(core_stats(e.core)->unhealthy_nodes, 3);
	assert_int_equal(core_next_notice(e.core, &n), 0);
	assert_string_equal(n.type, "Warning");
	assert_string_equal(n.reason, "CircuitBreakerOpen");
	assert_true(n.cluster_wide);
	assert_string_equal(n.message,
			    "Circuit breaker open: 3 of 4 device nodes (75%) are unhealthy (maximum 50%); "
			    "no pods are evicted until it closes");
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), UINT64_MAX);
	/* One recovers: 2 of 4 is not above 50%, but the breaker closes only after closeAfter (30 s). */
	tb_put_pod(&e, gpu_pod("c", "u3", "n2"));
	assert_true(core_stats(e.core)->breaker_open);
	assert_int_equal(core_next_notice(e.core, &n), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), 31000);
	e.now = 30999;
	assert_int_equal(next(&e), -EAGAIN);
	assert_true(core_stats(e.core)->breaker_open);
	e.now = 31000;
	assert_int_equal(next(&e), 0);
	assert_false(core_stats(e.core)->breaker_open);
	assert_int_equal(core_next_notice(e.core, &n), 0);
	assert_string_equal(n.type, "Normal");
	assert_string_equal(n.reason, "CircuitBreakerClosed");
	assert_int_equal(next(&e), 0);
	assert_int_equal(next(&e), -EAGAIN);

	/* maxUnhealthyNodes. */
	tb_set_policy(&e, tb_policy_yaml("eviction: {circuitBreaker: {enabled: true, maxUnhealthyNodes: 1, "
					 "maxUnhealthyNodePercent: 0}}\n"));
	assert_true(core_stats(e.core)->breaker_open);
	assert_int_equal(core_stats(e.core)->breaker_trips, 2);
	tb_env_done(&e);
}

/*
 * Issue 14 #15: one device flapping at the threshold used to give one Open and
 * one Closed Event per flap.  With closeAfter the breaker stays open until the
 * count has stayed below the threshold for 30 s: one pair in all.
 */
static void test_breaker_hysteresis(void **state)
{
	struct tb_env e;
	struct core_notice n;
	int opened = 0, closed = 0;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("eviction: {circuitBreaker: {maxUnhealthyNodePercent: 50, minNodes: 4}}\n"),
		    true);
	for (int i = 0; i < 8; i++)
		put_gpu_node(&e, tb_fmt("n%d", i));
	/* Four unhealthy bare pods (never evicted): 4 of 8 is at the threshold, not above. */
	for (int i = 0; i < 4; i++) {
		struct kc_pod *p = tb_pod("ml", tb_fmt("bare-%d", i), tb_fmt("ub%d", i), tb_fmt("n%d", i));

		tb_pod_container(p, "main", GPU, 1);
		tb_status_health(tb_pod_status(p, "main"), GPU, tb_fmt("GPU-b%d", i), KC_HEALTH_UNHEALTHY, "XID 79");
		tb_put_pod(&e, p);
	}
	assert_false(core_stats(e.core)->breaker_open);
	/* A fifth device on n7 flaps ten times, one second apart. */
	for (int i = 0; i < 20; i++) {
		struct kc_pod *p = tb_pod("ml", "flap", "uf", "n7");

		tb_pod_container(p, "main", GPU, 1);
		tb_status_health(tb_pod_status(p, "main"), GPU, "GPU-f", i % 2 ? KC_HEALTH_HEALTHY : KC_HEALTH_UNHEALTHY,
				 "XID 79");
		tb_put_pod(&e, p);
		assert_int_equal(next(&e), -EAGAIN);
		e.now += 1000;
	}
	assert_true(core_stats(e.core)->breaker_open);
	e.now = core_next_wakeup(e.core, e.now);
	assert_int_equal(e.now, 1000 + 19000 + 30000);
	assert_int_equal(next(&e), -EAGAIN);
	assert_false(core_stats(e.core)->breaker_open);
	while (core_next_notice(e.core, &n) == 0) {
		opened += strcmp(n.reason, "CircuitBreakerOpen") == 0;
		closed += strcmp(n.reason, "CircuitBreakerClosed") == 0;
	}
	assert_int_equal(opened, 1);
	assert_int_equal(closed, 1);
	assert_int_equal(core_stats(e.core)->breaker_trips, 1);
	tb_env_done(&e);
}

/*
 * Issue 14 #13: dry-run reports used the real rate-limit budget, so the first
 * real eviction after turning dry run off waited out the window.  Dry run now
 * counts in a ledger of its own.
 */
static void test_dry_run_keeps_real_limits(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("dryRun: true\neviction: {limits: {window: 60s, maxTotal: 2}}\n"), true);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	tb_put_pod(&e, sick_pod("b", "u2", "n2", "GPU-2"));
	tb_put_pod(&e, sick_pod("c", "u3", "n3", "GPU-3"));
	assert_int_equal(next(&e), 0);
	assert_true(act.dry_run);
	assert_int_equal(next(&e), 0);
	assert_int_equal(next(&e), -EAGAIN); /* "would be held": the dry-run ledger is full */
	assert_int_equal(core_next_wakeup(e.core, e.now), 61000);
	e.now += 2000;
	tb_set_policy(&e, tb_policy_yaml("eviction: {limits: {window: 60s, maxTotal: 2}}\n"));
	assert_int_equal(next(&e), 0);
	assert_false(act.dry_run);
	assert_int_equal(next(&e), 0);
	assert_false(act.dry_run);
	assert_int_equal(next(&e), -EAGAIN); /* now the real budget holds */
	assert_int_equal(core_next_wakeup(e.core, e.now), 63000);
	tb_env_done(&e);
}

/*
 * One GPU per node fails, one node every 1.5 s (a bad driver rollout), with
 * the default breaker (above 50% of at least 4 device nodes).  Returns the
 * number of pods evicted before the breaker opened.  drop: the plugin also
 * lowers allocatable 8 -> 7 on each failing node.
 */
static int rolling_failure(const char *policy, bool drop)
{
	struct tb_env e;
	int evicted = 0;

	tb_env_init(&e, tb_policy_yaml(policy), true);
	for (int i = 0; i < 8; i++) {
		put_gpu_node(&e, tb_fmt("n%d", i));
		tb_put_pod(&e, gpu_pod(tb_fmt("p%d", i), tb_fmt("u%d", i), tb_fmt("n%d", i)));
	}
	for (int i = 0; i < 8 && !core_stats(e.core)->breaker_open; i++) {
		if (drop) {
			struct kc_node *n = tb_node(tb_fmt("n%d", i));

			tb_node_resource(n, GPU, 8, 7);
			tb_put_node(&e, n);
		}
		tb_put_pod(&e, sick_pod(tb_fmt("p%d", i), tb_fmt("u%d", i), tb_fmt("n%d", i), tb_fmt("GPU-%d", i)));
		while (next(&e) == 0) {
			core_action_done(e.core, act.uid, CORE_RESULT_EVICTED, 0, e.now);
			tb_del_pod(&e, act.ns, act.name); /* evicted: the pod and its status go away */
			evicted++;
		}
		e.now += 1500;
	}
	assert_true(core_stats(e.core)->breaker_open);
	assert_int_equal(core_stats(e.core)->unhealthy_nodes, 5);
	assert_int_equal(core_stats(e.core)->device_nodes, 8);
	tb_env_done(&e);
	return evicted;
}

/*
 * Issue 14 #1: a node counted as unhealthy only while a pod on it reported the
 * failure, so each eviction erased its own evidence: all 8 pods were evicted
 * and the breaker never opened.  Now the device counts for circuitBreaker.memory
 * after its pod is gone, and an allocatable drop counts whatever
 * signals.allocatableDrop says: the breaker opens at the fifth node.
 */
static void test_breaker_rolling_failure(void **state)
{
	(void)state;
	/* The memory alone (the plugin does not lower allocatable). */
	assert_int_equal(rolling_failure("eviction: {circuitBreaker: {enabled: true}}\n", false), 4);
	/* The allocatable drop alone (no memory). */
	assert_int_equal(rolling_failure("eviction: {circuitBreaker: {enabled: true, memory: 0s}}\n", true), 4);
}

/* After the memory runs out, a remembered device stops counting (and the breaker may close). */
static void test_breaker_memory_expires(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("eviction: {circuitBreaker: {maxUnhealthyNodes: 1, closeAfter: 0s, "
				       "memory: 1m}}\n"),
		    true);
	for (int i = 0; i < 4; i++)
		put_gpu_node(&e, tb_fmt("n%d", i));
	tb_put_pod(&e, sick_pod("a", "u1", "n0", "GPU-1"));
	assert_int_equal(next(&e), 0);
	core_action_done(e.core, "u1", CORE_RESULT_EVICTED, 0, e.now);
	tb_del_pod(&e, "ml", "a");
	e.now = 2000;
	tb_put_pod(&e, sick_pod("b", "u2", "n1", "GPU-2"));
	assert_true(core_stats(e.core)->breaker_open); /* n0 remembered, n1 failing: 2 > 1 */
	assert_int_equal(next(&e), -EAGAIN);
	assert_int_equal(core_next_wakeup(e.core, e.now), 61000);
	e.now = 60999;
	assert_int_equal(next(&e), -EAGAIN);
	e.now = 61000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.name, "b");
	assert_int_equal(core_stats(e.core)->unhealthy_nodes, 1);
	tb_env_done(&e);
}

/*
 * Issue 14 #8: Succeeded and Failed pods are no evidence.  Five Failed pods
 * with a stale Unhealthy status opened the breaker ("5 of 8"), and a real
 * failure was not evicted.  A pod that fails after reporting a device still
 * leaves it remembered: what happens to the pod does not heal the device.
 */
static void test_breaker_terminal_pods(void **state)
{
	struct tb_env e;
	struct kc_pod *p;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("eviction: {circuitBreaker: {enabled: true}}\n"), true);
	for (int i = 0; i < 8; i++)
		put_gpu_node(&e, tb_fmt("n%d", i));
	for (int i = 0; i < 5; i++) {
		p = sick_pod(tb_fmt("old-%d", i), tb_fmt("uo%d", i), tb_fmt("n%d", i), tb_fmt("GPU-o%d", i));
		p->phase = KC_POD_FAILED;
		tb_put_pod(&e, p);
	}
	assert_int_equal(core_stats(e.core)->unhealthy_nodes, 0);
	assert_false(core_stats(e.core)->breaker_open);
	tb_put_pod(&e, sick_pod("real", "ur", "n5", "GPU-r"));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.name, "real");
	core_action_done(e.core, "ur", CORE_RESULT_EVICTED, 0, e.now);
	/* Running and reporting, then Failed: still counted. */
	tb_put_pod(&e, sick_pod("late", "ul", "n6", "GPU-l"));
	assert_int_equal(core_stats(e.core)->unhealthy_nodes, 2);
	p = sick_pod("late", "ul", "n6", "GPU-l");
	p->phase = KC_POD_FAILED;
	tb_put_pod(&e, p);
	assert_int_equal(core_stats(e.core)->unhealthy_nodes, 2);
	tb_env_done(&e);
}

/*
 * Issue 14 #3: on a DRA-only cluster (20 nodes whose ResourceSlices publish
 * GPUs, no device capacity on the Node), 4 tainted devices used to count as
 * "4 of 4 device nodes (100%)": the breaker opened and nothing was evicted.
 */
static void test_breaker_dra_only(void **state)
{
	struct tb_env e;
	int evicted = 0;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("eviction: {circuitBreaker: {enabled: true}}\n"), true);
	/* As the shell starts: the claims are read only once both DRA caches have synced. */
	core_set_dra_synced(e.core, false, e.now);
	for (int i = 0; i < 20; i++) {
		const char *node = tb_fmt("dra-%02d", i);
		struct kc_resource_slice *sl = tb_slice(tb_fmt("%s-gpu", node), "gpu.example.com", node, node);

		tb_put_node(&e, tb_node(node));
		tb_slice_device(sl, "gpu-0", i < 4 ? "gpu.example.com/xid" : NULL, "NoExecute");
		tb_put_slice(&e, sl);
	}
	for (int i = 0; i < 4; i++) {
		const char *node = tb_fmt("dra-%02d", i);
		struct kc_resource_claim *c = tb_claim("ml", tb_fmt("c%d", i), tb_fmt("cu%d", i));
		struct kc_pod *p = tb_pod("ml", tb_fmt("p%d", i), tb_fmt("u%d", i), node);

		tb_pod_owner(p, "ReplicaSet", "rs", true);
		tb_pod_container(p, "main", NULL, 0);
		tb_pod_claim(p, "gpu", tb_fmt("c%d", i));
		tb_claim_result(c, "gpu", "gpu.example.com", node, "gpu-0");
		tb_claim_consumer(c, tb_fmt("p%d", i), tb_fmt("u%d", i));
		tb_put_claim(&e, c);
		tb_put_pod(&e, p);
	}
	assert_int_equal(core_stats(e.core)->unhealthy_nodes, 0);
	assert_int_equal(next(&e), -EAGAIN);
	core_set_dra_synced(e.core, true, e.now);
	assert_int_equal(core_stats(e.core)->device_nodes, 20);
	assert_int_equal(core_stats(e.core)->unhealthy_nodes, 4);
	assert_false(core_stats(e.core)->breaker_open);
	while (next(&e) == 0) {
		assert_string_equal(act.signal, "DRADeviceTaint");
		evicted++;
	}
	assert_int_equal(evicted, 4);
	tb_env_done(&e);
}

static void test_policy_reload_keeps_debounce(void **state)
{
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("signals: {podResourceHealth: {for: 1m}}\n"), true);
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	e.now = 30000;
	tb_set_policy(&e, tb_policy_yaml("signals: {podResourceHealth: {for: 40s}}\n"));
	assert_int_equal(core_next_wakeup(e.core, e.now), 41000);
	tb_set_policy(&e, tb_policy_yaml("signals: {podResourceHealth: {enabled: false}}\n"));
	assert_int_equal(core_next_wakeup(e.core, e.now), UINT64_MAX);
	assert_int_equal(core_stats(e.core)->tracked_pods, 0);
	tb_env_done(&e);
}

/* ---- the real decoder on the shared fixtures ---- */

static void *decode_fixture(struct kc_intern *in, const struct kc_type *t, const char *name)
{
	const char *dir = getenv("FIXTURES") ? getenv("FIXTURES") : "test/fixtures";
	char *path = kc_xasprintf("%s/%s", dir, name);
	struct kc_decode_ctx ctx = {.intern = in, .opts = NULL};
	static const char *const keep[] = {POLICY_OPT_OUT_ANNOTATION, NULL};
	struct kc_decode_opts opts = {.keep_annotations = keep};
	struct kc_error err;
	char *data = NULL;
	size_t len = 0;
	void *obj = NULL;

	ctx.opts = &opts;
	assert_int_equal(kc_read_file(path, 1 << 20, &data, &len), 0);
	if (kc_decode_object(t, &ctx, data, len, &obj, &err) != 0)
		fail_msg("%s: %s", path, err.msg);
	free(data);
	free(path);
	return obj;
}

static void put_obj(struct tb_env *e, struct kc_store *s, void *obj)
{
	void *old = NULL;

	kc_store_put(s, obj, &old);
	if (s == e->pods)
		core_pod_changed(e->core, old ? 2 : 1, obj, old, e->now);
	else if (s == e->nodes)
		core_node_changed(e->core, old ? 2 : 1, obj, old, e->now);
	else if (s == e->claims)
		core_claim_changed(e->core, old ? 2 : 1, obj, old, e->now);
	else
		core_slice_changed(e->core, old ? 2 : 1, obj, old, e->now);
	free(old);
}

static void test_fixtures_device_plugin(void **state)
{
	struct kc_intern *in = kc_intern_new();
	struct tb_env e;

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	put_obj(&e, e.nodes, decode_fixture(in, &kc_type_node, "node-gpu-degraded.json"));
	put_obj(&e, e.pods, decode_fixture(in, &kc_type_pod, "pod-device-plugin-unhealthy.json"));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.ns, "ml");
	assert_string_equal(act.name, "trainer-7d9f8c6b5-x2k4q");
	assert_string_equal(act.uid, "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f");
	assert_string_equal(act.node, "gpu-node-17");
	assert_string_equal(act.signal, "PodResourceHealth");
	assert_string_equal(
	    act.message, "Evicting pod ml/trainer-7d9f8c6b5-x2k4q: nvidia.com/gpu device "
			 "GPU-7540a9b3-6f5e-4d3c-b2a1-0f9e8d7c6b5a is Unhealthy (signal PodResourceHealth: "
			 "XID 79: GPU has fallen off the bus)");
	assert_int_equal(next(&e), -EAGAIN);
	tb_env_done(&e);

	/* The node condition alone, naming the device in its message. */
	tb_env_init(
	    &e,
	    tb_policy_yaml(
		"signals:\n  podResourceHealth: {enabled: false}\n  nodeConditions:\n"
		"    - {type: GPUXIDErrors, status: \"True\", deviceIDPattern: \"GPU-[0-9a-f-]+\"}\n"),
	    true);
	put_obj(&e, e.pods, decode_fixture(in, &kc_type_pod, "pod-device-plugin-unhealthy.json"));
	put_obj(&e, e.nodes, decode_fixture(in, &kc_type_node, "node-gpu-degraded.json"));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.signal, "NodeCondition");
	assert_string_equal(act.device, "GPU-7540a9b3-6f5e-4d3c-b2a1-0f9e8d7c6b5a");
	tb_env_done(&e);

	/* AllocatableDrop (8 -> 7) after its 5-minute debounce. */
	tb_env_init(&e,
		    tb_policy_yaml(
			"signals: {podResourceHealth: {enabled: false}, allocatableDrop: {enabled: true}}\n"),
		    true);
	put_obj(&e, e.nodes, decode_fixture(in, &kc_type_node, "node-gpu-degraded.json"));
	put_obj(&e, e.pods, decode_fixture(in, &kc_type_pod, "pod-device-plugin-unhealthy.json"));
	assert_int_equal(core_next_wakeup(e.core, e.now), e.now + 300000);
	e.now += 300000;
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.signal, "AllocatableDrop");
	tb_env_done(&e);
	kc_intern_free(in);
}

static void test_fixtures_dra(void **state)
{
	struct kc_intern *in = kc_intern_new();
	struct tb_env e;

	(void)state;
	/* The claim's device condition Ready=False (the default DRA condition). */
	tb_env_init(&e, tb_policy_yaml("signals: {podResourceHealth: {enabled: false}}\n"), true);
	put_obj(&e, e.pods, decode_fixture(in, &kc_type_pod, "pod-dra-unhealthy.json"));
	assert_int_equal(next(&e), -EAGAIN);
	put_obj(&e, e.slices, decode_fixture(in, &kc_type_resource_slice, "resourceslice-v1-tainted.json"));
	assert_int_equal(next(&e), -EAGAIN); /* NoSchedule is not listed by default */
	put_obj(&e, e.claims, decode_fixture(in, &kc_type_resource_claim, "resourceclaim-allocated.json"));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.uid, "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a");
	assert_string_equal(act.signal, "DRADeviceCondition");
	assert_string_equal(act.resource, "claim:gpu/gpu");
	assert_string_equal(act.device, "gpu.example.com/gpu-node-03/gpu-1");
	assert_string_equal(act.message,
			    "Evicting pod serving/inference-0: claim:gpu/gpu device "
			    "gpu.example.com/gpu-node-03/gpu-1 is unhealthy (signal DRADeviceCondition: "
			    "Ready=False: XID 79)");
	tb_env_done(&e);

	/* The slice's taint once NoSchedule is listed; the slice arrives last. */
	tb_env_init(
	    &e,
	    tb_policy_yaml(
		"signals:\n  podResourceHealth: {enabled: false}\n  draDeviceConditions: {enabled: false}\n"
		"  draDeviceTaints: {effects: [NoSchedule]}\n"),
	    true);
	put_obj(&e, e.pods, decode_fixture(in, &kc_type_pod, "pod-dra-unhealthy.json"));
	put_obj(&e, e.claims, decode_fixture(in, &kc_type_resource_claim, "resourceclaim-allocated.json"));
	assert_int_equal(next(&e), -EAGAIN);
	put_obj(&e, e.slices, decode_fixture(in, &kc_type_resource_slice, "resourceslice-v1-tainted.json"));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.signal, "DRADeviceTaint");
	assert_string_equal(act.message,
			    "Evicting pod serving/inference-0: claim:gpu/gpu device "
			    "gpu.example.com/gpu-node-03/gpu-1 is tainted (signal DRADeviceTaint: taint "
			    "gpu.example.com/xid=79:NoSchedule)");
	tb_env_done(&e);

	/* The pod's own allocatedResourcesStatus for its claim. */
	tb_env_init(&e, tb_policy(), true);
	put_obj(&e, e.pods, decode_fixture(in, &kc_type_pod, "pod-dra-unhealthy.json"));
	assert_int_equal(next(&e), 0);
	assert_string_equal(act.signal, "PodResourceHealth");
	assert_string_equal(act.resource, "claim:gpu/gpu");
	assert_string_equal(act.device, "gpu.example.com/gpu-node-03/gpu-1");
	tb_env_done(&e);
	kc_intern_free(in);
}

/*
 * 150,000 pods on 2,000 nodes: per-pod state only for the unhealthy ones.  How
 * long a node event takes at this scale is measured by `make bench`, not here.
 */
static void test_scale(void **state)
{
	struct tb_env e;
	struct kc_node *n;
	int evicted = 0;

	(void)state;
	tb_env_init(&e,
		    tb_policy_yaml("signals:\n  nodeConditions:\n    - {type: GPUBad, status: \"True\"}\n"
				   "eviction: {limits: {maxTotal: 0, maxInFlight: 0}}\n"),
		    false);
	for (int i = 0; i < 2000; i++)
		put_gpu_node(&e, tb_fmt("node-%d", i));
	for (int i = 0; i < 150000; i++) {
		const char *name = tb_fmt("pod-%d", i);
		const char *uid = tb_fmt("uid-%d", i);
		const char *node = tb_fmt("node-%d", i % 2000);

		tb_put_pod(&e, i % 500 == 0 ? sick_pod(name, uid, node, "GPU-x") : gpu_pod(name, uid, node));
	}
	core_set_synced(e.core, true, e.now);
	assert_int_equal(core_stats(e.core)->tracked_pods, 300);
	n = tb_node_clone(kc_store_get(e.nodes, "", "node-7"));
	tb_node_condition(n, "GPUBad", KC_COND_TRUE, "");
	tb_put_node(&e, n);
	assert_int_equal(core_stats(e.core)->tracked_pods, 300 + 75);
	while (next(&e) == 0) {
		core_action_done(e.core, act.uid, CORE_RESULT_EVICTED, 0, e.now);
		evicted++;
	}
	assert_int_equal(evicted, 375);
	tb_env_done(&e);
}

/* core_pod_view follows a pod through its states: waiting, due, in flight, done; nothing before sync. */
static void test_pod_view(void **state)
{
	struct tb_env e;
	struct core_pod_view v;

	(void)state;
	tb_env_init(&e, tb_policy_yaml("signals: {podResourceHealth: {for: 30s}}\n"), false);
	put_gpu_node(&e, "n1");
	tb_put_pod(&e, gpu_pod("ok", "u0", "n1"));
	tb_put_pod(&e, sick_pod("a", "u1", "n1", "GPU-1"));
	core_pod_view(e.core, "u0", e.now, &v);
	assert_int_equal(v.decision, CORE_DECISION_HEALTHY);
	assert_int_equal(v.n_hits, 0);
	core_pod_view(e.core, "u1", e.now, &v);
	assert_int_equal(v.decision, CORE_DECISION_NOT_ACTIVE);
	core_set_synced(e.core, true, e.now);
	core_pod_view(e.core, "u1", e.now, &v);
	assert_int_equal(v.decision, CORE_DECISION_WAITING);
	assert_int_equal(v.due_ms, e.now + 30000);
	assert_false(v.retry);
	assert_int_equal(v.n_hits, 1);
	assert_string_equal(v.hits[0].device, "GPU-1");
	e.now += 30000;
	core_pod_view(e.core, "u1", e.now, &v);
	assert_int_equal(v.decision, CORE_DECISION_DUE);
	assert_int_equal(next(&e), 0);
	core_pod_view(e.core, "u1", e.now, &v);
	assert_int_equal(v.decision, CORE_DECISION_IN_FLIGHT);
	core_action_done(e.core, "u1", CORE_RESULT_BLOCKED, 0, e.now);
	core_pod_view(e.core, "u1", e.now, &v);
	assert_int_equal(v.decision, CORE_DECISION_WAITING);
	assert_true(v.retry);
	e.now = v.due_ms;
	assert_int_equal(next(&e), 0);
	core_action_done(e.core, "u1", CORE_RESULT_EVICTED, 0, e.now);
	core_pod_view(e.core, "u1", e.now, &v);
	assert_int_equal(v.decision, CORE_DECISION_DONE);
	assert_false(v.dry_run);
	tb_env_done(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pod_resource_health),
	    cmocka_unit_test(test_pod_view),
	    cmocka_unit_test(test_not_before_sync_nor_inactive),
	    cmocka_unit_test(test_debounce),
	    cmocka_unit_test(test_unknown_disabled_by_default),
	    cmocka_unit_test(test_node_condition),
	    cmocka_unit_test(test_node_condition_device_pattern),
	    cmocka_unit_test(test_allocatable_drop),
	    cmocka_unit_test(test_exit_code),
	    cmocka_unit_test(test_exit_code_clears_when_ready),
	    cmocka_unit_test(test_exit_code_dra_claim),
	    cmocka_unit_test(test_dra_taint),
	    cmocka_unit_test(test_dra_tolerations_and_rules),
	    cmocka_unit_test(test_dra_condition),
	    cmocka_unit_test(test_dra_pod_resource_health),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_bare_pod_notice),
	    cmocka_unit_test(test_standby_is_quiet),
	    cmocka_unit_test(test_idempotence),
	    cmocka_unit_test(test_retry_backoff_delete_after),
	    cmocka_unit_test(test_conflict_retried_unless_gone),
	    cmocka_unit_test(test_blocked_then_recovered),
	    cmocka_unit_test(test_dry_run),
	    cmocka_unit_test(test_limit_per_node),
	    cmocka_unit_test(test_limit_per_namespace_total_in_flight),
	    cmocka_unit_test(test_breaker),
	    cmocka_unit_test(test_breaker_hysteresis),
	    cmocka_unit_test(test_dry_run_keeps_real_limits),
	    cmocka_unit_test(test_breaker_rolling_failure),
	    cmocka_unit_test(test_breaker_memory_expires),
	    cmocka_unit_test(test_breaker_terminal_pods),
	    cmocka_unit_test(test_breaker_dra_only),
	    cmocka_unit_test(test_policy_reload_keeps_debounce),
	    cmocka_unit_test(test_fixtures_device_plugin),
	    cmocka_unit_test(test_fixtures_dra),
	    cmocka_unit_test(test_scale),
	};

	kc_log_setup(getenv("CORE_TEST_V") ? atoi(getenv("CORE_TEST_V")) : -1, KC_LOG_TEXT, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
