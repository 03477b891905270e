/*
 * Unit tests of the incremental decoders (kc_decode.h): exact values from
 * the fixtures, the same result whatever the chunking (every split offset,
 * for both LIST and WATCH), and hostile input: wrong types, missing fields,
 * malformed JSON, over-long lines, unknown and ERROR events.
 *
 * Objects are compared through object_dump(), a canonical text form of every kept
 * field, so a mismatch shows as a readable diff.
 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kc_decode.h"
#include "kc_intern.h"
#include "kc_uid.h"
#include "kc_util.h"
#include "object_dump.h"

/* ---- helpers ------------------------------------------------------------------ */

static struct kc_intern *intern;

static int setup(void **state)
{
	(void)state;
	intern = kc_intern_new();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	intern = kc_intern_free(intern);
	return 0;
}

static char *fixture(const char *name, size_t *len)
{
	const char *dir = getenv("FIXTURES");
	char *path, *data;
	size_t n;

	path = kc_xasprintf("%s/%s", dir ? dir : "test/fixtures", name);
	assert_int_equal(kc_read_file(path, 1 << 20, &data, &n), 0);
	free(path);
	/* One line, as a watch stream carries it (strings hold no raw newline). */
	for (size_t i = 0; i < n; i++)
		if (data[i] == '\n')
			data[i] = ' ';
	if (len)
		*len = n;
	return data;
}

static char *decode_dump(const struct kc_type *t, const struct kc_decode_opts *o, const char *json)
{
	struct kc_decode_ctx ctx = { intern, o };
	struct kc_error err = { "" };
	void *obj = NULL;
	char *text;
	int r = kc_decode_object(t, &ctx, json, strlen(json), &obj, &err);

	if (r != 0)
		fail_msg("decode failed: %d %s", r, err.msg);
	text = object_dump(t, obj);
	kc_object_free(obj);
	return text;
}

static void check_fixture(const struct kc_type *t, const char *name, const char *want)
{
	char *json = fixture(name, NULL);
	char *got = decode_dump(t, NULL, json);

	if (strcmp(got, want) != 0)
		fail_msg("%s:\n--- got\n%s--- want\n%s", name, got, want);
	free(got);
	free(json);
}

/* ---- exact values -------------------------------------------------------------- */

static const char want_pod_dp[] =
	"meta ml/trainer-7d9f8c6b5-x2k4q uid=5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f rv=884213 del=0\n"
	" label app=trainer\n"
	" label pod-template-hash=7d9f8c6b5\n"
	" owner ReplicaSet trainer-7d9f8c6b5 0b9f5a2e-7c1d-4e2f-8a3b-9c4d5e6f7a8b ctl=1\n"
	"pod node=gpu-node-17 phase=2 prio=1/0 mirror=0\n"
	" container trainer init=0 claim=\n"
	"  req nvidia.com/gpu=2\n"
	" container log-shipper init=0 claim=\n"
	" status trainer init=0 ready=0 restarts=7 state=1 crashloop=1 exit=0/0"
	" last exit=1/139\n"
	"  resource nvidia.com/gpu\n"
	"   device GPU-7540a9b3-6f5e-4d3c-b2a1-0f9e8d7c6b5a health=2 msg=XID 79: GPU has fallen off the bus\n"
	"   device GPU-1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6 health=1 msg=\n"
	" status log-shipper init=0 ready=1 restarts=0 state=2 crashloop=0 exit=0/0 last exit=0/0\n";

static const char want_pod_dra[] =
	"meta serving/inference-0 uid=9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a rv=991002 del=0\n"
	" owner StatefulSet inference 2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f ctl=1\n"
	"pod node=gpu-node-03 phase=2 prio=0/0 mirror=0\n"
	" container server init=0 claim=gpu\n"
	" status server init=0 ready=0 restarts=3 state=1 crashloop=1 exit=0/0 last exit=0/0\n"
	"  resource claim:gpu/gpu\n"
	"   device gpu.example.com/gpu-node-03/gpu-1 health=2 msg=critical XID 79 reported by NVML\n"
	" claim gpu -> inference-0-gpu-8x7lq\n";

static const char want_node[] =
	"meta /gpu-node-17 uid=c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f rv=884190 del=0\n"
	" label kubernetes.io/hostname=gpu-node-17\n"
	" label nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3\n"
	"node unschedulable=0\n"
	"  taint nvidia.com/gpu=present:NoSchedule t=0\n"
	"  capacity nvidia.com/gpu=8\n"
	"  allocatable nvidia.com/gpu=7\n"
	" cond Ready=1 reason=KubeletReady msg=kubelet is posting ready status t=1793491200\n"
	" cond GPUXIDErrors=1 reason=XIDCriticalError"
	" msg=XID 79 on GPU-7540a9b3-6f5e-4d3c-b2a1-0f9e8d7c6b5a (GPU has fallen off the bus) t=1795741318\n";

static const char want_claim[] =
	"meta serving/inference-0-gpu-8x7lq uid=4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8 rv=990870 del=0\n"
	" owner Pod inference-0 9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a ctl=1\n"
	"claim allocated=1\n"
	" result gpu gpu.example.com/gpu-node-03/gpu-1\n"
	" devstatus gpu.example.com/gpu-node-03/gpu-1\n"
	" cond Ready=2 reason=XidCriticalError msg=XID 79 t=1795741318\n"
	" consumer pods inference-0 9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a\n";

static const char want_slice_v1[] =
	"meta /gpu-node-03-gpu.example.com-7kq2z uid=7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d rv=990801 del=0\n"
	"slice driver=gpu.example.com pool=gpu-node-03 node=gpu-node-03 all=0\n"
	" device gpu-0\n"
	" device gpu-1\n"
	"  taint gpu.example.com/xid=79:NoSchedule t=1795741318\n";

static const char want_slice_v1beta1[] =
	"meta /gpu-node-03-gpu.example.com-7kq2z uid=7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d rv=990801 del=0\n"
	"slice driver=gpu.example.com pool=gpu-node-03 node=gpu-node-03 all=0\n"
	" device gpu-1\n"
	"  taint gpu.example.com/xid=79:NoSchedule t=1795741318\n";

/* Tolerations from the allocation results (exactly and a firstAvailable subrequest alike), not
 * from the spec: absent operator = Equal (0), Exists = 1, unknown = 2; seconds kept negative. */
static const char want_claim_tolerations[] =
	"meta ml/maint-7c9d8f6b5-q2w3e-gpu-x8k2p uid=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d rv=4411 del=0\n"
	"claim allocated=1\n"
	" result gpu gpu.example.com/gpu-node-1/gpu-0\n"
	"  toleration key=gpu.example.com/xid op=1 value= effect=NoExecute seconds=0/0\n"
	" result any/big gpu.example.com/gpu-node-1/gpu-1\n"
	"  toleration key=gpu.example.com/maintenance op=0 value=planned effect=NoExecute seconds=1/300\n"
	"  toleration key= op=1 value= effect= seconds=0/0\n"
	"  toleration key=k op=0 value=v effect= seconds=1/-5\n"
	"  toleration key=k op=2 value=3 effect= seconds=0/0\n"
	" consumer pods maint-7c9d8f6b5-q2w3e 1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e\n";

static const char want_rule_v1[] =
	"meta /gpu-node-1-maintenance uid=2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f rv=5120 del=0\n"
	" label team=infra\n"
	"rule selector=1 driver=gpu.example.com pool=gpu-node-1 device=gpu-0\n"
	"  taint gpu.example.com/xid=79:NoExecute t=1795741318\n";

static const char want_rule_pool[] =
	"meta /drain-gpu-node-2 uid=3d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f7a rv=5121 del=0\n"
	"rule selector=1 driver= pool=gpu-node-2 device=\n"
	"  taint example.com/drain=:NoSchedule t=0\n";

static const char want_rule_noselector[] =
	"meta /no-selector uid=4e5f6a7b-8c9d-4e0f-9a1b-3c4d5e6f7a8b rv=5122 del=0\n"
	"rule selector=0 driver= pool= device=\n"
	"  taint example.com/all=x:NoExecute t=1795741320\n";

struct fx {
	const struct kc_type *t;
	const char *file;
	const char *want;
};

static const struct fx fixtures[] = {
	{ &kc_type_pod, "pod-device-plugin-unhealthy.json", want_pod_dp },
	{ &kc_type_pod, "pod-dra-unhealthy.json", want_pod_dra },
	{ &kc_type_node, "node-gpu-degraded.json", want_node },
	{ &kc_type_resource_claim, "resourceclaim-allocated.json", want_claim },
	{ &kc_type_resource_slice, "resourceslice-v1-tainted.json", want_slice_v1 },
	{ &kc_type_resource_slice, "resourceslice-v1beta1-tainted.json", want_slice_v1beta1 },
	{ &kc_type_resource_claim, "resourceclaim-tolerations.json", want_claim_tolerations },
	{ &kc_type_device_taint_rule, "devicetaintrule-v1.json", want_rule_v1 },
	{ &kc_type_device_taint_rule, "devicetaintrule-v1alpha3-pool.json", want_rule_pool },
	{ &kc_type_device_taint_rule, "devicetaintrule-v1beta2-noselector.json", want_rule_noselector },
};

static void test_fixtures_exact(void **state)
{
	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(fixtures); i++)
		check_fixture(fixtures[i].t, fixtures[i].file, fixtures[i].want);
}

static void test_one_block_and_interning(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	char *json = fixture("pod-device-plugin-unhealthy.json", NULL);
	struct kc_pod *a = NULL, *b = NULL;

	(void)state;
	assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, json, strlen(json), (void **)&a, NULL), 0);
	assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, json, strlen(json), (void **)&b, NULL), 0);
	/* Interned strings are shared; the others live inside each block. */
	assert_ptr_equal(a->node_name, b->node_name);
	assert_ptr_equal(a->meta.ns, b->meta.ns);
	assert_ptr_equal(a->containers[0].requests[0].name, kc_intern_str(intern, "nvidia.com/gpu"));
	assert_ptr_not_equal(a->meta.name, b->meta.name);
	assert_true(a->meta.name > (const char *)a && a->meta.name < (const char *)a + 4096);
	assert_true((const char *)a->statuses > (const char *)a);
	/* Status names share the container name string. */
	assert_ptr_equal(a->statuses[0].name, a->containers[0].name);
	assert_string_equal(kc_type_pod.node_of(a), "gpu-node-17");
	kc_object_free(a);
	kc_object_free(b);
	free(json);
}

/* ---- every split offset, LIST and WATCH ----------------------------------------------- */

struct collect {
	const struct kc_type *t;
	char *dumps[16];
	char rvs[16][32];
	int types[16];
	bool initial_end[16];
	bool oversized[16];
	size_t n;
	int stop_after;  /* item/event callback returns 7 after this many; 0 = never */
	struct kc_status status;
	uint64_t events;
};

static void collect_reset(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->dumps[i]);
	kc_status_done(&c->status);
	c->n = 0;
}

static int list_cb(void *obj, void *ud)
{
	struct collect *c = ud;

	assert_true(c->n < KC_ARRAY_SIZE(c->dumps));
	c->dumps[c->n++] = object_dump(c->t, obj);
	kc_object_free(obj);
	return c->stop_after && (int)c->n >= c->stop_after ? 7 : 0;
}

static int watch_cb(struct kc_watch_event *ev, void *ud)
{
	struct collect *c = ud;

	assert_true(c->n < KC_ARRAY_SIZE(c->dumps));
	c->types[c->n] = ev->type;
	c->initial_end[c->n] = ev->initial_events_end;
	c->oversized[c->n] = ev->oversized;
	snprintf(c->rvs[c->n], sizeof(c->rvs[c->n]), "%s", ev->resource_version);
	c->dumps[c->n] = ev->object ? object_dump(c->t, ev->object) : NULL;
	if (ev->type == KC_WATCH_ERROR) {
		kc_status_done(&c->status);
		c->status = ev->status;
		memset(&ev->status, 0, sizeof(ev->status));
	}
	c->n++;
	return c->stop_after && (int)c->n >= c->stop_after ? 7 : 0;
}

static int drop_item(void *obj, void *ud)
{
	(void)ud;
	kc_object_free(obj);
	return 0;
}

static void test_list_every_split(void **state)
{
	struct kc_decode_ctx ctx = { NULL, NULL };

	(void)state;
	ctx.intern = intern;
	for (size_t f = 0; f < KC_ARRAY_SIZE(fixtures); f++) {
		char *obj = fixture(fixtures[f].file, NULL);
		char *body = kc_xasprintf("{\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"4242\","
					  "\"continue\":\"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ\"},\"items\":[%s, %s]}",
					  obj, obj);
		size_t len = strlen(body);

		for (size_t k = 0; k <= len; k++) {
			struct collect c = { .t = fixtures[f].t };
			struct kc_list_decoder *d = kc_list_decoder_new(fixtures[f].t, &ctx, list_cb, &c);

			assert_int_equal(kc_list_decoder_feed(d, body, k), 0);
			assert_int_equal(kc_list_decoder_feed(d, body + k, len - k), 0);
			assert_int_equal(kc_list_decoder_finish(d), 0);
			assert_int_equal(c.n, 2);
			assert_int_equal(kc_list_decoder_items(d), 2);
			assert_string_equal(c.dumps[0], fixtures[f].want);
			assert_string_equal(c.dumps[1], fixtures[f].want);
			assert_string_equal(kc_list_decoder_resource_version(d), "4242");
			assert_string_equal(kc_list_decoder_continue(d), "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ");
			kc_list_decoder_free(d);
			collect_reset(&c);
		}
		free(body);
		free(obj);
	}
}

static void test_list_byte_by_byte_and_abort(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	char *obj = fixture("pod-dra-unhealthy.json", NULL);
	char *body = kc_xasprintf("{\"items\":[%s,%s,%s],\"metadata\":{}}", obj, obj, obj);
	struct collect c = { .t = &kc_type_pod };
	struct kc_list_decoder *d = kc_list_decoder_new(&kc_type_pod, &ctx, list_cb, &c);

	(void)state;
	for (size_t i = 0; body[i]; i++)
		assert_int_equal(kc_list_decoder_feed(d, body + i, 1), 0);
	assert_int_equal(kc_list_decoder_finish(d), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.dumps[2], want_pod_dra);
	assert_string_equal(kc_list_decoder_resource_version(d), "");
	assert_string_equal(kc_list_decoder_continue(d), "");
	kc_list_decoder_free(d);
	collect_reset(&c);

	/* A non-zero callback return stops decoding and is returned, also later. */
	c.stop_after = 2;
	d = kc_list_decoder_new(&kc_type_pod, &ctx, list_cb, &c);
	assert_int_equal(kc_list_decoder_feed(d, body, strlen(body)), 7);
	assert_int_equal(c.n, 2);
	assert_int_equal(kc_list_decoder_feed(d, "", 0), 7);
	assert_int_equal(kc_list_decoder_finish(d), 7);
	kc_list_decoder_free(d);
	collect_reset(&c);
	free(body);
	free(obj);
}

static void test_watch_every_split(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };

	(void)state;
	for (size_t f = 0; f < KC_ARRAY_SIZE(fixtures); f++) {
		char *obj = fixture(fixtures[f].file, NULL);
		/* "object" before "type" on the second line; CRLF and blank lines tolerated. */
		char *stream = kc_xasprintf("{\"type\":\"ADDED\",\"object\":%s}\n"
					    "\n"
					    "{\"object\":%s, \"type\":\"MODIFIED\"}\r\n"
					    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"X\",\"metadata\":"
					    "{\"resourceVersion\":\"777\",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}}}}\n"
					    "{\"type\":\"SOMETHING\",\"object\":%s}\n"
					    "{\"type\":\"DELETED\",\"object\":%s}\n"
					    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"778\","
					    "\"annotations\":{\"k8s.io/initial-events-end\":\"false\"}}}}\n"
					    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"779\"}}}\n",
					    obj, obj, obj, obj);
		size_t len = strlen(stream);
		struct kc_meta *m;
		void *ref = NULL;

		assert_int_equal(kc_decode_object(fixtures[f].t, &ctx, obj, strlen(obj), &ref, NULL), 0);
		m = ref;
		for (size_t k = 0; k <= len; k++) {
			struct collect c = { .t = fixtures[f].t };
			struct kc_watch_decoder *d = kc_watch_decoder_new(fixtures[f].t, &ctx, 0, watch_cb, &c);

			assert_int_equal(kc_watch_decoder_feed(d, stream, k), 0);
			assert_int_equal(kc_watch_decoder_feed(d, stream + k, len - k), 0);
			assert_int_equal(c.n, 6);
			/* Only the bookmark annotated "true" ends a WatchList's initial events. */
			for (size_t i = 0; i < c.n; i++)
				assert_int_equal(c.initial_end[i], i == 2);
			assert_string_equal(c.rvs[5], "779");
			assert_int_equal(c.types[0], KC_WATCH_ADDED);
			assert_int_equal(c.types[1], KC_WATCH_MODIFIED);
			assert_int_equal(c.types[2], KC_WATCH_BOOKMARK);
			assert_int_equal(c.types[3], KC_WATCH_DELETED);
			assert_string_equal(c.dumps[0], fixtures[f].want);
			assert_string_equal(c.dumps[1], fixtures[f].want);
			assert_null(c.dumps[2]);
			assert_string_equal(c.dumps[3], fixtures[f].want);
			assert_true(kc_decode_rv_key(c.rvs[0], strlen(c.rvs[0])) == m->rv_key);
			assert_string_equal(c.rvs[2], "777");
			assert_int_equal(kc_watch_decoder_skipped(d), 1);
			kc_watch_decoder_free(d);
			collect_reset(&c);
		}
		kc_object_free(ref);
		free(stream);
		free(obj);
	}
}

static int keep_first(struct kc_watch_event *ev, void *ud)
{
	void **out = ud;

	*out = ev->object;
	ev->object = NULL;
	return 0;
}

/*
 * The options are read as each object begins: the daemon replaces the label
 * keys it keeps on a policy reload (and frees the old list) while its watch
 * decoders live on.  The old code kept the first list (a use after free).
 */
static void test_opts_change_between_objects(void **state)
{
	static const char line[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\","
				   "\"uid\":\"u\",\"labels\":{\"app\":\"a\",\"team\":\"t\"}}}}\n";
	const char **keys = kc_xcalloc(2, sizeof(*keys)), **next;
	struct kc_decode_opts o = { .keep_labels = NULL };
	struct kc_decode_ctx ctx = { intern, &o };
	struct kc_watch_decoder *d;
	struct kc_pod *p = NULL;

	(void)state;
	keys[0] = "app";
	o.keep_labels = keys;
	d = kc_watch_decoder_new(&kc_type_pod, &ctx, 0, keep_first, &p);
	assert_int_equal(kc_watch_decoder_feed(d, line, strlen(line)), 0);
	assert_non_null(p);
	assert_int_equal(p->meta.n_labels, 1);
	assert_string_equal(p->meta.labels[0].key, "app");
	kc_object_free(p);
	next = kc_xcalloc(2, sizeof(*next)); /* a new list, then the old one freed */
	next[0] = "team";
	o.keep_labels = next;
	free(keys);
	keys = next;
	p = NULL;
	assert_int_equal(kc_watch_decoder_feed(d, line, strlen(line)), 0);
	assert_non_null(p);
	assert_int_equal(p->meta.n_labels, 1);
	assert_string_equal(p->meta.labels[0].key, "team");
	kc_object_free(p);
	kc_watch_decoder_free(d);
	free(keys);
}

/* ---- keeping only the containers and statuses of devices ---------------------------------- */

/* A device predicate: the names listed in ud (NULL-terminated). */
static bool listed_device(const char *resource, void *ud)
{
	for (const char *const *l = ud; *l; l++)
		if (strcmp(*l, resource) == 0)
			return true;
	return false;
}

static const char *const gpu_only[] = { "nvidia.com/gpu", NULL };
static const char *const gpu_and_nic[] = { "nvidia.com/gpu", "example.com/nic", NULL };

/* A trainer with a GPU, a sidecar with a NIC (a device only under the wider set), a log
 * shipper with nothing, an init container with a claim; statuses before the spec. */
static const char sidecar_pod[] =
	"{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\"},"
	"\"status\":{\"containerStatuses\":["
	"{\"name\":\"log\",\"restartCount\":1,\"allocatedResourcesStatus\":[{\"name\":\"example.com/nic\","
	"\"resources\":[{\"resourceID\":\"nic-1\",\"health\":\"Unhealthy\"}]}]},"
	"{\"name\":\"sidecar\",\"restartCount\":2},"
	"{\"name\":\"trainer\",\"restartCount\":3,\"allocatedResourcesStatus\":["
	"{\"name\":\"example.com/nic\",\"resources\":[{\"resourceID\":\"nic-0\",\"health\":\"Healthy\"}]},"
	"{\"name\":\"nvidia.com/gpu\",\"resources\":[]},"
	"{\"name\":\"nvidia.com/gpu\",\"resources\":[{\"resourceID\":\"GPU-0\",\"health\":\"Healthy\"}]}]}],"
	"\"initContainerStatuses\":[{\"name\":\"init\",\"restartCount\":4},{\"name\":\"trainer\"}]},"
	"\"spec\":{\"containers\":["
	"{\"name\":\"trainer\",\"resources\":{\"requests\":{\"example.com/nic\":\"1\",\"nvidia.com/gpu\":\"2\"},"
	"\"limits\":{\"nvidia.com/gpu\":\"2\",\"example.com/zero\":\"0\"}}},"
	"{\"name\":\"sidecar\",\"resources\":{\"requests\":{\"example.com/nic\":\"1\"}}},"
	"{\"name\":\"log\",\"resources\":{\"requests\":{\"nvidia.com/gpu\":\"0\"}}}],"
	"\"initContainers\":[{\"name\":\"init\",\"resources\":{\"claims\":[{\"name\":\"gpu\"}]}},"
	"{\"name\":\"trainer\"}],\"resourceClaims\":[{\"name\":\"gpu\",\"resourceClaimName\":\"gpu-0\"}]}}";

static const char want_gpu_only[] =
	"meta n/p uid=u rv= del=0\n"
	"pod node= phase=0 prio=0/0 mirror=0\n"
	" container trainer init=0 claim=\n"
	"  req nvidia.com/gpu=2\n"
	" container init init=1 claim=gpu\n"
	" status trainer init=0 ready=0 restarts=3 state=0 crashloop=0 exit=0/0 last exit=0/0\n"
	"  resource nvidia.com/gpu\n"
	"   device GPU-0 health=1 msg=\n"
	" status init init=1 ready=0 restarts=4 state=0 crashloop=0 exit=0/0 last exit=0/0\n"
	" claim gpu -> gpu-0\n";

static const char want_gpu_and_nic[] =
	"meta n/p uid=u rv= del=0\n"
	"pod node= phase=0 prio=0/0 mirror=0\n"
	" container trainer init=0 claim=\n"
	"  req example.com/nic=1\n"
	"  req nvidia.com/gpu=2\n"
	" container sidecar init=0 claim=\n"
	"  req example.com/nic=1\n"
	" container init init=1 claim=gpu\n"
	" status log init=0 ready=0 restarts=1 state=0 crashloop=0 exit=0/0 last exit=0/0\n"
	"  resource example.com/nic\n"
	"   device nic-1 health=2 msg=\n"
	" status sidecar init=0 ready=0 restarts=2 state=0 crashloop=0 exit=0/0 last exit=0/0\n"
	" status trainer init=0 ready=0 restarts=3 state=0 crashloop=0 exit=0/0 last exit=0/0\n"
	"  resource example.com/nic\n"
	"   device nic-0 health=1 msg=\n"
	"  resource nvidia.com/gpu\n"
	"   device GPU-0 health=1 msg=\n"
	" status init init=1 ready=0 restarts=4 state=0 crashloop=0 exit=0/0 last exit=0/0\n"
	" claim gpu -> gpu-0\n";

static int list_keep(void *obj, void *ud)
{
	void **slot = ud;

	kc_object_free(*slot);
	*slot = obj;
	return 0;
}

/*
 * Without a device the sidecar and the log shipper, their statuses and the
 * non-device requests and allocatedResourcesStatus entries are dropped, though
 * the statuses come before the spec; a policy that widens the device set keeps
 * them from the next decode on (the relist that follows a reload).
 */
static void test_keep_only_devices(void **state)
{
	struct kc_decode_opts o = { .is_device = listed_device, .device_userdata = (void *)gpu_only };
	struct kc_decode_ctx ctx = { intern, &o };
	struct kc_list_decoder *l;
	char *got, *list;
	void *obj = NULL;

	(void)state;
	got = decode_dump(&kc_type_pod, &o, sidecar_pod);
	assert_string_equal(got, want_gpu_only);
	free(got);
	/* The relist after a widening reload: the same list decoder options, changed in place. */
	o.device_userdata = (void *)gpu_and_nic;
	list = kc_xasprintf("{\"items\":[%s]}", sidecar_pod);
	l = kc_list_decoder_new(&kc_type_pod, &ctx, list_keep, &obj);
	for (size_t i = 0; list[i]; i++)
		assert_int_equal(kc_list_decoder_feed(l, list + i, 1), 0);
	assert_int_equal(kc_list_decoder_finish(l), 0);
	assert_non_null(obj);
	got = object_dump(&kc_type_pod, obj);
	assert_string_equal(got, want_gpu_and_nic);
	free(got);
	kc_object_free(obj);
	kc_list_decoder_free(l);
	free(list);
	/* Without a predicate nothing is dropped: the zero quantities are kept as decoded. */
	got = decode_dump(&kc_type_pod, NULL, sidecar_pod);
	assert_non_null(strstr(got, " container log init=0 claim=\n  req nvidia.com/gpu=0\n"));
	assert_non_null(strstr(got, "  req example.com/zero=0\n"));
	free(got);
}

static bool no_condition(const char *type, void *ud)
{
	(void)type;
	(void)ud;
	return false;
}

static bool xid_only(const char *type, void *ud)
{
	(void)ud;
	return strcmp(type, "GPUXIDErrors") == 0;
}

/*
 * With a condition predicate a node keeps only the conditions of the types it
 * keeps (the ones a policy rule reads), in their order; the rest of the node
 * is as without one.
 */
static void test_keep_node_conditions(void **state)
{
	struct kc_decode_opts o = { .keep_condition = xid_only };
	char *json = fixture("node-gpu-degraded.json", NULL);
	char *got = decode_dump(&kc_type_node, &o, json);
	const char *ready = strstr(want_node, " cond Ready=");
	const char *xid = strstr(want_node, " cond GPUXIDErrors=");
	char *want = kc_xasprintf("%.*s%s", (int)(ready - want_node), want_node, xid);

	(void)state;
	assert_string_equal(got, want);
	free(got);
	free(want);
	/* None kept: the node is still there, without conditions. */
	o.keep_condition = no_condition;
	got = decode_dump(&kc_type_node, &o, json);
	assert_non_null(strstr(got, "allocatable nvidia.com/gpu=7\n"));
	assert_null(strstr(got, " cond "));
	free(got);
	free(json);
}

/*
 * A container's claim is the pod's claim of that name (stored as its index): one
 * the pod does not declare (the API server refuses such a pod) holds no device.
 */
static void test_container_claims(void **state)
{
	static const char json[] =
		"{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":["
		"{\"name\":\"x\",\"resources\":{\"claims\":[{\"name\":\"b\"},{\"name\":\"a\"}]}},"
		"{\"name\":\"y\",\"resources\":{\"claims\":[{\"name\":\"z\"}]}}],"
		"\"resourceClaims\":[{\"name\":\"a\",\"resourceClaimName\":\"ca\"},{\"name\":\"b\"}]},"
		"\"status\":{\"resourceClaimStatuses\":[{\"name\":\"b\",\"resourceClaimName\":\"p-b-x7\"}]}}";
	struct kc_decode_opts o = { .is_device = listed_device, .device_userdata = (void *)gpu_only };
	char *got;

	(void)state;
	got = decode_dump(&kc_type_pod, &o, json);
	assert_string_equal(got, "meta /p uid= rv= del=0\n"
				 "pod node= phase=0 prio=0/0 mirror=0\n"
				 " container x init=0 claim=b\n"
				 " claim a -> ca\n"
				 " claim b -> p-b-x7\n");
	free(got);
	got = decode_dump(&kc_type_pod, NULL, json);
	assert_non_null(strstr(got, " container x init=0 claim=b\n container y init=0 claim=\n"));
	free(got);
}

/* ---- compact owners, UIDs and quantities --------------------------------------------------- */

/*
 * An owner whose name is the pod's up to its last '-' is not copied, others
 * are kept as text; the first owner marked controller is the controller;
 * a lower-case UUID is packed into 16 bytes, any other UID (upper case, not a
 * UUID) is kept as text in the object's block and comes back byte for byte.
 */
static void test_owners_and_uids(void **state)
{
	static const char json[] =
		"{\"metadata\":{\"name\":\"web-7d9f8c6b5-x2k4q\",\"namespace\":\"n\",\"uid\":\"U-1\","
		"\"ownerReferences\":["
		"{\"kind\":\"ReplicaSet\",\"name\":\"web-7d9f8c6b5\",\"uid\":\"0b9f5a2e-7c1d-4e2f-8a3b-9c4d5e6f7a8b\","
		"\"controller\":true},"
		"{\"kind\":\"Thing\",\"name\":\"other\",\"uid\":\"0B9F5A2E-7C1D-4E2F-8A3B-9C4D5E6F7A8B\"},"
		"{\"uid\":\"owner-uid-3\",\"name\":\"web-7d9f8c6b5-x2k4q-and-more\",\"kind\":\"Thing\"},"
		"{\"kind\":\"Thing\"},"
		"{\"kind\":\"Job\",\"name\":\"web\",\"uid\":\"u5\",\"controller\":true}]}}";
	struct kc_decode_ctx ctx = { intern, NULL };
	struct kc_pod *p = NULL;
	const char *name, *block;
	char ub[KC_UID_BUF];
	size_t len, size;

	(void)state;
	assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, json, strlen(json), (void **)&p, NULL), 0);
	block = (const char *)p;
	size = malloc_usable_size(p);
	assert_string_equal(kc_uid_str(&p->meta.uid, ub), "U-1");
	assert_int_equal(p->meta.n_owners, 5);
	assert_int_equal(p->meta.controller, 1);
	assert_ptr_equal(kc_meta_controller(&p->meta), &p->meta.owners[0]);
	/* The pod's name up to its last '-': no string. */
	assert_null(p->meta.owners[0].name);
	name = kc_owner_name(&p->meta, &p->meta.owners[0], &len);
	assert_int_equal(len, strlen("web-7d9f8c6b5"));
	assert_memory_equal(name, "web-7d9f8c6b5", len);
	assert_null(kc_uid_text(&p->meta.owners[0].uid));
	assert_string_equal(kc_uid_str(&p->meta.owners[0].uid, ub), "0b9f5a2e-7c1d-4e2f-8a3b-9c4d5e6f7a8b");
	/* Not a prefix; an upper-case UUID stays text, in the block. */
	assert_string_equal(p->meta.owners[1].name, "other");
	assert_string_equal(kc_uid_str(&p->meta.owners[1].uid, ub), "0B9F5A2E-7C1D-4E2F-8A3B-9C4D5E6F7A8B");
	assert_true(kc_uid_text(&p->meta.owners[1].uid) > block &&
		    kc_uid_text(&p->meta.owners[1].uid) < block + size);
	/* Longer than the pod's name: text; keys in another order. */
	assert_string_equal(p->meta.owners[2].name, "web-7d9f8c6b5-x2k4q-and-more");
	assert_string_equal(kc_uid_str(&p->meta.owners[2].uid, ub), "owner-uid-3");
	/* Neither name nor UID. */
	assert_string_equal(p->meta.owners[3].name, "");
	assert_string_equal(kc_uid_str(&p->meta.owners[3].uid, ub), "");
	/* A shorter prefix (an indexed Job's pod is <job>-<index>-<suffix>): text. */
	assert_string_equal(p->meta.owners[4].name, "web");
	name = kc_owner_name(&p->meta, &p->meta.owners[4], &len);
	assert_int_equal(len, 3);
	assert_memory_equal(name, "web", 3);
	kc_object_free(p);
}

/*
 * A pod's own UID: a lower-case RFC 9562 UUID is packed into the 16 bytes of
 * meta.uid (its bytes in order, no text in the block); anything else ("uid-7",
 * upper case, another variant) is kept as NUL-terminated text in the block.
 * Either way it comes back byte for byte, in a single object and in a LIST
 * split at every offset (the text goes back to the API server in eviction
 * preconditions and Events).
 */
static void test_pod_uid_packed_or_text(void **state)
{
	static const struct {
		const char *uid;
		bool packed;
	} cases[] = {
		{ "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f", true },
		{ "00000000-0000-0000-8000-000000000000", true },
		{ "ffffffff-ffff-ffff-bfff-ffffffffffff", true },
		{ "uid-7", false },
		{ "5F0C7A3E-1B2D-4C8E-9F10-2A3B4C5D6E7F", false },  /* upper case */
		{ "5f0c7a3e-1b2d-4c8e-7f10-2a3b4c5d6e7f", false },  /* NCS variant */
		{ "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f-", false }, /* one byte too many */
	};
	static const uint8_t want_bytes[16] = { 0x5f, 0x0c, 0x7a, 0x3e, 0x1b, 0x2d, 0x4c, 0x8e,
						0x9f, 0x10, 0x2a, 0x3b, 0x4c, 0x5d, 0x6e, 0x7f };
	struct kc_decode_ctx ctx = { intern, NULL };
	size_t packed_size = 0, text_size = 0;
	char *items = kc_xstrdup(""), *body;
	char ub[KC_UID_BUF];

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		char *json = kc_xasprintf("{\"metadata\":{\"name\":\"p%zu\",\"namespace\":\"n\",\"uid\":\"%s\"}}", i,
					  cases[i].uid);
		char *more = kc_xasprintf("%s%s%s", items, i ? "," : "", json);
		struct kc_pod *p = NULL;
		const char *text, *block;
		size_t size;

		free(items);
		items = more;
		assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, json, strlen(json), (void **)&p, NULL), 0);
		block = (const char *)p;
		size = malloc_usable_size(p);
		text = kc_uid_text(&p->meta.uid);
		assert_string_equal(kc_uid_str(&p->meta.uid, ub), cases[i].uid);
		assert_true(kc_uid_eq_str(&p->meta.uid, cases[i].uid));
		assert_false(kc_uid_eq_str(&p->meta.uid, "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e70"));
		assert_false(kc_uid_is_empty(&p->meta.uid));
		if (cases[i].packed) {
			assert_null(text);
			packed_size = size;
		} else {
			/* In the block, NUL-terminated inside it. */
			assert_non_null(text);
			assert_true(text > block && text + strlen(text) < block + size);
			text_size = size;
		}
		if (i == 0)
			assert_memory_equal(p->meta.uid.b, want_bytes, 16);
		kc_object_free(p);
		free(json);
	}
	/* The same pod with a 36-byte text UID needs 37 more bytes (malloc rounds to 16). */
	assert_true(text_size >= packed_size + 32);

	body = kc_xasprintf("{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[%s]}", items);
	for (size_t k = 0; k <= strlen(body); k++) {
		struct collect c = { .t = &kc_type_pod };
		struct kc_list_decoder *d = kc_list_decoder_new(&kc_type_pod, &ctx, list_cb, &c);

		assert_int_equal(kc_list_decoder_feed(d, body, k), 0);
		assert_int_equal(kc_list_decoder_feed(d, body + k, strlen(body) - k), 0);
		assert_int_equal(kc_list_decoder_finish(d), 0);
		assert_int_equal(c.n, KC_ARRAY_SIZE(cases));
		for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
			char *want = kc_xasprintf("meta n/p%zu uid=%s rv= del=0\n", i, cases[i].uid);

			assert_memory_equal(c.dumps[i], want, strlen(want));
			free(want);
		}
		kc_list_decoder_free(d);
		collect_reset(&c);
	}
	free(body);
	free(items);
}

/* A plainly Healthy device is only its ID; any other has a note, in device order. */
static void test_device_notes(void **state)
{
	static const char json[] =
		"{\"status\":{\"containerStatuses\":[{\"name\":\"c\",\"allocatedResourcesStatus\":[{\"name\":\"x.io/gpu\","
		"\"resources\":[{\"resourceID\":\"g0\",\"health\":\"Healthy\"},"
		"{\"message\":\"XID 79\",\"resourceID\":\"g1\",\"health\":\"Unhealthy\"},"
		"{\"resourceID\":\"g2\",\"health\":\"Healthy\",\"message\":\"recovered\"},"
		"{\"resourceID\":\"g3\"},{\"resourceID\":\"g4\",\"health\":\"Unknown\"},"
		"{\"resourceID\":\"g5\",\"health\":\"Healthy\"}]}]}]}}";
	struct kc_decode_ctx ctx = { intern, NULL };
	const struct kc_resource_status *rs;
	struct kc_pod *p = NULL;
	const char *msg;

	(void)state;
	assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, json, strlen(json), (void **)&p, NULL), 0);
	assert_int_equal(p->n_statuses, 1);
	rs = &p->statuses[0].resources[0];
	assert_int_equal(rs->n_devices, 6);
	assert_true(kc_devid_eq_str(&rs->ids[5], "g5"));
	assert_int_equal(rs->n_notes, 4);
	assert_int_equal(kc_rs_notes(rs)[0].index, 1);
	assert_int_equal(kc_rs_notes(rs)[3].index, 4);
	assert_int_equal(kc_device_health(rs, 0, &msg), KC_HEALTH_HEALTHY);
	assert_string_equal(msg, "");
	assert_int_equal(kc_device_health(rs, 1, &msg), KC_HEALTH_UNHEALTHY);
	assert_string_equal(msg, "XID 79");
	assert_int_equal(kc_device_health(rs, 2, &msg), KC_HEALTH_HEALTHY);
	assert_string_equal(msg, "recovered");
	assert_int_equal(kc_device_health(rs, 3, NULL), KC_HEALTH_UNSET);
	assert_int_equal(kc_device_health(rs, 4, NULL), KC_HEALTH_UNKNOWN);
	assert_int_equal(kc_device_health(rs, 5, NULL), KC_HEALTH_HEALTHY);
	kc_object_free(p);
	/* An entry without devices in a decoder that never saw one: no device vector at all
	 * (the layout once did pointer arithmetic on its NULL storage: UBSan, fuzz_list). */
	{
		static const char empty[] = "{\"status\":{\"containerStatuses\":[{\"name\":\"c\","
					    "\"allocatedResourcesStatus\":[{\"name\":\"x.io/gpu\",\"resources\":[]}]}]}}";
		struct kc_intern *own = kc_intern_new();
		struct kc_decode_ctx fresh = { own, NULL };

		p = NULL;
		assert_int_equal(kc_decode_object(&kc_type_pod, &fresh, empty, strlen(empty), (void **)&p, NULL), 0);
		assert_int_equal(p->statuses[0].n_resources, 1);
		assert_int_equal(p->statuses[0].resources[0].n_devices, 0);
		assert_null(p->statuses[0].resources[0].ids);
		kc_object_free(p);
		kc_intern_free(own);
	}
}

/*
 * Device IDs of every shape dump as the text that came in; UUID-shaped ones are packed
 * in the block (nothing interned for them), the others interned (one pointer per text).
 */
static void test_device_ids(void **state)
{
#define DEV_JSON(a, b)                                                                                    \
	"{\"status\":{\"containerStatuses\":[{\"name\":\"c\",\"allocatedResourcesStatus\":[{\"name\":\"x.io/gpu\"," \
	"\"resources\":[{\"resourceID\":\"GPU-" a "\"},{\"resourceID\":\"MIG-" b "\"},"                         \
	"{\"resourceID\":\"" a "\"},{\"resourceID\":\"GPU-5B2D6B8B-2AD5-B5F7-D3FF-FFA5B24FDAD0\"},"               \
	"{\"resourceID\":\"GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0::3\"},{\"resourceID\":\"0000:3b:00.0\"},{\"resourceID\":\"nvidia0\"},"     \
	"{\"resourceID\":\"\"},{\"resourceID\":\"GPU-" a "\",\"health\":\"Unhealthy\"}]}]}]}}"
	static const char one[] = DEV_JSON("5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0", "00000000-0000-4a5b-8c9d-000000000000");
	static const char two[] = DEV_JSON("00000000-0000-4a5b-8c9d-000000000001", "ffffffff-ffff-ffff-ffff-ffffffffffff");
#undef DEV_JSON
	static const char want[] =
		"meta / uid= rv= del=0\n"
		"pod node= phase=0 prio=0/0 mirror=0\n"
		" status c init=0 ready=0 restarts=0 state=0 crashloop=0 exit=0/0 last exit=0/0\n"
		"  resource x.io/gpu\n"
		"   device GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0 health=0 msg=\n"
		"   device MIG-00000000-0000-4a5b-8c9d-000000000000 health=0 msg=\n"
		"   device 5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0 health=0 msg=\n"
		"   device GPU-5B2D6B8B-2AD5-B5F7-D3FF-FFA5B24FDAD0 health=0 msg=\n"
		"   device GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0::3 health=0 msg=\n"
		"   device 0000:3b:00.0 health=0 msg=\n"
		"   device nvidia0 health=0 msg=\n"
		"   device  health=0 msg=\n"
		"   device GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0 health=2 msg=\n";
	static const enum kc_devid_kind kinds[] = { KC_DEVID_GPU, KC_DEVID_MIG, KC_DEVID_UUID, KC_DEVID_TEXT,
						    KC_DEVID_TEXT, KC_DEVID_TEXT, KC_DEVID_TEXT, KC_DEVID_TEXT,
						    KC_DEVID_GPU };
	struct kc_decode_ctx ctx = { intern, NULL };
	struct kc_pod *a = NULL, *b = NULL;
	const struct kc_resource_status *ra, *rb;
	char *got = decode_dump(&kc_type_pod, NULL, one);
	size_t count;

	(void)state;
	if (strcmp(got, want) != 0)
		fail_msg("--- got\n%s--- want\n%s", got, want);
	free(got);
	assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, one, strlen(one), (void **)&a, NULL), 0);
	count = kc_intern_count(intern);
	/* Other UUIDs, the same other texts: nothing new is interned. */
	assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, two, strlen(two), (void **)&b, NULL), 0);
	assert_int_equal(kc_intern_count(intern), count);
	ra = &a->statuses[0].resources[0];
	rb = &b->statuses[0].resources[0];
	assert_int_equal(ra->n_devices, KC_ARRAY_SIZE(kinds));
	for (uint32_t i = 0; i < ra->n_devices; i++) {
		assert_int_equal(kc_devid_kind(&ra->ids[i]), kinds[i]);
		if (kinds[i] == KC_DEVID_TEXT) {
			assert_ptr_equal(kc_devid_text(&ra->ids[i]), kc_devid_text(&rb->ids[i]));
			assert_true(kc_devid_eq(&ra->ids[i], &rb->ids[i]));
		} else {
			assert_false(kc_devid_eq(&ra->ids[i], &rb->ids[i]));
		}
	}
	assert_true(kc_devid_eq(&ra->ids[0], &ra->ids[8]));
	assert_true(kc_devid_eq_str(&rb->ids[0], "GPU-00000000-0000-4a5b-8c9d-000000000001"));
	/* The packed IDs live in the block. */
	assert_true((const char *)ra->ids > (const char *)a && (const char *)ra->ids < (const char *)a + 4096);
	kc_object_free(a);
	kc_object_free(b);
}

/* A decimal resourceVersion is its own key; any other text is a hash apart from every number. */
static void test_rv_key(void **state)
{
	static const char *const texts[] = { "0123", "abc", "12a", "9223372036854775808", "99999999999999999999",
					     " 1", "1 ", "-1", "ABC" };

	(void)state;
	assert_true(kc_decode_rv_key("", 0) == 0);
	assert_true(kc_decode_rv_key("1", 1) == 1);
	assert_true(kc_decode_rv_key("884213", 6) == 884213);
	assert_true(kc_decode_rv_key("9223372036854775807", 19) == 9223372036854775807ULL);
	for (size_t i = 0; i < KC_ARRAY_SIZE(texts); i++) {
		uint64_t k = kc_decode_rv_key(texts[i], strlen(texts[i]));

		assert_true(k >> 63);
		assert_true(k == kc_decode_rv_key(texts[i], strlen(texts[i])));
		for (size_t j = 0; j < i; j++)
			assert_true(k != kc_decode_rv_key(texts[j], strlen(texts[j])));
	}
}

/* Requests and limits are one list: a limit alone counts, a request wins whatever the key order. */
static void test_requests_and_limits(void **state)
{
	char *got = decode_dump(&kc_type_pod, NULL,
				"{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{"
				"\"limits\":{\"x.io/lim\":\"4\",\"x.io/both\":\"2\"},"
				"\"requests\":{\"x.io/both\":\"1\",\"x.io/req\":\"3\"}}},"
				"{\"name\":\"b\",\"resources\":{\"requests\":{\"x.io/both\":\"1\"},"
				"\"limits\":{\"x.io/both\":\"2\"}}}]}}");

	(void)state;
	assert_string_equal(got, "meta / uid= rv= del=0\n"
				 "pod node= phase=0 prio=0/0 mirror=0\n"
				 " container a init=0 claim=\n"
				 "  req x.io/lim=4\n"
				 "  req x.io/both=1\n"
				 "  req x.io/req=3\n"
				 " container b init=0 claim=\n"
				 "  req x.io/both=1\n");
	free(got);
}

/* ---- events and errors ------------------------------------------------------------------- */

static void test_watch_error_410(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	struct collect c = { .t = &kc_type_pod };
	struct kc_watch_decoder *d = kc_watch_decoder_new(&kc_type_pod, &ctx, 0, watch_cb, &c);
	/* As kube-apiserver sends it, then "object" first with details. */
	const char *s = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
			"\"status\":\"Failure\",\"message\":\"too old resource version: 1 (884000)\","
			"\"reason\":\"Expired\",\"code\":410}}\n"
			"{\"object\":{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"TooManyRequests\","
			"\"code\":429,\"details\":{\"retryAfterSeconds\":3,\"causes\":[{\"reason\":\"x\"}]}},"
			"\"type\":\"ERROR\"}\n";

	(void)state;
	c.stop_after = 1;
	assert_int_equal(kc_watch_decoder_feed(d, s, strlen(s)), 7);
	assert_int_equal(c.types[0], KC_WATCH_ERROR);
	assert_null(c.dumps[0]);
	assert_int_equal(c.status.code, 410);
	assert_string_equal(c.status.status, "Failure");
	assert_string_equal(c.status.reason, "Expired");
	assert_string_equal(c.status.message, "too old resource version: 1 (884000)");
	collect_reset(&c);
	/* The stop dropped the rest of that buffer; the decoder resyncs at a newline. */
	c.stop_after = 0;
	kc_watch_decoder_reset(d);
	s = strchr(s, '\n') + 1;
	assert_int_equal(kc_watch_decoder_feed(d, s, strlen(s)), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.status.code, 429);
	assert_int_equal(c.status.retry_after_s, 3);
	assert_string_equal(c.status.reason, "TooManyRequests");
	assert_string_equal(c.status.message, "");
	collect_reset(&c);
	kc_watch_decoder_free(d);
}

static void test_watch_malformed(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	struct collect c = { .t = &kc_type_node };
	struct kc_watch_decoder *d = kc_watch_decoder_new(&kc_type_node, &ctx, 0, watch_cb, &c);
	const char *good = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"9\"}}}\n";
	static const char *const bad[] = {
		"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n1\"}\n",  /* truncated */
		"{\"type\":\"ADDED\",\"object\":}\n",
		"{\"type\":\"ADDED\"} {\"type\":\"ADDED\"}\n",  /* two values on one line */
		"[1,2,3]\n",
		"42\n",
		"{\"type\":\"ADDED\"}\n",                       /* no object */
		"{\"object\":{}}\n",                            /* no type */
		"{\"type\":\"ADDED\",\"object\":{\"a\":\"\xff\xfe\"}}\n",  /* invalid UTF-8 */
		"nul\n",
	};

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		int r = kc_watch_decoder_feed(d, bad[i], strlen(bad[i]));

		if (r != -EBADMSG)
			fail_msg("bad line %zu: got %d", i, r);
		assert_true(strlen(kc_watch_decoder_error(d)) > 0);
		/* Still usable afterwards. */
		assert_int_equal(kc_watch_decoder_feed(d, good, strlen(good)), 0);
	}
	assert_int_equal(c.n, KC_ARRAY_SIZE(bad));
	for (size_t i = 0; i < c.n; i++)
		assert_string_equal(c.rvs[i], "9");
	collect_reset(&c);
	kc_watch_decoder_free(d);
}

static void test_watch_long_lines(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	struct collect c = { .t = &kc_type_node };
	const char *good = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"9\"}}}\n";
	struct kc_watch_decoder *d = kc_watch_decoder_new(&kc_type_node, &ctx, strlen(good) - 1, watch_cb, &c);
	static const char prefix[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"";
	char longline[400];

	(void)state;
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, prefix, sizeof(prefix) - 1);
	/* Exactly max_line bytes (without the newline) is accepted. */
	assert_int_equal(kc_watch_decoder_feed(d, good, strlen(good)), 0);
	assert_int_equal(c.n, 1);
	/* Over-long: error once, the remainder is discarded as it arrives. */
	assert_int_equal(kc_watch_decoder_feed(d, longline, 50), 0);
	assert_int_equal(kc_watch_decoder_feed(d, longline + 50, 100), -EMSGSIZE);
	assert_non_null(strstr(kc_watch_decoder_error(d), "longer than"));
	assert_int_equal(kc_watch_decoder_feed(d, longline + 150, 250), 0);
	assert_int_equal(kc_watch_decoder_feed(d, "xx\n", 3), 0);
	assert_int_equal(kc_watch_decoder_feed(d, good, strlen(good)), 0);
	assert_int_equal(c.n, 2);
	/* Over-long within one buffer. */
	assert_int_equal(kc_watch_decoder_feed(d, longline, sizeof(longline)), -EMSGSIZE);
	assert_int_equal(kc_watch_decoder_feed(d, "\n", 1), 0);
	assert_int_equal(kc_watch_decoder_feed(d, good, strlen(good)), 0);
	assert_int_equal(c.n, 3);
	collect_reset(&c);
	kc_watch_decoder_free(d);
}

static void test_wrong_types_and_missing(void **state)
{
	char *got;

	(void)state;
	got = decode_dump(&kc_type_pod, NULL, "{}");
	assert_string_equal(got, "meta / uid= rv= del=0\npod node= phase=0 prio=0/0 mirror=0\n");
	free(got);
	got = decode_dump(&kc_type_pod, NULL,
			  "{\"metadata\":{\"name\":5,\"namespace\":null,\"labels\":\"x\",\"annotations\":[1],"
			  "\"ownerReferences\":{\"kind\":\"X\"},\"uid\":{\"a\":[{\"b\":1}]},\"resourceVersion\":\"3\"},"
			  "\"spec\":{\"resourceClaims\":[{\"name\":\"c\"}],\"containers\":\"no\",\"priority\":\"high\",\"nodeName\":[\"n\"],"
			  "\"terminationGracePeriodSeconds\":1.5,\"initContainers\":[1,\"a\",null,[],"
			  "{\"name\":\"i\",\"resources\":{\"limits\":{\"x.io/y\":2,\"a.io/b\":\"3\"},"
			  "\"claims\":[{\"name\":7},\"gpu\",{\"name\":\"c\"},{\"name\":\"d\"}]}}]},"
			  "\"status\":{\"phase\":7,\"containerStatuses\":[{\"restartCount\":\"7\",\"name\":[\"x\"],"
			  "\"ready\":\"true\","
			  "\"state\":{\"waiting\":\"now\",\"running\":[],\"terminated\":{\"exitCode\":\"1\"}}}, 5],"
			  "\"conditions\":{\"type\":\"Ready\"}}, \"extra\":[[[[{}]]]]}");
	assert_string_equal(got, "meta / uid= rv=3 del=0\n"
				 "pod node= phase=0 prio=0/0 mirror=0\n"
				 " container i init=1 claim=c\n"
				 "  req a.io/b=3\n"
				 " status  init=0 ready=0 restarts=0 state=3 crashloop=0 exit=0/0 last exit=0/0\n"
				 " claim c -> \n");
	free(got);
	/* Wrong root types and broken documents are errors, never crashes. */
	{
		static const char *const bad[] = { "[]", "\"pod\"", "", "{", "{\"a\":1}}", "{\"a\" 1}", "{} {}" };
		struct kc_decode_ctx ctx = { intern, NULL };

		for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
			struct kc_error err = { "" };
			void *obj = NULL;

			assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, bad[i], strlen(bad[i]), &obj, &err),
					 -EBADMSG);
			assert_null(obj);
			assert_true(strlen(err.msg) > 0);
		}
	}
}

static void test_non_ascii_and_options(void **state)
{
	static const char *const keep_labels[] = { "app", "ünïcode/ключ", NULL };
	static const char *const keep_annots[] = { "team", NULL };
	struct kc_decode_opts o = { .keep_labels = keep_labels, .keep_annotations = keep_annots, .max_message = 10 };
	char *got = decode_dump(&kc_type_pod, &o,
				"{\"metadata\":{\"name\":\"pöd-日本\",\"namespace\":\"ns\\u00e9\","
				"\"labels\":{\"app\":\"trainé\",\"drop\":\"x\",\"ünïcode/ключ\":\"значение\"},"
				"\"annotations\":{\"team\":\"ml\",\"other\":\"y\",\"kubernetes.io/config.mirror\":\"abc\"},"
				"\"deletionTimestamp\":\"2026-11-27T01:02:03Z\"},"
				"\"spec\":{\"priority\":-5,\"restartPolicy\":\"Never\"},"
				"\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
				"\"containerStatuses\":[{\"name\":\"c\",\"allocatedResourcesStatus\":[{\"name\":\"x.io/gpu\","
				"\"resources\":[{\"resourceID\":\"g\",\"health\":\"Unhealthy\",\"message\":\"ééééééé\"}]}]}]}}");

	(void)state;
	/* The message is cut at 10 bytes without splitting a character. */
	assert_string_equal(got, "meta nsé/pöd-日本 uid= rv= del=1\n"
				 " label app=trainé\n"
				 " label ünïcode/ключ=значение\n"
				 " annot team=ml\n"
				 "pod node= phase=0 prio=1/-5 mirror=1\n"
				 " status c init=0 ready=0 restarts=0 state=0 crashloop=0 exit=0/0 last exit=0/0\n"
				 "  resource x.io/gpu\n"
				 "   device g health=2 msg=ééééé\n");
	free(got);
}

static void test_quantities(void **state)
{
	char *got;

	(void)state;
	got = decode_dump(&kc_type_node, NULL,
			  "{\"status\":{\"capacity\":{\"a/k\":\"1k\",\"a/ki\":\"2Ki\",\"a/m\":\"3M\",\"a/mi\":\"1Mi\","
			  "\"a/g\":\"1G\",\"a/gi\":\"1Gi\",\"a/e\":\"9E\",\"a/big\":\"9223372036854775807\","
			  "\"a/frac\":\"1.5\",\"a/milli\":\"500m\",\"a/exp\":\"1e3\",\"a/neg\":\"-1\",\"a/over\":\"16Ei\","
			  "\"a/empty\":\"\",\"a/plus\":\"+4\",\"cpu\":\"4\",\"a/kk\":\"1kk\"}}}");
	assert_string_equal(got, "meta / uid= rv= del=0\nnode unschedulable=0\n"
				 "  capacity a/k=1000\n"
				 "  capacity a/ki=2048\n"
				 "  capacity a/m=3000000\n"
				 "  capacity a/mi=1048576\n"
				 "  capacity a/g=1000000000\n"
				 "  capacity a/gi=1073741824\n"
				 "  capacity a/e=9000000000000000000\n"
				 "  capacity a/big=9223372036854775807\n"
				 "  capacity a/plus=4\n");
	free(got);
}

static void test_bounds(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	struct kc_error err = { "" };
	void *obj = NULL;
	size_t n = 20000, len = 0;
	char *json = kc_xmalloc(n * 16 + 64);

	(void)state;
	/* More owner references than any vector may hold: -EMSGSIZE, no crash. */
	len += (size_t)sprintf(json, "{\"metadata\":{\"ownerReferences\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(json + len, "%s{}", i ? "," : "");
	len += (size_t)sprintf(json + len, "]}}");
	assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, json, len, &obj, &err), -EMSGSIZE);
	assert_null(obj);
	assert_non_null(strstr(err.msg, "elements"));
	/* 256 fit a vector but not kc_meta's 8-bit count: the first 255 are kept (a refused
	 * object would fail its whole LIST or watch); a controller past them is not seen. */
	for (size_t k = 255; k <= 256; k++) {
		len = (size_t)sprintf(json, "{\"metadata\":{\"ownerReferences\":[");
		for (size_t i = 0; i < k; i++)
			len += (size_t)sprintf(json + len, "%s{%s}", i ? "," : "", i == k - 1 ? "\"controller\":true" : "");
		len += (size_t)sprintf(json + len, "]}}");
		assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, json, len, &obj, &err), 0);
		assert_int_equal(((struct kc_pod *)obj)->meta.n_owners, 255);
		if (k == 256)
			assert_null(kc_meta_controller(obj));
		else
			assert_ptr_equal(kc_meta_controller(obj), &((struct kc_pod *)obj)->meta.owners[254]);
		kc_object_free(obj);
		obj = NULL;
	}
	/* ... so such a pod in a LIST does not fail the page: the pods around it arrive too. */
	{
		struct collect c = { .t = &kc_type_pod };
		struct kc_list_decoder *d = kc_list_decoder_new(&kc_type_pod, &ctx, list_cb, &c);

		len = (size_t)sprintf(json, "{\"items\":[{\"metadata\":{\"name\":\"a\"}},"
					  "{\"metadata\":{\"name\":\"b\",\"ownerReferences\":[");
		for (size_t i = 0; i < 300; i++)
			len += (size_t)sprintf(json + len, "%s{}", i ? "," : "");
		len += (size_t)sprintf(json + len, "]}},{\"metadata\":{\"name\":\"c\"}}]}");
		assert_int_equal(kc_list_decoder_feed(d, json, len), 0);
		assert_int_equal(kc_list_decoder_finish(d), 0);
		assert_int_equal(kc_list_decoder_items(d), 3);
		kc_list_decoder_free(d);
		collect_reset(&c);
	}
	/* Over the vector bound, in a LIST: left out (the old decoder failed the whole page with
	 * -EMSGSIZE, so anybody could blind the pod cache with one pod); the others arrive. */
	{
		struct collect c = { .t = &kc_type_pod };
		struct kc_list_decoder *d = kc_list_decoder_new(&kc_type_pod, &ctx, list_cb, &c);

		len = (size_t)sprintf(json, "{\"items\":[{\"metadata\":{\"name\":\"a\"}},"
					  "{\"metadata\":{\"name\":\"b\",\"ownerReferences\":[");
		for (size_t i = 0; i < n; i++)
			len += (size_t)sprintf(json + len, "%s{}", i ? "," : "");
		len += (size_t)sprintf(json + len, "]}},{\"metadata\":{\"name\":\"c\"}}]}");
		assert_int_equal(kc_list_decoder_feed(d, json, len), 0);
		assert_int_equal(kc_list_decoder_finish(d), 0);
		assert_int_equal(kc_list_decoder_items(d), 2);
		assert_int_equal(kc_list_decoder_skipped(d), 1);
		assert_int_equal(c.n, 2);
		assert_non_null(strstr(c.dumps[0], "meta /a "));
		assert_non_null(strstr(c.dumps[1], "meta /c "));
		kc_list_decoder_free(d);
		collect_reset(&c);
	}
	/* ... and in a watch: the event becomes the object's deletion, so no stale copy stays
	 * cached; the stream goes on. */
	{
		struct collect c = { .t = &kc_type_pod };
		struct kc_watch_decoder *w = kc_watch_decoder_new(&kc_type_pod, &ctx, 0, watch_cb, &c);

		len = (size_t)sprintf(json, "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\","
					  "\"namespace\":\"ns\",\"resourceVersion\":\"7\",\"ownerReferences\":[");
		for (size_t i = 0; i < n; i++)
			len += (size_t)sprintf(json + len, "%s{}", i ? "," : "");
		len += (size_t)sprintf(json + len, "]}}}\n{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"d\"}}}\n");
		assert_int_equal(kc_watch_decoder_feed(w, json, len), 0);
		assert_int_equal(c.n, 2);
		assert_int_equal(c.types[0], KC_WATCH_DELETED);
		assert_true(c.oversized[0]);  /* what the reflector counts (oversized_objects_total) */
		assert_string_equal(c.rvs[0], "7");
		assert_non_null(strstr(c.dumps[0], "meta ns/b "));
		assert_null(strstr(c.dumps[0], "owner"));
		assert_int_equal(c.types[1], KC_WATCH_ADDED);
		assert_false(c.oversized[1]);
		assert_non_null(strstr(c.dumps[1], "meta /d "));
		kc_watch_decoder_free(w);
		collect_reset(&c);
	}
	free(json);
	/* A pod keeps at most 255 containers (its counts are 8 bits): of 256 with a device the
	 * first 255 are kept, and 256 of which the device predicate keeps none decode. */
	for (int devices = 1; devices >= 0; devices--) {
		struct kc_decode_opts o = { .is_device = listed_device, .device_userdata = (void *)gpu_only };

		ctx.opts = devices ? NULL : &o;
		json = kc_xmalloc(256 * 80 + 64);
		len = (size_t)sprintf(json, "{\"spec\":{\"containers\":[");
		for (int i = 0; i < 256; i++)
			len += (size_t)sprintf(json + len, "%s{\"name\":\"c%d\",\"resources\":{\"limits\":{\"x.io/y\":\"1\"}}}",
					       i ? "," : "", i);
		len += (size_t)sprintf(json + len, "]}}");
		assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, json, len, &obj, &err), 0);
		assert_int_equal(((struct kc_pod *)obj)->n_containers, devices ? 255 : 0);
		if (devices)
			assert_string_equal(((struct kc_pod *)obj)->containers[254].name, "c254");
		kc_object_free(obj);
		obj = NULL;
		free(json);
	}
}


static void test_list_token_bound(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	struct collect c = { .t = &kc_type_pod };
	struct kc_list_decoder *d = kc_list_decoder_new(&kc_type_pod, &ctx, list_cb, &c);
	char *chunk = kc_xmalloc(64 * 1024);
	int r = 0;

	(void)state;
	memset(chunk, 'a', 64 * 1024);
	assert_int_equal(kc_list_decoder_feed(d, "{\"items\":[{\"metadata\":{\"name\":\"", 31), 0);
	/* A string that never ends: refused once past the token bound, not buffered forever. */
	for (int i = 0; i < 200 && r == 0; i++)
		r = kc_list_decoder_feed(d, chunk, 64 * 1024);
	assert_int_equal(r, -EMSGSIZE);
	assert_non_null(strstr(kc_list_decoder_error(d), "token"));
	assert_int_equal(kc_list_decoder_finish(d), -EMSGSIZE);
	kc_list_decoder_free(d);
	free(chunk);
}

static int free_event_cb(struct kc_watch_event *ev, void *ud)
{
	(void)ud;
	(void)ev;
	return 0;
}

/* Random byte flips, insertions and truncations of every fixture through
 * all three entry points: errors are fine, crashes and leaks are not (run
 * this under the sanitizers). */
static void test_mutations(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	static const char tokens[] = "{}[]\",:0-.e\\ntfu \n";
	uint64_t x = 0x2545F4914F6CDD1DULL;

	(void)state;
	for (size_t f = 0; f < KC_ARRAY_SIZE(fixtures); f++) {
		size_t len;
		char *orig = fixture(fixtures[f].file, &len);
		char *buf = kc_xmalloc(len + 16);

		for (int iter = 0; iter < 1500; iter++) {
			size_t n = len;
			void *obj = NULL;
			struct kc_list_decoder *ld;
			struct kc_watch_decoder *wd;
			char *wrapped;

			memcpy(buf, orig, len);
			for (int m = 0; m < 1 + iter % 4; m++) {
				size_t at;

				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				at = (size_t)(x % n);
				if (x >> 62 == 0)
					n = at;  /* truncate */
				else
					buf[at] = tokens[(x >> 8) % (sizeof(tokens) - 1)];
				if (n == 0)
					break;
			}
			if (kc_decode_object(fixtures[f].t, &ctx, buf, n, &obj, NULL) == 0)
				kc_object_free(obj);
			ld = kc_list_decoder_new(fixtures[f].t, &ctx, drop_item, NULL);
			wrapped = kc_xasprintf("{\"items\":[%.*s]}", (int)n, buf);
			kc_list_decoder_feed(ld, wrapped, strlen(wrapped) / 2);
			kc_list_decoder_feed(ld, wrapped + strlen(wrapped) / 2, strlen(wrapped) - strlen(wrapped) / 2);
			kc_list_decoder_finish(ld);
			kc_list_decoder_free(ld);
			free(wrapped);
			wd = kc_watch_decoder_new(fixtures[f].t, &ctx, 4096, free_event_cb, NULL);
			wrapped = kc_xasprintf("{\"type\":\"MODIFIED\",\"object\":%.*s}\n", (int)n, buf);
			kc_watch_decoder_feed(wd, wrapped, strlen(wrapped) / 3);
			kc_watch_decoder_feed(wd, wrapped + strlen(wrapped) / 3, strlen(wrapped) - strlen(wrapped) / 3);
			kc_watch_decoder_free(wd);
			free(wrapped);
		}
		free(buf);
		free(orig);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures_exact),
		cmocka_unit_test(test_one_block_and_interning),
		cmocka_unit_test(test_list_every_split),
		cmocka_unit_test(test_list_byte_by_byte_and_abort),
		cmocka_unit_test(test_watch_every_split),
		cmocka_unit_test(test_opts_change_between_objects),
		cmocka_unit_test(test_keep_only_devices),
		cmocka_unit_test(test_keep_node_conditions),
		cmocka_unit_test(test_container_claims),
		cmocka_unit_test(test_owners_and_uids),
		cmocka_unit_test(test_pod_uid_packed_or_text),
		cmocka_unit_test(test_requests_and_limits),
		cmocka_unit_test(test_rv_key),
		cmocka_unit_test(test_device_notes),
		cmocka_unit_test(test_device_ids),
		cmocka_unit_test(test_watch_error_410),
		cmocka_unit_test(test_watch_malformed),
		cmocka_unit_test(test_watch_long_lines),
		cmocka_unit_test(test_wrong_types_and_missing),
		cmocka_unit_test(test_non_ascii_and_options),
		cmocka_unit_test(test_quantities),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_list_token_bound),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
