/*
 * `make bench [BENCH_ARGS="nodes pods"]`: measures the hot path in-process on
 * a generated, realistic cluster (default 5000 nodes, 150000 pods): LIST
 * decode throughput (pages of 500 pods fed in 16 KB chunks into the list
 * decoder and the store), jansson's tree parse of the same pages for
 * comparison, CPU time per watch event (MODIFIED pods: decode + store
 * replace), memory per cached pod, and peak RSS.  JSON generation is not
 * timed.  Pod documents look like what kube-apiserver returns: managedFields,
 * env, volumes, probes, tolerations, conditions, containerStatuses with
 * allocatedResourcesStatus.  Then the decision core over those caches: the
 * full evaluation at sync, CPU per pod event that changes nothing, and the
 * wall-clock time of one node event that
 * marks every pod on a node unhealthy (this used to be an assertion in
 * test_core.c, where a loaded CI machine could fail it).
 */
#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core.h"
#include "kc_decode.h"
#include "kc_intern.h"
#include "kc_store.h"
#include "kc_util.h"

#define PAGE 500
#define CHUNK (16 * 1024)

/* ---- a growable string for generation ---------------------------------------- */

struct sb {
	char *p;
	size_t len, cap;
};

static void KC_PRINTF(2, 3) ap(struct sb *b, const char *fmt, ...)
{
	va_list a;
	int n;

	for (;;) {
		va_start(a, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, a);
		va_end(a);
		if (n >= 0 && (size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap ? b->cap * 2 : 1 << 20;
		b->p = kc_xrealloc(b->p, b->cap);
	}
	b->len += (size_t)n;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void uid(char out[37])
{
	uint64_t a = rnd(), b = rnd();

	snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
		 (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff, (unsigned long long)(b & 0xffffffffffffULL));
}

static const char managed_fields[] =
	"{\"manager\":\"kube-controller-manager\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
	"\"time\":\"2026-11-20T09:59:00Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":"
	"{\"f:generateName\":{},\"f:labels\":{\".\":{},\"f:app\":{},\"f:pod-template-hash\":{},\"f:team\":{},"
	"\"f:tier\":{},\"f:version\":{}},\"f:ownerReferences\":{\".\":{},\"k:{\\\"uid\\\":\\\"0b9f5a2e\\\"}\":{}}},"
	"\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"trainer\\\"}\":{\".\":{},\"f:args\":{},\"f:command\":{},"
	"\"f:env\":{\".\":{},\"k:{\\\"name\\\":\\\"NCCL_DEBUG\\\"}\":{\".\":{},\"f:name\":{},\"f:value\":{}},"
	"\"k:{\\\"name\\\":\\\"OMP_NUM_THREADS\\\"}\":{\".\":{},\"f:name\":{},\"f:value\":{}}},\"f:image\":{},"
	"\"f:imagePullPolicy\":{},\"f:livenessProbe\":{\".\":{},\"f:failureThreshold\":{},\"f:httpGet\":{\".\":{},"
	"\"f:path\":{},\"f:port\":{},\"f:scheme\":{}},\"f:periodSeconds\":{}},\"f:name\":{},\"f:ports\":{},"
	"\"f:resources\":{\".\":{},\"f:limits\":{\".\":{},\"f:cpu\":{},\"f:memory\":{},\"f:nvidia.com/gpu\":{}},"
	"\"f:requests\":{\".\":{},\"f:cpu\":{},\"f:memory\":{},\"f:nvidia.com/gpu\":{}}},\"f:volumeMounts\":{}}},"
	"\"f:dnsPolicy\":{},\"f:enableServiceLinks\":{},\"f:restartPolicy\":{},\"f:schedulerName\":{},"
	"\"f:securityContext\":{},\"f:terminationGracePeriodSeconds\":{},\"f:tolerations\":{},\"f:volumes\":{}}}},"
	"{\"manager\":\"kubelet\",\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"2026-11-27T01:02:03Z\","
	"\"fieldsType\":\"FieldsV1\",\"subresource\":\"status\",\"fieldsV1\":{\"f:status\":{\"f:conditions\":{"
	"\"k:{\\\"type\\\":\\\"ContainersReady\\\"}\":{\".\":{},\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{},"
	"\"f:status\":{},\"f:type\":{}},\"k:{\\\"type\\\":\\\"Initialized\\\"}\":{\".\":{},\"f:lastProbeTime\":{},"
	"\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}},\"k:{\\\"type\\\":\\\"Ready\\\"}\":{\".\":{},"
	"\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}}},"
	"\"f:containerStatuses\":{},\"f:hostIP\":{},\"f:hostIPs\":{},\"f:phase\":{},\"f:podIP\":{},\"f:podIPs\":{"
	"\".\":{},\"k:{\\\"ip\\\":\\\"10.244.1.17\\\"}\":{\".\":{},\"f:ip\":{}}},\"f:startTime\":{}}}}";

static void gen_container(struct sb *b, const char *name, int gpus, int i)
{
	ap(b, "{\"name\":\"%s\",\"image\":\"registry.example/ml/%s:1.%d\",\"command\":[\"/bin/%s\"],"
	      "\"args\":[\"--config=/etc/%s/config.yaml\",\"--port=8080\",\"--verbose\"],"
	      "\"ports\":[{\"name\":\"http\",\"containerPort\":8080,\"protocol\":\"TCP\"}],"
	      "\"env\":[{\"name\":\"NCCL_DEBUG\",\"value\":\"INFO\"},{\"name\":\"OMP_NUM_THREADS\",\"value\":\"8\"},"
	      "{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{\"apiVersion\":\"v1\",\"fieldPath\":\"metadata.name\"}}},"
	      "{\"name\":\"POD_NAMESPACE\",\"valueFrom\":{\"fieldRef\":{\"apiVersion\":\"v1\",\"fieldPath\":\"metadata.namespace\"}}}],"
	      "\"resources\":{\"limits\":{\"cpu\":\"8\",\"memory\":\"64Gi\"%s},"
	      "\"requests\":{\"cpu\":\"%dm\",\"memory\":\"%dMi\"%s}},"
	      "\"volumeMounts\":[{\"name\":\"config\",\"mountPath\":\"/etc/%s\",\"readOnly\":true},"
	      "{\"name\":\"kube-api-access-x7k2p\",\"readOnly\":true,\"mountPath\":\"/var/run/secrets/kubernetes.io/serviceaccount\"}],"
	      "\"livenessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":8080,\"scheme\":\"HTTP\"},"
	      "\"timeoutSeconds\":1,\"periodSeconds\":10,\"successThreshold\":1,\"failureThreshold\":3},"
	      "\"terminationMessagePath\":\"/dev/termination-log\",\"terminationMessagePolicy\":\"File\","
	      "\"imagePullPolicy\":\"IfNotPresent\"}",
	   name, name, i % 10, name, name, gpus ? ",\"nvidia.com/gpu\":\"2\"" : "", 500 + i % 7 * 100, 256 << (i % 4),
	   gpus ? ",\"nvidia.com/gpu\":\"2\"" : "", name);
}

static void gen_status(struct sb *b, const char *name, int gpus, int restarts, int i, int node)
{
	ap(b, "{\"name\":\"%s\",\"state\":{\"running\":{\"startedAt\":\"2026-11-20T10:00:00Z\"}},"
	      "\"lastState\":{%s},\"ready\":true,\"restartCount\":%d,\"image\":\"registry.example/ml/%s:1.%d\","
	      "\"imageID\":\"registry.example/ml/%s@sha256:3c1e0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a\","
	      "\"containerID\":\"containerd://%016llx\",\"started\":true",
	   name,
	   restarts ? "\"terminated\":{\"exitCode\":139,\"reason\":\"Error\",\"startedAt\":\"2026-11-27T01:00:00Z\","
		      "\"finishedAt\":\"2026-11-27T01:02:03Z\",\"containerID\":\"containerd://3c1e\"}"
		    : "",
	   restarts, name, i % 10, name, (unsigned long long)rnd());
	if (gpus)
		ap(b, ",\"allocatedResourcesStatus\":[{\"name\":\"nvidia.com/gpu\",\"resources\":["
		      "{\"resourceID\":\"GPU-%08x-6f5e-4d3c-b2a1-0f9e8d7c6b5a\",\"health\":\"Healthy\"},"
		      "{\"resourceID\":\"GPU-%08x-5a6b-7c8d-9e0f-a1b2c3d4e5f6\",\"health\":\"Healthy\"}]}]",
		   (unsigned)node * 8 + (unsigned)(i % 4) * 2, (unsigned)node * 8 + (unsigned)(i % 4) * 2 + 1);
	ap(b, ",\"volumeMounts\":[{\"name\":\"kube-api-access-x7k2p\",\"mountPath\":"
	      "\"/var/run/secrets/kubernetes.io/serviceaccount\",\"readOnly\":true,\"recursiveReadOnly\":\"Disabled\"}]}");
}

/* One pod, as kube-apiserver serializes it (about 7-9 KB). */
static void gen_pod(struct sb *b, int i, int nodes, int rv, int restarts)
{
	static const char *const names[] = { "trainer", "sidecar", "log-shipper" };
	int deploy = i / 10, ncont = 2 + i % 2;
	char u[37], ou[37];

	uid(u);
	snprintf(ou, sizeof(ou), "%08x-7c1d-4e2f-8a3b-9c4d5e6f7a8b", (unsigned)deploy);
	ap(b, "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"app-%d-7d9f8c6b5-%05d\","
	      "\"generateName\":\"app-%d-7d9f8c6b5-\",\"namespace\":\"team-%d\",\"uid\":\"%s\","
	      "\"resourceVersion\":\"%d\",\"creationTimestamp\":\"2026-11-20T09:59:00Z\","
	      "\"labels\":{\"app\":\"app-%d\",\"pod-template-hash\":\"7d9f8c6b5\",\"team\":\"team-%d\","
	      "\"tier\":\"%s\",\"version\":\"v1.%d\",\"app.kubernetes.io/managed-by\":\"helm\"},"
	      "\"annotations\":{\"kubectl.kubernetes.io/restartedAt\":\"2026-11-20T09:58:00Z\","
	      "\"prometheus.io/scrape\":\"true\",\"prometheus.io/port\":\"9090\"},"
	      "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"app-%d-7d9f8c6b5\","
	      "\"uid\":\"%s\",\"controller\":true,\"blockOwnerDeletion\":true}],\"managedFields\":[%s]},",
	   deploy, i, deploy, deploy % 100, u, rv, deploy, deploy % 100, i % 3 ? "backend" : "frontend", deploy % 7,
	   deploy, ou, managed_fields);
	ap(b, "\"spec\":{\"volumes\":[{\"name\":\"config\",\"configMap\":{\"name\":\"app-%d-config\",\"defaultMode\":420}},"
	      "{\"name\":\"kube-api-access-x7k2p\",\"projected\":{\"sources\":[{\"serviceAccountToken\":"
	      "{\"expirationSeconds\":3607,\"path\":\"token\"}},{\"configMap\":{\"name\":\"kube-root-ca.crt\","
	      "\"items\":[{\"key\":\"ca.crt\",\"path\":\"ca.crt\"}]}},{\"downwardAPI\":{\"items\":[{\"path\":\"namespace\","
	      "\"fieldRef\":{\"apiVersion\":\"v1\",\"fieldPath\":\"metadata.namespace\"}}]}}],\"defaultMode\":420}}],"
	      "\"containers\":[",
	   deploy);
	for (int c = 0; c < ncont; c++) {
		if (c)
			ap(b, ",");
		gen_container(b, names[c], c == 0, i);
	}
	ap(b, "],\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":\"ClusterFirst\","
	      "\"serviceAccountName\":\"default\",\"serviceAccount\":\"default\",\"nodeName\":\"gpu-node-%d\","
	      "\"securityContext\":{},\"schedulerName\":\"default-scheduler\",\"tolerations\":["
	      "{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"},"
	      "{\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\",\"effect\":\"NoExecute\",\"tolerationSeconds\":300},"
	      "{\"key\":\"node.kubernetes.io/unreachable\",\"operator\":\"Exists\",\"effect\":\"NoExecute\",\"tolerationSeconds\":300}],"
	      "\"priority\":0,\"enableServiceLinks\":true,\"preemptionPolicy\":\"PreemptLowerPriority\"},",
	   i % nodes);
	ap(b, "\"status\":{\"phase\":\"Running\",\"conditions\":["
	      "{\"type\":\"PodReadyToStartContainers\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T10:00:00Z\"},"
	      "{\"type\":\"Initialized\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T09:59:00Z\"},"
	      "{\"type\":\"Ready\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T10:00:05Z\"},"
	      "{\"type\":\"ContainersReady\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T10:00:05Z\"},"
	      "{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T09:59:00Z\"}],"
	      "\"hostIP\":\"10.0.%d.%d\",\"hostIPs\":[{\"ip\":\"10.0.%d.%d\"}],\"podIP\":\"10.244.%d.%d\","
	      "\"podIPs\":[{\"ip\":\"10.244.%d.%d\"}],\"startTime\":\"2026-11-20T09:59:00Z\",\"containerStatuses\":[",
	   i % nodes / 256, i % nodes % 256, i % nodes / 256, i % nodes % 256, i / 256 % 256, i % 256, i / 256 % 256,
	   i % 256);
	for (int c = 0; c < ncont; c++) {
		if (c)
			ap(b, ",");
		gen_status(b, names[c], c == 0, c == 0 ? restarts : 0, i, i % nodes);
	}
	ap(b, "],\"qosClass\":\"Burstable\"}}");
}

static void gen_node_xid(struct sb *b, int i, int rv, bool xid)
{
	char u[37];

	uid(u);
	ap(b, "{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"gpu-node-%d\",\"uid\":\"%s\","
	      "\"resourceVersion\":\"%d\",\"labels\":{\"kubernetes.io/hostname\":\"gpu-node-%d\","
	      "\"kubernetes.io/arch\":\"amd64\",\"kubernetes.io/os\":\"linux\",\"node.kubernetes.io/instance-type\":\"p5.48xlarge\","
	      "\"topology.kubernetes.io/zone\":\"zone-%d\",\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\","
	      "\"nvidia.com/gpu.count\":\"8\"},\"annotations\":{\"node.alpha.kubernetes.io/ttl\":\"0\","
	      "\"volumes.kubernetes.io/controller-managed-attach-detach\":\"true\"},\"managedFields\":[%s]},"
	      "\"spec\":{\"podCIDR\":\"10.244.%d.0/24\",\"taints\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"present\","
	      "\"effect\":\"NoSchedule\"}]},\"status\":{\"capacity\":{\"cpu\":\"192\",\"memory\":\"2063727476Ki\","
	      "\"pods\":\"110\",\"nvidia.com/gpu\":\"8\",\"ephemeral-storage\":\"3750771692Ki\",\"hugepages-1Gi\":\"0\"},"
	      "\"allocatable\":{\"cpu\":\"191500m\",\"memory\":\"2061527476Ki\",\"pods\":\"110\",\"nvidia.com/gpu\":\"8\","
	      "\"ephemeral-storage\":\"3456779345453\",\"hugepages-1Gi\":\"0\"},\"conditions\":[",
	   i, u, rv, i, i % 3, managed_fields, i % 256);
	static const char *const conds[] = { "MemoryPressure", "DiskPressure", "PIDPressure", "Ready", "GPUXIDErrors" };
	for (int c = 0; c < 5; c++)
		ap(b, "%s{\"type\":\"%s\",\"status\":\"%s\",\"lastHeartbeatTime\":\"2026-11-27T01:02:00Z\","
		      "\"lastTransitionTime\":\"2026-11-01T00:00:00Z\",\"reason\":\"Kubelet%s\",\"message\":\"kubelet has no %s\"}",
		   c ? "," : "", conds[c], c == 3 || (c == 4 && xid) ? "True" : "False", conds[c], conds[c]);
	ap(b, "],\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.%d.%d\"},{\"type\":\"Hostname\","
	      "\"address\":\"gpu-node-%d\"}],\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":10250}},"
	      "\"nodeInfo\":{\"machineID\":\"%s\",\"kernelVersion\":\"6.1.0\",\"osImage\":\"Debian GNU/Linux 12\","
	      "\"containerRuntimeVersion\":\"containerd://1.7.20\",\"kubeletVersion\":\"v1.34.1\"}}}",
	   i / 256, i % 256, i, u);
}

static void gen_node(struct sb *b, int i, int rv)
{
	gen_node_xid(b, i, rv, false);
}

/* ---- measurement ------------------------------------------------------------------ */

static double now_s(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sink {
	struct kc_store *store;
};

static int put_cb(void *obj, void *ud)
{
	struct sink *s = ud;

	kc_store_put(s->store, obj, NULL);
	return 0;
}

static int drop_cb(void *obj, void *ud)
{
	(void)ud;
	free(obj);
	return 0;
}

static int watch_cb(struct kc_watch_event *ev, void *ud)
{
	struct sink *s = ud;

	if (ev->object) {
		kc_store_put(s->store, ev->object, NULL);
		ev->object = NULL;
	}
	return 0;
}

static int take_cb(struct kc_watch_event *ev, void *ud)
{
	*(void **)ud = ev->object;
	ev->object = NULL;
	return 0;
}

static void feed_list(struct kc_list_decoder *d, const char *p, size_t len)
{
	for (size_t off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;

		if (kc_list_decoder_feed(d, p + off, n) != 0) {
			fprintf(stderr, "bench: list decode failed: %s\n", kc_list_decoder_error(d));
			exit(1);
		}
	}
	if (kc_list_decoder_finish(d) != 0) {
		fprintf(stderr, "bench: list decode failed: %s\n", kc_list_decoder_error(d));
		exit(1);
	}
}

static void gen_page(struct sb *b, int first, int n, int nodes, int total, bool pods)
{
	b->len = 0;
	ap(b, "{\"kind\":\"%sList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"1000000\"%s},\"items\":[",
	   pods ? "Pod" : "Node", first + n < total ? ",\"continue\":\"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTAwMDAwMH0\"" : "");
	for (int i = first; i < first + n; i++) {
		if (i > first)
			ap(b, ",");
		if (pods)
			gen_pod(b, i, nodes, 100000 + i, i % 17 == 0);
		else
			gen_node(b, i, 500000 + i);
	}
	ap(b, "]}");
}

/* The decoder keeps the containers and statuses of devices under the policy, as in the daemon. */
static bool is_device(const char *resource, void *ud)
{
	return policy_is_device_resource(ud, resource);
}

/* Nodes keep only the condition types the policy reads, as in the daemon. */
static bool keep_condition(const char *type, void *ud)
{
	return policy_reads_node_condition(ud, type);
}

struct pod_list {
	const struct kc_pod **v;
	size_t n;
};

static int collect_cb(const void *obj, void *ud)
{
	struct pod_list *pl = ud;

	if (pl->n == 20000)
		return 1;
	if (pl->n % 1024 == 0)
		pl->v = kc_xrealloc(pl->v, (pl->n + 1024) * sizeof(*pl->v));
	pl->v[pl->n++] = obj;
	return 0;
}

static size_t usable_sum;

static int usable_cb(const void *obj, void *ud)
{
	(void)ud;
	usable_sum += malloc_usable_size((void *)obj);
	return 0;
}

int main(int argc, char **argv)
{
	int nodes = argc > 1 ? atoi(argv[1]) : 5000;
	int pods = argc > 2 ? atoi(argv[2]) : 150000;
	struct kc_intern *in = kc_intern_new();
	static const char yaml[] =
	    "apiVersion: device-descheduler/v1alpha1\nkind: DeviceDeschedulerPolicy\n"
	    "signals: {nodeConditions: [{type: GPUXIDErrors, status: \"True\"}]}\n"
	    "eviction: {limits: {maxTotal: 0, maxInFlight: 0}}\n";
	struct policy *p = NULL;
	struct kc_error err;
	/* Decoded as the daemon does with this policy: its selector reads no pod label
	 * (policy_label_keys_new), only the annotations the core reads are kept, only
	 * the containers and statuses of its devices, and only the node conditions it reads. */
	static const char *const no_labels[] = { NULL };
	struct kc_decode_opts opts = { .keep_labels = no_labels, .keep_annotations = core_keep_annotations,
				       .is_device = is_device, .keep_condition = keep_condition };
	struct kc_decode_ctx ctx = { in, &opts };
	struct sink pod_sink = { kc_store_new(&kc_type_pod) }, node_sink = { kc_store_new(&kc_type_node) };
	struct sb b = { NULL, 0, 0 };
	double t_dec = 0, bytes = 0, node_t = 0, node_bytes = 0;
	struct mallinfo2 m0, m1;
	struct rusage ru;

	if (nodes <= 0 || pods <= 0) {
		fprintf(stderr, "usage: bench [nodes pods]\n");
		return 2;
	}
	if (policy_parse("bench", yaml, sizeof(yaml) - 1, &p, &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return 1;
	}
	opts.device_userdata = p;
	opts.condition_userdata = p;
	printf("device-descheduler bench (in-process, one thread, generation not timed): %d nodes, %d pods\n",
	       nodes, pods);

	/* Nodes: LIST into a store. */
	for (int first = 0; first < nodes; first += PAGE) {
		int n = nodes - first < PAGE ? nodes - first : PAGE;
		struct kc_list_decoder *d;
		double t0;

		gen_page(&b, first, n, nodes, nodes, false);
		t0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
		d = kc_list_decoder_new(&kc_type_node, &ctx, put_cb, &node_sink);
		feed_list(d, b.p, b.len);
		kc_list_decoder_free(d);
		node_t += now_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
		node_bytes += (double)b.len;
	}
	printf("nodes LIST:  %8.1f MB/s  (%.1f MB, %zu nodes, %.0f B JSON per node)\n", node_bytes / node_t / 1e6,
	       node_bytes / 1e6, kc_store_count(node_sink.store), node_bytes / nodes);

	/* Pods: LIST in pages of 500, fed in 16 KB chunks, into the store. */
	malloc_trim(0);
	m0 = mallinfo2();
	for (int first = 0; first < pods; first += PAGE) {
		int n = pods - first < PAGE ? pods - first : PAGE;
		struct kc_list_decoder *d;
		double t0;

		gen_page(&b, first, n, nodes, pods, true);
		t0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
		d = kc_list_decoder_new(&kc_type_pod, &ctx, put_cb, &pod_sink);
		feed_list(d, b.p, b.len);
		kc_list_decoder_free(d);
		t_dec += now_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
		bytes += (double)b.len;
	}
	m1 = mallinfo2();
	printf("pods LIST:   %8.1f MB/s  decode + store put (%.0f MB, %zu pods, %.0f B JSON per pod, %.2f s CPU)\n",
	       bytes / t_dec / 1e6, bytes / 1e6, kc_store_count(pod_sink.store), bytes / pods, t_dec);

	/* The same kind of pages: our decoder alone, then jansson's tree. */
	{
		int npages = pods / PAGE < 6 ? (pods + PAGE - 1) / PAGE : 6;
		double t_ours = 0, t_jan = 0, jb = 0;

		for (int pg = 0; pg < npages; pg++) {
			int first = pg * PAGE, n = pods - first < PAGE ? pods - first : PAGE;
			struct kc_list_decoder *d;
			json_t *root;
			double t0;

			gen_page(&b, first, n, nodes, pods, true);
			/* Warm run for comparable cache state, then the timed ones. */
			d = kc_list_decoder_new(&kc_type_pod, &ctx, drop_cb, NULL);
			feed_list(d, b.p, b.len);
			kc_list_decoder_free(d);
			t0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
			d = kc_list_decoder_new(&kc_type_pod, &ctx, drop_cb, NULL);
			feed_list(d, b.p, b.len);
			kc_list_decoder_free(d);
			t_ours += now_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
			t0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
			root = json_loadb(b.p, b.len, 0, NULL);
			if (!root) {
				fprintf(stderr, "bench: jansson rejected a page\n");
				return 1;
			}
			json_decref(root);
			t_jan += now_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
			jb += (double)b.len;
		}
		printf("same %d pages: kc_list_decoder %8.1f MB/s, jansson json_loadb+json_decref %8.1f MB/s (x%.1f)\n",
		       npages, jb / t_ours / 1e6, jb / t_jan / 1e6, t_jan / t_ours);
	}

	/* Watch: MODIFIED events of realistic pods, decode + store replace. */
	{
		int events = pods < 20000 ? pods : 20000, batch = 32, done = 0;
		struct kc_watch_decoder *w = kc_watch_decoder_new(&kc_type_pod, &ctx, 0, watch_cb, &pod_sink);
		double t = 0, wb = 0;

		while (done < events) {
			int n = events - done < batch ? events - done : batch;
			double t0;

			b.len = 0;
			for (int k = 0; k < n; k++) {
				int i = (int)(rnd() % (uint64_t)pods);

				ap(&b, "{\"type\":\"MODIFIED\",\"object\":");
				gen_pod(&b, i, nodes, 2000000 + done + k, 1 + k % 5);
				ap(&b, "}\n");
			}
			t0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
			for (size_t off = 0; off < b.len; off += CHUNK) {
				size_t m = b.len - off < CHUNK ? b.len - off : CHUNK;

				if (kc_watch_decoder_feed(w, b.p + off, m) != 0) {
					fprintf(stderr, "bench: watch failed: %s\n", kc_watch_decoder_error(w));
					return 1;
				}
			}
			t += now_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
			wb += (double)b.len;
			done += n;
		}
		printf("watch:       %8.2f us CPU per MODIFIED event (%d events of %.0f B, decode + store replace;"
		       " %.2f us per KB)\n",
		       t / events * 1e6, events, wb / events, t / (wb / 1024) * 1e6);
		kc_watch_decoder_free(w);
	}

	/* The decision core over these caches: sync, then one node turning bad. */
	{
		struct kc_watch_decoder *w;
		struct core *c;
		struct core_action act;
		void *node = NULL, *old = NULL;
		double t0, t_sync, t_node;
		int actions = 0;

		struct mallinfo2 c0 = mallinfo2(), c1;

		c = core_new(p, pod_sink.store, node_sink.store, NULL, NULL);
		t0 = now_s(CLOCK_MONOTONIC);
		core_set_synced(c, true, 1000);
		t_sync = now_s(CLOCK_MONOTONIC) - t0;
		c1 = mallinfo2();
		printf("core:        %.0f B of the core's own state per cached pod after sync (mallinfo2 delta)\n",
		       (double)(c1.uordblks - c0.uordblks) / (double)kc_store_count(pod_sink.store));
		/* The core's share of a pod watch event that changes nothing it acts on: health,
		 * planner and breaker for one pod (the reflector calls this after the store put). */
		{
			struct pod_list pl = { 0 };
			double tc;

			kc_store_foreach(pod_sink.store, collect_cb, &pl);
			t0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
			for (size_t k = 0; k < pl.n; k++)
				core_pod_changed(c, KC_DELTA_MODIFIED, pl.v[k], pl.v[k], 1500);
			tc = now_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
			printf("core:        %8.2f us CPU per pod event (health + planner + breaker, %zu pods, nothing to do)\n",
			       tc / (double)pl.n * 1e6, pl.n);
			free(pl.v);
		}
		b.len = 0;
		ap(&b, "{\"type\":\"MODIFIED\",\"object\":");
		gen_node_xid(&b, 7, 900000, true);
		ap(&b, "}\n");
		w = kc_watch_decoder_new(&kc_type_node, &ctx, 0, take_cb, &node);
		if (kc_watch_decoder_feed(w, b.p, b.len) != 0) {
			fprintf(stderr, "bench: node watch failed: %s\n", kc_watch_decoder_error(w));
			return 1;
		}
		kc_watch_decoder_free(w);
		if (!node) {
			fprintf(stderr, "bench: no node decoded\n");
			return 1;
		}
		t0 = now_s(CLOCK_MONOTONIC);
		kc_store_put(node_sink.store, node, &old);
		core_node_changed(c, 2, node, old, 2000);
		/* The node condition fences the node first (a taint), then evicts: answer each
		 * action as the API server would. */
		while (core_next_action(c, 2000, &act) == 0) {
			if (act.kind == CORE_FENCE) {
				core_fence_done(c, act.fence.kind, act.fence.unit, QUARANTINE_OK, 2000);
				continue;
			}
			core_action_done(c, act.uid, CORE_RESULT_EVICTED, 0, 2000);
			actions++;
		}
		t_node = now_s(CLOCK_MONOTONIC) - t0;
		printf("core:        full evaluation at sync %.0f ms; one node event (condition on a node with %d pods) "
		       "%.2f ms wall clock, evictions included\n",
		       t_sync * 1e3, actions, t_node * 1e3);
		/* The budget test_core.c used to assert: a node event stays cheap at this scale. */
		if (t_node > 0.100) {
			fprintf(stderr, "bench: FAIL: one node event took %.1f ms, over the 100 ms budget\n", t_node * 1e3);
			return 1;
		}
		free(old);
		core_free(c);
	}

	/* Memory per cached pod. */
	{
		size_t n = kc_store_count(pod_sink.store);
		double objs, internb, idx;

		usable_sum = 0;
		kc_store_foreach(pod_sink.store, usable_cb, NULL);
		objs = (double)usable_sum / (double)n;
		internb = (double)kc_intern_bytes(in) / (double)n;
		idx = (double)kc_store_index_bytes(pod_sink.store) / (double)n;
		printf("memory per cached pod: %.0f B = object block %.0f (malloc_usable_size) + intern %.0f + store index %.0f\n",
		       objs + internb + idx, objs, internb, idx);
		usable_sum = 0;
		kc_store_foreach(node_sink.store, usable_cb, NULL);
		printf("memory per cached node: %.0f B = object block %.0f (malloc_usable_size) + store index %.0f\n",
		       ((double)usable_sum + (double)kc_store_index_bytes(node_sink.store)) / (double)nodes,
		       (double)usable_sum / (double)nodes,
		       (double)kc_store_index_bytes(node_sink.store) / (double)nodes);
		printf("  mallinfo2 delta over the pod LIST: %.0f B per pod (%zu interned strings, %.1f MB intern)\n",
		       (double)(m1.uordblks - m0.uordblks) / (double)pods, kc_intern_count(in),
		       (double)kc_intern_bytes(in) / 1e6);
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("peak RSS: %.0f MB (includes the generator's page buffer)\n", (double)ru.ru_maxrss / 1024);

	kc_store_free(pod_sink.store);
	kc_store_free(node_sink.store);
	kc_intern_free(in);
	policy_free(p);
	free(b.p);
	return 0;
}
