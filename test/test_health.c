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
	health_breaker_counts(h, 0, &dev, &unh);
	assert_int_equal(dev, 1);
	assert_int_equal(unh, 1); /* the breaker counts any device short of capacity */

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
	health_breaker_counts(h, 6000, &dev, &unh);
	assert_int_equal(unh, 1);

	/* Another device: the pattern does not name it. */
	kc_devid_set(&pod->statuses[0].resources[0].ids[0], "0000:af:00.0");
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
	health_breaker_counts(h, 7000, &dev, &unh);
	assert_int_equal(dev, 0);
	assert_int_equal(unh, 0);

	/* Devices pods report keep a node counted after it is removed, and after the pods go. */
	health_node_update(h, p, n, 8000);
	health_evidence_add(h, "n1", GPU, "GPU-1");
	health_evidence_add(h, "n9", GPU, "GPU-9");
	health_breaker_counts(h, 8000, &dev, &unh);
	assert_int_equal(dev, 2);
	assert_int_equal(unh, 2);
	assert_true(health_node_remove(h, "n1"));
	health_breaker_counts(h, 8000, &dev, &unh);
	assert_int_equal(dev, 2);
	assert_int_equal(unh, 2);
	health_evidence_drop(h, "n1", GPU, "GPU-1", true, 9000, 600000);  /* seen to recover */
	health_evidence_drop(h, "n9", GPU, "GPU-9", false, 9000, 600000); /* its pod went away */
	health_breaker_counts(h, 9000, &dev, &unh);
	assert_int_equal(dev, 1);
	assert_int_equal(unh, 1);
	assert_int_equal(health_breaker_wake(h), 609000);
	health_breaker_counts(h, 608999, &dev, &unh);
	assert_int_equal(unh, 1);
	health_breaker_counts(h, 609000, &dev, &unh);
	assert_int_equal(dev, 0);
	assert_int_equal(unh, 0);
	assert_int_equal(health_breaker_wake(h), UINT64_MAX);

	free(n);
	free(pod);
	health_free(h);
	policy_free(p);
	tb_reset();
}

/* One pod per device nvidia0..nvidia15 on node n1, each with its device in allocatedResourcesStatus. */
static void gpu_pods(struct kc_pod **pods, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pods[i] = tb_gpu_pod("ns", tb_fmt("p%zu", i), tb_fmt("u%zu", i), "n1", GPU, 1);
		tb_status_health(tb_pod_status(pods[i], "main"), GPU, tb_fmt("nvidia%zu", i), KC_HEALTH_HEALTHY,
				 "");
	}
}

/* Issue 14 #2: an extracted ID names one device, compared whole; nvidia1 is not nvidia10..15. */
static void test_device_id_exact(void **state)
{
	struct policy *p = tb_policy_yaml("signals:\n  nodeConditions:\n"
					  "    - {type: GPUXIDErrors, deviceIDPattern: \"nvidia[0-9]+\"}\n");
	struct health *h = health_new();
	struct kc_node *n = tb_node("n1");
	struct kc_pod *pods[16];
	struct health_hit *hits;
	size_t hit_pods = 0;

	(void)state;
	gpu_pods(pods, 16);
	tb_node_resource(n, GPU, 16, 16);
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79 on nvidia1");
	assert_true(health_node_update(h, p, n, 0));
	for (size_t i = 0; i < 16; i++) {
		size_t k = eval(h, p, pods[i], 0, &hits);

		if (k) {
			assert_int_equal(k, 1);
			assert_string_equal(hits[0].device, "nvidia1");
			hit_pods++;
		}
		health_hits_free(hits, k);
		free(pods[i]);
	}
	assert_int_equal(hit_pods, 1);
	free(n);
	health_free(h);
	policy_free(p);
	tb_reset();
}

/* UUID-shaped device IDs (packed in the pod, kc_devid.h) match a node condition's IDs exactly, as text did:
 * not in another case, not as a time-sliced replica; the hit names the device by its text. */
static void test_device_id_uuid(void **state)
{
	static const char *const ids[] = {
		"GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0", "GPU-5B2D6B8B-2AD5-B5F7-D3FF-FFA5B24FDAD0",
		"GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0::3", "GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad1",
		"MIG-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0",
	};
	struct policy *p = tb_policy_yaml("signals:\n  nodeConditions:\n"
					  "    - {type: GPUXIDErrors, deviceIDPattern: \"GPU-[0-9a-fA-F-]+\"}\n");
	struct health *h = health_new();
	struct kc_node *n = tb_node("n1");
	struct health_hit *hits;

	(void)state;
	tb_node_resource(n, GPU, 8, 8);
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79 on GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0");
	assert_true(health_node_update(h, p, n, 0));
	for (size_t i = 0; i < KC_ARRAY_SIZE(ids); i++) {
		struct kc_pod *pod = tb_gpu_pod("ns", tb_fmt("p%zu", i), tb_fmt("u%zu", i), "n1", GPU, 1);
		size_t k;

		tb_status_health(tb_pod_status(pod, "main"), GPU, ids[i], KC_HEALTH_HEALTHY, "");
		assert_int_equal(kc_devid_kind(&pod->statuses[0].resources[0].ids[0]),
				 i == 0 || i == 3 ? KC_DEVID_GPU : i == 4 ? KC_DEVID_MIG : KC_DEVID_TEXT);
		k = eval(h, p, pod, 0, &hits);
		assert_int_equal(k, i == 0);
		if (k)
			assert_string_equal(hits[0].device, ids[0]);
		health_hits_free(hits, k);
		/* A packed ID reported Unhealthy by the kubelet: the hit names it by its text. */
		tb_status_health(tb_pod_status(pod, "main"), GPU, ids[i], KC_HEALTH_UNHEALTHY, "XID 79");
		k = eval(h, p, pod, 0, &hits);
		assert_int_equal(k, 1 + (i == 0));
		for (size_t j = 0; j < k; j++)
			assert_string_equal(hits[j].device, ids[i]);
		health_hits_free(hits, k);
		free(pod);
	}
	free(n);
	health_free(h);
	policy_free(p);
	tb_reset();
}

/* Issue 14 #5: a message the pattern finds no ID in means the whole node, for the listed resources. */
static void test_device_id_none_means_node(void **state)
{
	struct policy *p = tb_policy_yaml("signals:\n  nodeConditions:\n"
					  "    - {type: GPUXIDErrors, resources: [nvidia.com/gpu],"
					  " deviceIDPattern: \"nvidia[0-9]+\"}\n");
	struct health *h = health_new();
	struct kc_node *n = tb_node("n1");
	struct kc_pod *pods[8];
	struct kc_pod *amd = tb_gpu_pod("ns", "amd", "ua", "n1", "amd.com/gpu", 1);
	struct health_hit *hits;
	size_t k;

	(void)state;
	gpu_pods(pods, 8);
	tb_node_resource(n, GPU, 8, 8);
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "a GPU fell off the bus");
	assert_true(health_node_update(h, p, n, 0));
	for (size_t i = 0; i < 8; i++) {
		k = eval(h, p, pods[i], 0, &hits);
		assert_int_equal(k, 1);
		assert_int_equal(hits[0].signal, HEALTH_NODE_CONDITION);
		assert_string_equal(hits[0].resource, GPU);
		assert_string_equal(hits[0].device, "");
		health_hits_free(hits, k);
		free(pods[i]);
	}
	/* Not a listed resource. */
	assert_int_equal(eval(h, p, amd, 0, &hits), 0);
	free(amd);
	free(n);
	health_free(h);
	policy_free(p);
	tb_reset();
}

/* Issue 14 #6: each device ID the message names gets its own first-seen time, so its own debounce. */
static void test_device_id_debounce(void **state)
{
	struct policy *p = tb_policy_yaml("signals:\n  nodeConditions:\n"
					  "    - {type: GPUXIDErrors, for: 3s, deviceIDPattern: \"nvidia[0-9]+\"}\n");
	struct health *h = health_new();
	struct kc_node *n = tb_node("n1"), *later;
	struct kc_pod *pods[2];
	struct health_hit *hits;
	size_t k;

	(void)state;
	gpu_pods(pods, 2);
	tb_node_resource(n, GPU, 2, 2);
	later = tb_node_clone(n);
	tb_node_condition(n, "GPUXIDErrors", KC_COND_TRUE, "XID 79 on nvidia0");
	assert_true(health_node_update(h, p, n, 1000));
	assert_int_equal(eval(h, p, pods[1], 1000, &hits), 0);
	/* 5 s later the message also names nvidia1: its debounce starts now, nvidia0's stays. */
	tb_node_condition(later, "GPUXIDErrors", KC_COND_TRUE, "XID 79 on nvidia0; XID 48 on nvidia1");
	assert_true(health_node_update(h, p, later, 6000));
	k = eval(h, p, pods[1], 6006, &hits);
	assert_int_equal(k, 1);
	assert_int_equal(hits[0].first_seen_ms, 6000);
	assert_int_equal(health_hit_due(&hits[0]), 9000);
	health_hits_free(hits, k);
	k = eval(h, p, pods[0], 6006, &hits);
	assert_int_equal(k, 1);
	assert_int_equal(hits[0].first_seen_ms, 1000);
	health_hits_free(hits, k);
	/* Unchanged message: both keep their times. */
	assert_false(health_node_update(h, p, later, 7000));
	k = eval(h, p, pods[1], 7000, &hits);
	assert_int_equal(hits[0].first_seen_ms, 6000);
	health_hits_free(hits, k);
	free(pods[0]);
	free(pods[1]);
	free(n);
	free(later);
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

static void counts(struct health *h, uint64_t now, uint32_t want_dev, uint32_t want_unh)
{
	uint32_t dev, unh;

	health_breaker_counts(h, now, &dev, &unh);
	assert_int_equal(dev, want_dev);
	assert_int_equal(unh, want_unh);
}

/*
 * Issue 14 #9: a node condition counts for the breaker only where the node
 * holds one of the condition's resources.  KernelDeadlock on CPU-only nodes
 * used to open the breaker ("9 of 17 device nodes").
 */
static void test_breaker_condition_scope(void **state)
{
	struct policy *p = tb_policy_yaml("signals:\n  nodeConditions:\n"
					  "    - {type: KernelDeadlock, status: \"True\", resources: [nvidia.com/gpu]}\n"
					  "    - {type: Wedged, status: \"True\"}\n"
					  "    - {type: DriverDown, status: \"True\", resources: [claim:gpu]}\n");
	struct health *h = health_new();
	struct kc_node *cpu = tb_node("cpu-1"), *gpu = tb_node("gpu-1"), *amd = tb_node("amd-1");
	struct kc_node *dra = tb_node("dra-1");
	struct kc_resource_slice *sl = tb_slice("dra-1-slice", "gpu.example.com", "dra-1", "dra-1");

	(void)state;
	tb_node_resource(gpu, GPU, 8, 8);
	tb_node_resource(amd, "amd.com/gpu", 4, 4);
	tb_node_condition(cpu, "KernelDeadlock", KC_COND_TRUE, "");
	tb_node_condition(cpu, "Wedged", KC_COND_TRUE, "");
	health_node_update(h, p, cpu, 0);
	counts(h, 0, 0, 0); /* a CPU-only node is no device node, and no unhealthy one */
	tb_node_condition(amd, "KernelDeadlock", KC_COND_TRUE, "");
	health_node_update(h, p, amd, 0);
	counts(h, 0, 1, 0); /* it holds no nvidia.com/gpu */
	tb_node_condition(amd, "Wedged", KC_COND_TRUE, "");
	health_node_update(h, p, amd, 0);
	counts(h, 0, 1, 1); /* no resources listed: any device resource */
	tb_node_condition(gpu, "KernelDeadlock", KC_COND_TRUE, "");
	health_node_update(h, p, gpu, 0);
	counts(h, 0, 2, 2);
	/* A claim resource: where the node's ResourceSlices publish devices. */
	tb_node_condition(dra, "DriverDown", KC_COND_TRUE, "");
	health_node_update(h, p, dra, 0);
	counts(h, 0, 2, 2);
	tb_slice_device(sl, "gpu-0", NULL, NULL);
	health_slice_update(h, p, sl, NULL, 0);
	counts(h, 0, 3, 3);
	health_slice_update(h, p, NULL, sl, 0);
	counts(h, 0, 2, 2);
	free(cpu);
	free(gpu);
	free(amd);
	free(dra);
	free(sl);
	health_free(h);
	policy_free(p);
	tb_reset();
}

/*
 * Issue 14 #3: a node whose ResourceSlices publish devices is a device node;
 * only node capacity used to count, so the breaker tripped at once on DRA-only
 * clusters ("4 of 4 device nodes").
 */
static void test_breaker_dra_nodes(void **state)
{
	struct policy *p = tb_policy();
	struct policy *nodra = tb_policy_yaml("devices: {dra: false}\n");
	struct health *h = health_new();
	struct kc_resource_slice *s[3];

	(void)state;
	for (int i = 0; i < 3; i++) {
		s[i] = tb_slice(tb_fmt("slice-%d", i), "gpu.example.com", tb_fmt("node-%d", i), tb_fmt("node-%d", i));
		tb_slice_device(s[i], "gpu-0", NULL, NULL);
		tb_slice_device(s[i], "gpu-1", NULL, NULL);
		health_slice_update(h, p, s[i], NULL, 0);
	}
	counts(h, 0, 3, 0);
	/* A second slice on node-0, then the first one goes: node-0 still publishes devices. */
	{
		struct kc_resource_slice *x = tb_slice("slice-x", "other.example.com", "node-0", "node-0");

		tb_slice_device(x, "nic-0", NULL, NULL);
		health_slice_update(h, p, x, NULL, 0);
		health_slice_update(h, p, NULL, s[0], 0);
		counts(h, 0, 3, 0);
		health_slice_update(h, p, NULL, x, 0);
		counts(h, 0, 2, 0);
		free(x);
	}
	/* A pod-reported device on a DRA node: 1 of 2. */
	health_evidence_add(h, "node-1", "claim:gpu/gpu", "gpu.example.com/node-1/gpu-0");
	counts(h, 0, 2, 1);
	health_evidence_drop(h, "node-1", "claim:gpu/gpu", "gpu.example.com/node-1/gpu-0", true, 0, 600000);
	/* A full re-evaluation under devices.dra: false forgets the slices' devices. */
	health_begin_generation(h);
	for (int i = 1; i < 3; i++)
		health_slice_update(h, nodra, s[i], NULL, 0);
	health_sweep(h);
	counts(h, 0, 0, 0);
	/* And a slice no longer seen in a re-evaluation is forgotten. */
	health_begin_generation(h);
	health_slice_update(h, p, s[1], NULL, 0);
	counts(h, 0, 1, 0);
	health_begin_generation(h);
	health_sweep(h);
	counts(h, 0, 0, 0);
	for (int i = 0; i < 3; i++)
		free(s[i]);
	health_free(h);
	policy_free(p);
	policy_free(nodra);
	tb_reset();
}

/* Issue 14 #1: an unrecovered allocatable drop is evidence, whatever allocatableDrop says. */
static void test_breaker_allocatable_drop(void **state)
{
	struct policy *p = tb_policy();
	struct health *h = health_new();
	struct kc_node *n = tb_node("n1");

	(void)state;
	assert_false(p->alloc_drop_enabled);
	tb_node_resource(n, GPU, 8, 8);
	health_node_update(h, p, n, 0);
	counts(h, 0, 1, 0);
	tb_node_resource(n, GPU, 8, 7);
	assert_false(health_node_update(h, p, n, 1000)); /* no signal for pods: the switch is off */
	counts(h, 1000, 1, 1);
	tb_node_resource(n, GPU, 8, 8);
	health_node_update(h, p, n, 2000);
	counts(h, 2000, 1, 0);
	free(n);
	health_free(h);
	policy_free(p);
	tb_reset();
}

/*
 * The memory of pod-reported devices: a device counts until a pod sees it
 * recover, or for `memory` after the last pod that reported it went away.
 */
static void test_breaker_memory(void **state)
{
	struct health *h = health_new();

	(void)state;
	/* Two pods report GPU-1; one goes away, the other is still there: it counts. */
	health_evidence_add(h, "n1", GPU, "GPU-1");
	health_evidence_add(h, "n1", GPU, "GPU-1");
	health_evidence_drop(h, "n1", GPU, "GPU-1", false, 1000, 60000);
	counts(h, 1000, 1, 1);
	/* The second goes away later: remembered from then on. */
	health_evidence_drop(h, "n1", GPU, "GPU-1", false, 5000, 60000);
	assert_int_equal(health_breaker_wake(h), 65000);
	counts(h, 64999, 1, 1);
	/* A new pod reports it again, then recovers: forgotten at once. */
	health_evidence_add(h, "n1", GPU, "GPU-1");
	health_evidence_drop(h, "n1", GPU, "GPU-1", true, 64999, 60000);
	counts(h, 64999, 0, 0);
	/* One pod sees it recover while another went away unrecovered: recovery wins either way round. */
	health_evidence_add(h, "n2", GPU, "GPU-2");
	health_evidence_add(h, "n2", GPU, "GPU-2");
	health_evidence_drop(h, "n2", GPU, "GPU-2", true, 70000, 60000);
	health_evidence_drop(h, "n2", GPU, "GPU-2", false, 70000, 60000);
	counts(h, 70000, 0, 0);
	/* memory 0: nothing is remembered. */
	health_evidence_add(h, "n3", GPU, "");
	health_evidence_drop(h, "n3", GPU, "", false, 80000, 0);
	counts(h, 80000, 0, 0);
	assert_int_equal(health_breaker_wake(h), UINT64_MAX);
	/* A drop nobody added, or on an unknown node, is ignored. */
	health_evidence_drop(h, "n4", GPU, "x", false, 80000, 60000);
	health_evidence_drop(h, "", GPU, "x", false, 80000, 60000);
	counts(h, 80000, 0, 0);
	health_free(h);
}

struct devs {
	char text[512];
};

static void add_dev(const char *resource, const char *device, const char *health, void *userdata)
{
	struct devs *d = userdata;
	size_t l = strlen(d->text);

	snprintf(d->text + l, sizeof(d->text) - l, "%s|%s|%s;", resource, device, health);
}

/* The devices a pod holds: IDs from allocatedResourcesStatus, a count without IDs, DRA results. */
static void test_pod_devices(void **state)
{
	struct tb_env e;
	struct kc_pod *p;
	struct kc_resource_claim *c;
	struct devs d = {{0}};

	(void)state;
	tb_env_init(&e, tb_policy(), true);
	p = tb_gpu_pod("ml", "a", "u1", "n1", "nvidia.com/gpu", 2);
	tb_status_health(tb_pod_status(p, "main"), "nvidia.com/gpu", "GPU-1", KC_HEALTH_HEALTHY, NULL);
	tb_status_health(tb_pod_status(p, "main"), "nvidia.com/gpu", "GPU-2", KC_HEALTH_UNHEALTHY, "XID 79");
	tb_pod_container(p, "side", "example.com/fpga", 1);
	tb_pod_claim(p, "gpu", "a-gpu");
	tb_pod_claim(p, "later", "");
	tb_put_pod(&e, p);
	c = tb_claim("ml", "a-gpu", "claim-1");
	tb_claim_result(c, "gpu", "gpu.example.com", "n1", "gpu-0");
	tb_put_claim(&e, c);
	assert_int_equal(health_pod_devices(e.p, p, e.claims, add_dev, &d), 5);
	assert_string_equal(d.text, "nvidia.com/gpu|GPU-1|Healthy;nvidia.com/gpu|GPU-2|Unhealthy;"
				    "example.com/fpga||;claim:gpu/gpu|gpu.example.com/n1/gpu-0|;claim:later||;");
	memset(&d, 0, sizeof(d));
	assert_int_equal(health_pod_devices(e.p, p, NULL, add_dev, &d), 5);
	assert_non_null(strstr(d.text, "claim:gpu||;"));
	tb_env_done(&e);
}

/* ---- DRA taints against claim tolerations, and DeviceTaintRules of others ---- */

#define T0 1795741318 /* a taint's timeAdded, Unix seconds */

/* One DRA pod "a" (claim "gpu" -> ResourceClaim "a-gpu") on n1, allocated drv/n1/d0. */
struct dra_case {
	struct policy *p;
	struct health *h;
	struct kc_store *claims;
	struct kc_pod *pod;
	struct kc_resource_claim *claim;
};

static void dra_case_init(struct dra_case *c, const char *yaml)
{
	c->p = tb_policy_yaml(yaml);
	c->h = health_new();
	c->claims = kc_store_new(&kc_type_resource_claim);
	c->pod = tb_pod("ml", "a", "u1", "n1");
	tb_pod_container(c->pod, "main", NULL, 0);
	tb_pod_claim(c->pod, "gpu", "a-gpu");
	c->claim = NULL;
}

/* A fresh claim on drv/n1/d0 (the store frees the old one). */
static struct kc_resource_claim *dra_claim(struct dra_case *c)
{
	void *old = NULL;

	c->claim = tb_claim("ml", "a-gpu", "claim-1");
	tb_claim_result(c->claim, "gpu", "drv", "n1", "d0");
	kc_store_put(c->claims, c->claim, &old);
	free(old);
	return c->claim;
}

/* The pod's DRA taint hit at now: its first-seen time and detail, or false. */
static bool dra_hit(struct dra_case *c, uint64_t now, uint64_t *ret_since, char *detail, size_t size)
{
	struct health_hit *hits;
	size_t n = health_pod_eval(c->h, c->p, c->pod, c->claims, NULL, 0, now, &hits);
	bool found = false;

	for (size_t i = 0; i < n; i++)
		if (hits[i].signal == HEALTH_DRA_TAINT) {
			found = true;
			*ret_since = hits[i].first_seen_ms;
			snprintf(detail, size, "%s", hits[i].detail);
			assert_string_equal(hits[i].device, "drv/n1/d0");
			assert_string_equal(hits[i].resource, "claim:gpu/gpu");
		}
	health_hits_free(hits, n);
	return found;
}

static void dra_case_done(struct dra_case *c)
{
	free(c->pod);
	kc_store_free(c->claims);
	health_free(c->h);
	policy_free(c->p);
	tb_reset();
}

/*
 * A claim whose allocation result tolerates the device's NoExecute taint is
 * not hit (the old code ignored tolerations and evicted its pod, while the
 * scheduler and kube-controller-manager keep it).  Matching as
 * kube-controller-manager does: key, Exists/Equal and value, and for a
 * NoExecute taint only tolerations of effect NoExecute.
 */
static void test_dra_tolerations(void **state)
{
	struct dra_case c;
	struct kc_resource_slice *s = tb_slice("s1", "drv", "n1", "n1");
	uint64_t since = 0;
	char detail[256];

	(void)state;
	dra_case_init(&c, "");
	tb_slice_device(s, "d0", NULL, NULL);
	tb_slice_taint(s, "dd.example.com/xid", "79", "NoExecute", T0);
	assert_true(health_slice_update(c.h, c.p, s, NULL, 500));

	dra_claim(&c); /* no tolerations */
	assert_true(dra_hit(&c, 600, &since, detail, sizeof(detail)));
	assert_int_equal(since, 500);
	assert_string_equal(detail, "taint dd.example.com/xid=79:NoExecute");

	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EXISTS, "", "NoExecute", -1);
	assert_false(dra_hit(&c, 600, &since, detail, sizeof(detail)));
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EQUAL, "79", "NoExecute", -1);
	assert_false(dra_hit(&c, 600, &since, detail, sizeof(detail)));
	tb_claim_toleration(dra_claim(&c), "", KC_TOLERATION_EXISTS, "", "NoExecute", -1); /* every key */
	assert_false(dra_hit(&c, 600, &since, detail, sizeof(detail)));
	/* Not tolerated: another value, another key, another effect, an unknown operator. */
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EQUAL, "48", "NoExecute", -1);
	assert_true(dra_hit(&c, 600, &since, detail, sizeof(detail)));
	tb_claim_toleration(dra_claim(&c), "other", KC_TOLERATION_EXISTS, "", "NoExecute", -1);
	assert_true(dra_hit(&c, 600, &since, detail, sizeof(detail)));
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EXISTS, "", "NoSchedule", -1);
	assert_true(dra_hit(&c, 600, &since, detail, sizeof(detail)));
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_OTHER, "79", "NoExecute", -1);
	assert_true(dra_hit(&c, 600, &since, detail, sizeof(detail)));
	/* Without an effect: kube-controller-manager still deletes the pod for a NoExecute taint. */
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EXISTS, "", "", -1);
	assert_true(dra_hit(&c, 600, &since, detail, sizeof(detail)));
	assert_int_equal(since, 500);

	/* Two taints, one tolerated: the other one holds. */
	tb_slice_taint(s, "dd.example.com/ecc", "", "NoExecute", T0 + 5);
	assert_true(health_slice_update(c.h, c.p, s, s, 700));
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EXISTS, "", "NoExecute", -1);
	assert_true(dra_hit(&c, 800, &since, detail, sizeof(detail)));
	assert_string_equal(detail, "taint dd.example.com/ecc:NoExecute");
	assert_int_equal(since, 700); /* the xid taint kept its first-seen time, the new one is new */
	tb_claim_toleration(c.claim, "dd.example.com/ecc", KC_TOLERATION_EQUAL, "", "NoExecute", -1);
	assert_false(dra_hit(&c, 800, &since, detail, sizeof(detail)));
	free(s);
	dra_case_done(&c);
}

/* tolerationSeconds: the taint holds only once the toleration ends, counted from its timeAdded as
 * kube-controller-manager counts (or from when it was first seen while the wall clock is unknown). */
static void test_dra_toleration_seconds(void **state)
{
	struct dra_case c;
	struct kc_resource_slice *s = tb_slice("s1", "drv", "n1", "n1");
	uint64_t since = 0;
	char detail[256];

	(void)state;
	dra_case_init(&c, "signals: {draDeviceTaints: {for: 2s}}\n");
	tb_slice_device(s, "d0", NULL, NULL);
	tb_slice_taint(s, "dd.example.com/xid", "79", "NoExecute", T0);
	assert_true(health_slice_update(c.h, c.p, s, NULL, 10000));

	/* Wall clock unknown: 60 s from first seen. */
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EXISTS, "", "NoExecute", 60);
	assert_true(dra_hit(&c, 10000, &since, detail, sizeof(detail)));
	assert_int_equal(since, 70000);
	/* The wall clock says the taint was added 30 s before monotonic 10000: 30 s are left. */
	health_set_wall_clock(c.h, (T0 + 30) * 1000LL, 10000);
	assert_true(dra_hit(&c, 10000, &since, detail, sizeof(detail)));
	assert_int_equal(since, 40000);
	/* The shortest matching toleration wins; one for ever tolerates it for ever. */
	tb_claim_toleration(c.claim, "", KC_TOLERATION_EXISTS, "", "NoExecute", 40);
	assert_true(dra_hit(&c, 10000, &since, detail, sizeof(detail)));
	assert_int_equal(since, 20000);
	tb_claim_toleration(c.claim, "dd.example.com/xid", KC_TOLERATION_EQUAL, "79", "NoExecute", -1);
	assert_false(dra_hit(&c, 10000, &since, detail, sizeof(detail)));
	/* Expired long ago (or negative seconds: 0): holds from when it was first seen. */
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EXISTS, "", "NoExecute", 10);
	assert_true(dra_hit(&c, 10000, &since, detail, sizeof(detail)));
	assert_int_equal(since, 10000);
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EXISTS, "", "NoExecute", -1);
	c.claim->results[0].tolerations[0].has_seconds = true;
	c.claim->results[0].tolerations[0].seconds = -7;
	assert_true(dra_hit(&c, 10000, &since, detail, sizeof(detail)));
	assert_int_equal(since, 10000);
	/* A taint without timeAdded: counted from first seen even with the wall clock (the same key and
	 * effect: the same taint, first seen at 10000). */
	s->devices[0].taints[0].time_added = 0;
	assert_true(health_slice_update(c.h, c.p, s, s, 50000));
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EXISTS, "", "NoExecute", 60);
	assert_true(dra_hit(&c, 50000, &since, detail, sizeof(detail)));
	assert_int_equal(since, 70000);

	/* A listed NoSchedule taint: tolerationSeconds does not apply, a matching toleration holds for ever. */
	policy_free(c.p);
	c.p = tb_policy_yaml("signals: {draDeviceTaints: {effects: [NoSchedule]}}\n");
	s->devices[0].taints[0].effect = "NoSchedule";
	assert_true(health_slice_update(c.h, c.p, s, s, 60000));
	tb_claim_toleration(dra_claim(&c), "dd.example.com/xid", KC_TOLERATION_EXISTS, "", "", 5);
	assert_false(dra_hit(&c, 60000, &since, detail, sizeof(detail)));
	tb_claim_toleration(dra_claim(&c), "other", KC_TOLERATION_EXISTS, "", "", -1);
	assert_true(dra_hit(&c, 60000, &since, detail, sizeof(detail)));
	free(s);
	dra_case_done(&c);
}

/* A NoExecute DeviceTaintRule of someone else's taints the devices its selector picks, as a slice
 * taint does (the old code read slice taints only); tolerations apply to it the same way. */
static void test_dra_rules(void **state)
{
	struct dra_case c;
	struct kc_device_taint_rule *pool = tb_rule("drain-n1", "", "n1", "", "example.com/drain", "NoExecute", T0);
	struct kc_device_taint_rule *none = tb_rule("no-selector", NULL, "", "", "example.com/all", "NoExecute", T0);
	struct kc_device_taint_rule *sched = tb_rule("sched", "drv", "n1", "d0", "example.com/s", "NoSchedule", T0);
	struct kc_device_taint_rule *other = tb_rule("other", "drv", "n2", "", "example.com/x", "NoExecute", T0);
	struct kc_device_taint_rule *moved;
	uint64_t since = 0;
	char detail[256];

	(void)state;
	dra_case_init(&c, "");
	dra_claim(&c);
	assert_false(health_rule_update(c.h, c.p, none, NULL, 100)); /* no selector: no device */
	assert_false(health_rule_update(c.h, c.p, sched, NULL, 100)); /* effect not listed */
	assert_true(health_rule_update(c.h, c.p, other, NULL, 100));
	assert_false(dra_hit(&c, 150, &since, detail, sizeof(detail)));
	assert_false(health_device_tainted(c.h, "drv", "n1", "d0"));
	assert_true(health_device_tainted(c.h, "drv", "n2", "d9"));
	assert_true(health_rule_update(c.h, c.p, pool, NULL, 200));
	assert_true(health_device_tainted(c.h, "drv", "n1", "d0"));
	assert_true(health_device_tainted(c.h, "other-driver", "n1", "d5"));
	assert_true(dra_hit(&c, 250, &since, detail, sizeof(detail)));
	assert_int_equal(since, 200);
	assert_string_equal(detail, "DeviceTaintRule drain-n1: taint example.com/drain:NoExecute");
	assert_false(health_rule_update(c.h, c.p, pool, pool, 300)); /* unchanged: keeps its time */
	assert_true(dra_hit(&c, 300, &since, detail, sizeof(detail)));
	assert_int_equal(since, 200);
	/* Tolerated like a slice taint. */
	tb_claim_toleration(dra_claim(&c), "example.com/drain", KC_TOLERATION_EXISTS, "", "NoExecute", -1);
	assert_false(dra_hit(&c, 300, &since, detail, sizeof(detail)));
	dra_claim(&c);
	/* The selector moves to another pool: no longer this device. */
	moved = tb_rule("drain-n1", "", "n3", "", "example.com/drain", "NoExecute", T0);
	assert_true(health_rule_update(c.h, c.p, moved, pool, 400));
	assert_false(dra_hit(&c, 400, &since, detail, sizeof(detail)));
	assert_true(health_rule_update(c.h, c.p, pool, moved, 450));
	assert_true(dra_hit(&c, 450, &since, detail, sizeof(detail)));
	assert_int_equal(since, 450);
	/* Deleted. */
	assert_true(health_rule_update(c.h, c.p, NULL, pool, 500));
	assert_false(dra_hit(&c, 500, &since, detail, sizeof(detail)));
	/* A generation drops the rules not updated in it; draDeviceTaints off drops them all. */
	assert_true(health_rule_update(c.h, c.p, pool, NULL, 600));
	health_begin_generation(c.h);
	assert_false(health_rule_update(c.h, c.p, other, NULL, 700));
	health_sweep(c.h);
	assert_false(dra_hit(&c, 700, &since, detail, sizeof(detail)));
	assert_true(health_device_tainted(c.h, "drv", "n2", "d9"));
	c.p->dra_taints_enabled = false;
	assert_true(health_rule_update(c.h, c.p, other, other, 800));
	assert_false(health_device_tainted(c.h, "drv", "n2", "d9"));
	free(pool);
	free(none);
	free(sched);
	free(other);
	free(moved);
	dra_case_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signal_names),
	    cmocka_unit_test(test_node_state),
	    cmocka_unit_test(test_device_id_exact),
	    cmocka_unit_test(test_device_id_uuid),
	    cmocka_unit_test(test_device_id_none_means_node),
	    cmocka_unit_test(test_device_id_debounce),
	    cmocka_unit_test(test_taint_index),
	    cmocka_unit_test(test_pod_eval),
	    cmocka_unit_test(test_breaker_condition_scope),
	    cmocka_unit_test(test_breaker_dra_nodes),
	    cmocka_unit_test(test_breaker_allocatable_drop),
	    cmocka_unit_test(test_breaker_memory),
	    cmocka_unit_test(test_pod_devices),
	    cmocka_unit_test(test_dra_tolerations),
	    cmocka_unit_test(test_dra_toleration_seconds),
	    cmocka_unit_test(test_dra_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
