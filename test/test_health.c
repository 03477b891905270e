/*
 * Unit tests of health: signal names, node state (conditions, device-ID
 * patterns, allocatable drops, first-seen times, breaker counts), the DRA
 * taint index, generations, and pod evaluation details.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core_builders.h"
#include "health.h"
#include "kc_util.h"

#define GPU "nvidia.com/gpu"

static void test_signal_names(void **state)
{
	(void)state;
	assert_int_equal(strcmp(health_signal_name(HEALTH_DRA_TAINT), "DRADeviceTaint"), 0);
	assert_string_equal(health_signal_name(HEALTH_SIGNAL_COUNT), "Unknown");
}

static size_t eval(struct health *h, const struct policy *p, const struct kc_pod *pod, uint64_t now,
		   struct health_hit **hits)
{
	return health_pod_eval(h, p, pod, NULL, NULL, 0, now, hits);
}

static void test_node_state(void **state)
{
	struct policy *p = tb_policy_yaml(
	    "signals:\n  nodeConditions:\n"
	    "    - {type: XID, status: \"True\", for: 10s, deviceIDPattern: \"pci=([0-9a-f:.]+)\"}\n"
	    "    - {type: Ready, status: \"False\", resources: [amd.com/gpu]}\n"
	    "  allocatableDrop: {enabled: true, resources: [nvidia.com/gpu]}\n");
	struct health *h = health_new();
	struct kc_node *n = tb_node("n1");
	struct kc_pod *pod = tb_gpu_pod("ns", "a", "u", "n1", GPU, 1);
	struct health_hit *hits;
	uint32_t dev, unh;
	size_t k;

	(void)state;
	tb_node_resource(n, GPU, 8, 8);
	tb_node_resource(n, "amd.com/gpu", 2, 1); /* not listed for allocatableDrop */
	assert_false(health_node_update(h, p, n, 0));
	health_breaker_counts(h, &dev, &unh);
	assert_int_equal(dev, 1);
	assert_int_equal(unh, 0);

	tb_status_health(tb_pod_status(pod, "main"), GPU, "0000:3b:00.0", KC_HEALTH_HEALTHY, "");
	tb_node_condition(n, "XID", KC_COND_TRUE, "xid 79 pci=0000:3b:00.0 and pci=0000:5e:00.0");
	tb_node_condition(n, "Ready", KC_COND_TRUE, ""); /* status does not match */
	assert_true(health_node_update(h, p, n, 1000));
	assert_false(health_node_update(h, p, n, 5000)); /* nothing changed; first seen stays 1000 */
	k = eval(h, p, pod, 6000, &hits);
	assert_int_equal(k, 1);
	assert_int_equal(hits[0].signal, HEALTH_NODE_CONDITION);
	assert_string_equal(hits[0].device, "0000:3b:00.0");
	assert_int_equal(hits[0].first_seen_ms, 1000);
	assert_int_equal(health_hit_due(&hits[0]), 11000);
	health_hits_free(hits, k);
	health_breaker_counts(h, &dev, &unh);
	assert_int_equal(unh, 1);

	/* Another device: the pattern does not name it. */
	pod->statuses[0].resources[0].devices[0].resource_id = "0000:af:00.0";
	assert_int_equal(eval(h, p, pod, 6000, &hits), 0);
	assert_null(hits);

	/* Allocatable drop on the listed resource only. */
	tb_node_resource(n, GPU, 8, 6);
	assert_true(health_node_update(h, p, n, 7000));
	k = eval(h, p, pod, 7000, &hits);
	assert_int_equal(k, 1);
	assert_int_equal(hits[0].signal, HEALTH_ALLOC_DROP);
	assert_string_equal(hits[0].detail, "node n1 allocatable 6 < capacity 8");
	health_hits_free(hits, k);

	/* Generations: a node not updated since begin loses its signals. */
	health_begin_generation(h);
	health_sweep(h);
	health_breaker_counts(h, &dev, &unh);
	assert_int_equal(dev, 0);
	assert_int_equal(unh, 0);

	/* Pod hits keep a node counted after it is removed. */
	health_node_update(h, p, n, 8000);
	health_node_pod_hits(h, "n1", +1);
	health_node_pod_hits(h, "n9", +1);
	health_breaker_counts(h, &dev, &unh);
	assert_int_equal(dev, 2);
	assert_int_equal(unh, 2);
	assert_true(health_node_remove(h, "n1"));
	health_breaker_counts(h, &dev, &unh);
	assert_int_equal(dev, 2);
	assert_int_equal(unh, 2);
	health_node_pod_hits(h, "n1", -1);
	health_node_pod_hits(h, "n9", -1);
	health_breaker_counts(h, &dev, &unh);
	assert_int_equal(dev, 0);
	assert_int_equal(unh, 0);

	free(n);
	free(pod);
	health_free(h);
	policy_free(p);
	tb_reset();
}

static void test_taint_index(void **state)
{
	struct policy *p = tb_policy_yaml("signals: {draDeviceTaints: {effects: [NoExecute, NoSchedule]}}\n");
	struct health *h = health_new();
	struct kc_resource_slice *s1 = tb_slice("s1", "drv", "pool", "n1");
	struct kc_resource_slice *s2 = tb_slice("s1", "drv", "pool", "n1");
	struct kc_resource_slice *other = tb_slice("s2", "drv", "pool", "n1");

	(void)state;
	tb_slice_device(s1, "d0", "k", "NoExecute");
	tb_slice_device(s1, "d1", "k", "PreferNoSchedule");
	assert_true(health_slice_update(h, p, s1, NULL, 0));
	assert_true(health_device_tainted(h, "drv", "pool", "d0"));
	assert_false(health_device_tainted(h, "drv", "pool", "d1"));
	assert_false(health_slice_update(h, p, s1, s1, 10)); /* unchanged */
	tb_slice_device(s2, "d0", NULL, NULL);
	tb_slice_device(s2, "d1", "k", "NoSchedule");
	assert_true(health_slice_update(h, p, s2, s1, 20));
	assert_false(health_device_tainted(h, "drv", "pool", "d0"));
	assert_true(health_device_tainted(h, "drv", "pool", "d1"));
	/* Another slice reporting the same device: deleting the first keeps the taint of the second. */
	tb_slice_device(other, "d1", "k2", "NoExecute");
	assert_true(health_slice_update(h, p, other, NULL, 30));
	assert_false(health_slice_update(h, p, NULL, s2, 40));
	assert_true(health_device_tainted(h, "drv", "pool", "d1"));
	assert_true(health_slice_update(h, p, NULL, other, 50));
	assert_false(health_device_tainted(h, "drv", "pool", "d1"));
	/* dra: false ignores taints. */
	p->dra = false;
	assert_false(health_slice_update(h, p, s1, NULL, 60));
	free(s1);
	free(s2);
	free(other);
	health_free(h);
	policy_free(p);
	tb_reset();
}

static void test_pod_eval(void **state)
{
	struct policy *p = tb_policy_yaml("devices: {excludeResources: [example.com/fpga]}\n"
					  "signals: {podResourceHealth: {for: 5s}}\n");
	struct health *h = health_new();
	struct kc_pod *pod = tb_gpu_pod("ns", "a", "u", "n1", GPU, 2);
	struct health_hit *hits, *again;
	size_t k, k2;

	(void)state;
	tb_pod_container(pod, "side", GPU, 1);
	tb_status_health(tb_pod_status(pod, "main"), GPU, "GPU-1", KC_HEALTH_UNHEALTHY, "");
	tb_status_health(tb_pod_status(pod, "side"), GPU, "GPU-1", KC_HEALTH_UNHEALTHY, "dup");
	tb_status_health(tb_pod_status(pod, "main"), GPU, "GPU-2", KC_HEALTH_HEALTHY, "");
	tb_status_health(tb_pod_status(pod, "main"), "example.com/fpga", "F-1", KC_HEALTH_UNHEALTHY, "");
	assert_true(health_pod_holds_device(p, pod));
	k = eval(h, p, pod, 100, &hits);
	assert_int_equal(k, 1); /* the same device once; excluded resources ignored */
	assert_string_equal(hits[0].detail, "reported Unhealthy");
	assert_int_equal(hits[0].first_seen_ms, 100);
	/* Carried over from the previous evaluation. */
	k2 = health_pod_eval(h, p, pod, NULL, hits, k, 900, &again);
	assert_int_equal(k2, 1);
	assert_int_equal(again[0].first_seen_ms, 100);
	assert_int_equal(health_hit_due(&again[0]), 5100);
	health_hits_free(hits, k);
	health_hits_free(again, k2);

	/* A claim-only pod holds a device only with dra. */
	free(pod);
	pod = tb_pod("ns", "b", "u2", "n1");
	tb_pod_container(pod, "main", NULL, 0);
	tb_pod_claim(pod, "gpu", "b-gpu");
	assert_true(health_pod_holds_device(p, pod));
	p->dra = false;
	assert_false(health_pod_holds_device(p, pod));
	free(pod);
	health_free(h);
	policy_free(p);
	tb_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signal_names),
	    cmocka_unit_test(test_node_state),
	    cmocka_unit_test(test_taint_index),
	    cmocka_unit_test(test_pod_eval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
