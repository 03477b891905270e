/*
 * gen: writes the cluster that `make bench-e2e` serves, once, into a cache
 * directory: every pod and every node serialized as kube-apiserver writes
 * them, back to back, so that benchsrv can answer LIST pages and watch events
 * from these bytes without building any JSON.
 *
 *   gen DIR PODS NODES
 *
 * DIR/pods.json  the pods, each without its kind/apiVersion (as LIST items
 *                are), separated by a comma: any run of consecutive pods is
 *                itself a valid fragment of a JSON array;
 * DIR/pods.idx   one struct bench_rec per pod: where it is, where its
 *                13-digit resourceVersion is (patched by the server for watch
 *                events) and where the "Healthy" of its GPU is (replaced by
 *                "Unhealthy" for a health event);
 * DIR/nodes.json, DIR/nodes.idx   the same for nodes;
 * DIR/pods.pb    the same pods in protobuf, as kube-apiserver serves them
 *                (application/vnd.kubernetes.protobuf): each a PodList item
 *                (its field key and length, then the Pod message), so that
 *                any run of consecutive pods is a run of PodList items;
 * DIR/pods.pbidx one struct bench_pbrec per pod: where it is, its
 *                resourceVersion, its "Healthy" and the lengths around it;
 * DIR/DONE       written last, with the format version: a directory without
 *                it (an interrupted run) is generated again.
 *
 * Every pod is a device pod: its first container holds one nvidia.com/gpu,
 * and its allocatedResourcesStatus names that GPU by an ID unique in the
 * cluster, so that a health event on one pod makes exactly that pod a
 * candidate.  Pod i runs on node i % NODES; each node's capacity is 8 GPUs or
 * more (rounded up to a multiple of 8) so that its pods fit.  Everything is
 * derived from the index, so two runs write the same bytes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_e2e.h"
#include "pb.h"

#define OUTBUF (32u << 20)

struct out {
	FILE *f;
	char *buf;
	size_t len;
	uint64_t off; /* bytes written to the file before buf */
	const char *path;
};

static void die(const char *what, const char *path)
{
	fprintf(stderr, "gen: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void out_open(struct out *o, const char *dir, const char *name)
{
	static char paths[4][4096];
	static int n;
	char *p = paths[n++ % 4];

	snprintf(p, 4096, "%s/%s", dir, name);
	o->path = p;
	o->f = fopen(p, "wb");
	if (!o->f)
		die("cannot create", p);
	o->buf = malloc(OUTBUF);
	if (!o->buf)
		abort();
	o->len = 0;
	o->off = 0;
}

static void out_flush(struct out *o)
{
	if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len)
		die("cannot write", o->path);
	o->off += o->len;
	o->len = 0;
}

static void out_close(struct out *o)
{
	out_flush(o);
	if (fclose(o->f) != 0)
		die("cannot write", o->path);
	free(o->buf);
}

/* Appends formatted text; the caller keeps each piece far below OUTBUF. */
static void __attribute__((format(printf, 2, 3))) ap(struct out *o, const char *fmt, ...)
{
	va_list a;
	int n;

	if (OUTBUF - o->len < 64 * 1024)
		out_flush(o);
	va_start(a, fmt);
	n = vsnprintf(o->buf + o->len, OUTBUF - o->len, fmt, a);
	va_end(a);
	if (n < 0 || (size_t)n >= OUTBUF - o->len) {
		fprintf(stderr, "gen: piece too long\n");
		exit(1);
	}
	o->len += (size_t)n;
}

static void raw(struct out *o, const char *s, size_t n)
{
	if (OUTBUF - o->len < n + 64 * 1024)
		out_flush(o);
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static void uuid(char out[37], uint64_t seed)
{
	uint64_t a = mix(seed), b = mix(seed ^ 0x9E3779B97F4A7C15ULL);

	snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
		 (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff, (unsigned long long)(b & 0xffffffffffffULL));
}

/* The fieldsV1 of the two managedFields entries: JSON in both encodings (protobuf carries it as bytes). */
#define MF_CONTROLLER_FIELDS \
	"{\"f:metadata\":" \
	"{\"f:generateName\":{},\"f:labels\":{\".\":{},\"f:app\":{},\"f:pod-template-hash\":{},\"f:team\":{}," \
	"\"f:tier\":{}},\"f:ownerReferences\":{\".\":{},\"k:{\\\"uid\\\":\\\"5e0c2f1a\\\"}\":{}}}," \
	"\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"trainer\\\"}\":{\".\":{},\"f:args\":{},\"f:command\":{}," \
	"\"f:env\":{\".\":{},\"k:{\\\"name\\\":\\\"NCCL_DEBUG\\\"}\":{\".\":{},\"f:name\":{},\"f:value\":{}}," \
	"\"k:{\\\"name\\\":\\\"OMP_NUM_THREADS\\\"}\":{\".\":{},\"f:name\":{},\"f:value\":{}}},\"f:image\":{}," \
	"\"f:imagePullPolicy\":{},\"f:livenessProbe\":{\".\":{},\"f:failureThreshold\":{},\"f:httpGet\":{\".\":{}," \
	"\"f:path\":{},\"f:port\":{},\"f:scheme\":{}},\"f:periodSeconds\":{}},\"f:name\":{},\"f:ports\":{}," \
	"\"f:resources\":{\".\":{},\"f:limits\":{\".\":{},\"f:cpu\":{},\"f:memory\":{},\"f:nvidia.com/gpu\":{}}," \
	"\"f:requests\":{\".\":{},\"f:cpu\":{},\"f:memory\":{},\"f:nvidia.com/gpu\":{}}},\"f:volumeMounts\":{}}," \
	"\"k:{\\\"name\\\":\\\"metrics-exporter\\\"}\":{\".\":{},\"f:image\":{},\"f:name\":{},\"f:ports\":{}," \
	"\"f:resources\":{}}},\"f:dnsPolicy\":{},\"f:enableServiceLinks\":{},\"f:restartPolicy\":{}," \
	"\"f:schedulerName\":{},\"f:securityContext\":{},\"f:terminationGracePeriodSeconds\":{},\"f:tolerations\":{}," \
	"\"f:volumes\":{}}}"
#define MF_KUBELET_FIELDS \
	"{\"f:status\":{\"f:conditions\":{" \
	"\"k:{\\\"type\\\":\\\"ContainersReady\\\"}\":{\".\":{},\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{}," \
	"\"f:status\":{},\"f:type\":{}},\"k:{\\\"type\\\":\\\"Initialized\\\"}\":{\".\":{},\"f:lastProbeTime\":{}," \
	"\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}},\"k:{\\\"type\\\":\\\"PodReadyToStartContainers\\\"}\":" \
	"{\".\":{},\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}}," \
	"\"k:{\\\"type\\\":\\\"Ready\\\"}\":{\".\":{},\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{}," \
	"\"f:status\":{},\"f:type\":{}}},\"f:containerStatuses\":{},\"f:hostIP\":{},\"f:hostIPs\":{},\"f:phase\":{}," \
	"\"f:podIP\":{},\"f:podIPs\":{\".\":{},\"k:{\\\"ip\\\":\\\"10.244.1.17\\\"}\":{\".\":{},\"f:ip\":{}}}," \
	"\"f:startTime\":{}}}"

static const char managed_fields[] =
	"{\"manager\":\"kube-controller-manager\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
	"\"time\":\"2026-11-20T09:59:00Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":" MF_CONTROLLER_FIELDS "},"
	"{\"manager\":\"kubelet\",\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"2026-11-27T01:02:03Z\","
	"\"fieldsType\":\"FieldsV1\",\"subresource\":\"status\",\"fieldsV1\":" MF_KUBELET_FIELDS "}";

/* The five characters kube's generateName appends, in its alphabet, encoding the pod index. */
static void pod_suffix(char out[6], uint32_t i)
{
	for (int k = 4; k >= 0; k--) {
		out[k] = bench_suffix_alphabet[i % BENCH_SUFFIX_BASE];
		i /= BENCH_SUFFIX_BASE;
	}
	out[5] = 0;
}

static void gpu_id(char out[48], uint32_t node, uint32_t slot)
{
	snprintf(out, 48, "GPU-%08x-%04x-4a5b-8c9d-%012llx", node, slot,
		 (unsigned long long)(mix(((uint64_t)node << 16) | slot) & 0xffffffffffffULL));
}

static void gen_pod(struct out *o, uint32_t i, uint32_t nodes)
{
	uint32_t deploy = i / 10, node = i % nodes, slot = i / nodes;
	char u[37], ou[37], sfx[6], gpu[48];

	uuid(u, i + 1ULL);
	uuid(ou, 0x100000000ULL + deploy);
	pod_suffix(sfx, i);
	gpu_id(gpu, node, slot);
	ap(o, "{\"metadata\":{\"name\":\"train-%u-7d9f8c6b5-%s\",\"generateName\":\"train-%u-7d9f8c6b5-\","
	      "\"namespace\":\"team-%02u\",\"uid\":\"%s\",\"resourceVersion\":\"%013llu\","
	      "\"creationTimestamp\":\"2026-11-20T09:59:00Z\","
	      "\"labels\":{\"app\":\"train-%u\",\"pod-template-hash\":\"7d9f8c6b5\",\"team\":\"team-%02u\","
	      "\"tier\":\"%s\"},"
	      "\"annotations\":{\"kubectl.kubernetes.io/restartedAt\":\"2026-11-20T09:58:00Z\","
	      "\"prometheus.io/scrape\":\"true\",\"prometheus.io/port\":\"9400\"},"
	      "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"train-%u-7d9f8c6b5\","
	      "\"uid\":\"%s\",\"controller\":true,\"blockOwnerDeletion\":true}],\"managedFields\":[%s]},",
	   deploy, sfx, deploy, deploy % BENCH_NAMESPACES, u, (unsigned long long)(BENCH_RV0 + i), deploy,
	   deploy % BENCH_NAMESPACES, i % 3 ? "batch" : "serving", deploy, ou, managed_fields);
	ap(o, "\"spec\":{\"volumes\":[{\"name\":\"config\",\"configMap\":{\"name\":\"train-%u-config\",\"defaultMode\":420}},"
	      "{\"name\":\"dshm\",\"emptyDir\":{\"medium\":\"Memory\",\"sizeLimit\":\"16Gi\"}},"
	      "{\"name\":\"kube-api-access-x7k2p\",\"projected\":{\"sources\":[{\"serviceAccountToken\":"
	      "{\"expirationSeconds\":3607,\"path\":\"token\"}},{\"configMap\":{\"name\":\"kube-root-ca.crt\","
	      "\"items\":[{\"key\":\"ca.crt\",\"path\":\"ca.crt\"}]}},{\"downwardAPI\":{\"items\":[{\"path\":\"namespace\","
	      "\"fieldRef\":{\"apiVersion\":\"v1\",\"fieldPath\":\"metadata.namespace\"}}]}}],\"defaultMode\":420}}],"
	      "\"containers\":[{\"name\":\"trainer\",\"image\":\"registry.example/ml/trainer:2.%u\","
	      "\"command\":[\"/usr/bin/python3\",\"-m\",\"torch.distributed.run\"],"
	      "\"args\":[\"--nproc-per-node=1\",\"--config=/etc/train/config.yaml\",\"--checkpoint-dir=/ckpt/train-%u\"],"
	      "\"ports\":[{\"name\":\"http\",\"containerPort\":8080,\"protocol\":\"TCP\"}],"
	      "\"env\":[{\"name\":\"NCCL_DEBUG\",\"value\":\"INFO\"},{\"name\":\"OMP_NUM_THREADS\",\"value\":\"8\"},"
	      "{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{\"apiVersion\":\"v1\",\"fieldPath\":\"metadata.name\"}}},"
	      "{\"name\":\"POD_NAMESPACE\",\"valueFrom\":{\"fieldRef\":{\"apiVersion\":\"v1\",\"fieldPath\":\"metadata.namespace\"}}}],"
	      "\"resources\":{\"limits\":{\"cpu\":\"16\",\"memory\":\"128Gi\",\"nvidia.com/gpu\":\"1\"},"
	      "\"requests\":{\"cpu\":\"%um\",\"memory\":\"%uMi\",\"nvidia.com/gpu\":\"1\"}},"
	      "\"volumeMounts\":[{\"name\":\"config\",\"readOnly\":true,\"mountPath\":\"/etc/train\"},"
	      "{\"name\":\"dshm\",\"mountPath\":\"/dev/shm\"},"
	      "{\"name\":\"kube-api-access-x7k2p\",\"readOnly\":true,\"mountPath\":\"/var/run/secrets/kubernetes.io/serviceaccount\"}],"
	      "\"livenessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":8080,\"scheme\":\"HTTP\"},"
	      "\"timeoutSeconds\":1,\"periodSeconds\":10,\"successThreshold\":1,\"failureThreshold\":3},"
	      "\"readinessProbe\":{\"httpGet\":{\"path\":\"/ready\",\"port\":8080,\"scheme\":\"HTTP\"},"
	      "\"timeoutSeconds\":1,\"periodSeconds\":5,\"successThreshold\":1,\"failureThreshold\":3},"
	      "\"terminationMessagePath\":\"/dev/termination-log\",\"terminationMessagePolicy\":\"File\","
	      "\"imagePullPolicy\":\"IfNotPresent\"},"
	      "{\"name\":\"metrics-exporter\",\"image\":\"registry.example/obs/exporter:0.9.%u\","
	      "\"ports\":[{\"name\":\"metrics\",\"containerPort\":9400,\"protocol\":\"TCP\"}],"
	      "\"resources\":{\"limits\":{\"cpu\":\"200m\",\"memory\":\"256Mi\"},\"requests\":{\"cpu\":\"50m\",\"memory\":\"64Mi\"}},"
	      "\"volumeMounts\":[{\"name\":\"kube-api-access-x7k2p\",\"readOnly\":true,\"mountPath\":\"/var/run/secrets/kubernetes.io/serviceaccount\"}],"
	      "\"terminationMessagePath\":\"/dev/termination-log\",\"terminationMessagePolicy\":\"File\","
	      "\"imagePullPolicy\":\"IfNotPresent\"}],",
	   deploy, i % 10, deploy, 4000 + i % 7 * 500, 16384u << (i % 3), i % 5);
	ap(o, "\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":\"ClusterFirst\","
	      "\"serviceAccountName\":\"default\",\"serviceAccount\":\"default\",\"nodeName\":\"gpu-node-%u\","
	      "\"securityContext\":{},\"schedulerName\":\"default-scheduler\",\"tolerations\":["
	      "{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"},"
	      "{\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\",\"effect\":\"NoExecute\",\"tolerationSeconds\":300},"
	      "{\"key\":\"node.kubernetes.io/unreachable\",\"operator\":\"Exists\",\"effect\":\"NoExecute\",\"tolerationSeconds\":300}],"
	      "\"priority\":0,\"enableServiceLinks\":true,\"preemptionPolicy\":\"PreemptLowerPriority\"},",
	   node);
	ap(o, "\"status\":{\"phase\":\"Running\",\"conditions\":["
	      "{\"type\":\"PodReadyToStartContainers\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T10:00:00Z\"},"
	      "{\"type\":\"Initialized\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T09:59:00Z\"},"
	      "{\"type\":\"Ready\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T10:00:05Z\"},"
	      "{\"type\":\"ContainersReady\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T10:00:05Z\"},"
	      "{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T09:59:00Z\"}],"
	      "\"hostIP\":\"10.%u.%u.%u\",\"hostIPs\":[{\"ip\":\"10.%u.%u.%u\"}],\"podIP\":\"10.%u.%u.%u\","
	      "\"podIPs\":[{\"ip\":\"10.%u.%u.%u\"}],\"startTime\":\"2026-11-20T09:59:00Z\",\"containerStatuses\":[",
	   node >> 16, (node >> 8) & 255, node & 255, node >> 16, (node >> 8) & 255, node & 255, 128 + (i >> 16),
	   (i >> 8) & 255, i & 255, 128 + (i >> 16), (i >> 8) & 255, i & 255);
	ap(o, "{\"name\":\"metrics-exporter\",\"state\":{\"running\":{\"startedAt\":\"2026-11-20T10:00:01Z\"}},"
	      "\"lastState\":{},\"ready\":true,\"restartCount\":0,\"image\":\"registry.example/obs/exporter:0.9.%u\","
	      "\"imageID\":\"registry.example/obs/exporter@sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0\","
	      "\"containerID\":\"containerd://%016llx%016llx\",\"started\":true,"
	      "\"volumeMounts\":[{\"name\":\"kube-api-access-x7k2p\",\"mountPath\":\"/var/run/secrets/kubernetes.io/serviceaccount\","
	      "\"readOnly\":true,\"recursiveReadOnly\":\"Disabled\"}]},",
	   i % 5, (unsigned long long)mix(i * 2ULL + 7), (unsigned long long)mix(i * 2ULL + 8));
	ap(o, "{\"name\":\"trainer\",\"state\":{\"running\":{\"startedAt\":\"2026-11-27T01:02:04Z\"}},"
	      "\"lastState\":{%s},\"ready\":true,\"restartCount\":%u,\"image\":\"registry.example/ml/trainer:2.%u\","
	      "\"imageID\":\"registry.example/ml/trainer@sha256:3c1e0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a\","
	      "\"containerID\":\"containerd://%016llx%016llx\",\"started\":true,"
	      "\"allocatedResourcesStatus\":[{\"name\":\"nvidia.com/gpu\",\"resources\":["
	      "{\"resourceID\":\"%s\",\"health\":\"Healthy\"}]}],"
	      "\"volumeMounts\":[{\"name\":\"config\",\"mountPath\":\"/etc/train\",\"readOnly\":true,\"recursiveReadOnly\":\"Disabled\"},"
	      "{\"name\":\"dshm\",\"mountPath\":\"/dev/shm\"},"
	      "{\"name\":\"kube-api-access-x7k2p\",\"mountPath\":\"/var/run/secrets/kubernetes.io/serviceaccount\","
	      "\"readOnly\":true,\"recursiveReadOnly\":\"Disabled\"}]}],\"qosClass\":\"Burstable\"}}",
	   i % 13 == 0 ? "\"terminated\":{\"exitCode\":137,\"reason\":\"OOMKilled\",\"startedAt\":\"2026-11-20T10:00:00Z\","
			 "\"finishedAt\":\"2026-11-27T01:02:03Z\",\"containerID\":\"containerd://3c1e0f9e8d7c6b5a\"}"
		       : "",
	   i % 13 == 0 ? 1u : 0u, i % 10, (unsigned long long)mix(i * 2ULL + 9), (unsigned long long)mix(i * 2ULL + 10),
	   gpu);
}

/* Seconds since the epoch of a UTC time "YYYY-MM-DDTHH:MM:SSZ" (metav1.Time in protobuf). */
static int64_t unix_of(const char *rfc3339)
{
	struct tm tm = { 0 };

	if (!strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		fprintf(stderr, "gen: bad time %s\n", rfc3339);
		exit(1);
	}
	return (int64_t)timegm(&tm);
}

static void pb_volume_mount(struct pbw *w, const char *name, bool ro, const char *path)
{
	pb_begin(w, 9);
	pb_str(w, 1, name);
	pb_int(w, 2, ro);
	pb_str(w, 3, path);
	pb_str(w, 4, "");
	pb_str(w, 6, "");
	pb_end(w);
}

static void pb_port(struct pbw *w, const char *name, int port)
{
	pb_begin(w, 6);
	pb_str(w, 1, name);
	pb_int(w, 2, 0);
	pb_int(w, 3, port);
	pb_str(w, 4, "TCP");
	pb_str(w, 5, "");
	pb_end(w);
}

static void pb_field_ref(struct pbw *w, uint32_t field, const char *path)
{
	pb_begin(w, field);
	pb_str(w, 1, "v1");
	pb_str(w, 2, path);
	pb_end(w);
}

static void pb_env(struct pbw *w, const char *name, const char *value, const char *field_path)
{
	pb_begin(w, 7);
	pb_str(w, 1, name);
	pb_str(w, 2, value);
	if (field_path) {
		pb_begin(w, 3);
		pb_field_ref(w, 1, field_path);
		pb_end(w);
	}
	pb_end(w);
}

static void pb_http_probe(struct pbw *w, uint32_t field, const char *path, int period)
{
	pb_begin(w, field);
	pb_begin(w, 1); /* ProbeHandler */
	pb_begin(w, 2); /* HTTPGetAction */
	pb_str(w, 1, path);
	pb_begin(w, 2); /* IntOrString */
	pb_int(w, 1, 0);
	pb_int(w, 2, 8080);
	pb_str(w, 3, "");
	pb_end(w);
	pb_str(w, 3, "");
	pb_str(w, 4, "HTTP");
	pb_end(w);
	pb_end(w);
	pb_int(w, 2, 0);
	pb_int(w, 3, 1);
	pb_int(w, 4, period);
	pb_int(w, 5, 1);
	pb_int(w, 6, 3);
	pb_end(w);
}

/* The end of a Container: the fields after volumeMounts and probes, all written as Go does. */
static void pb_container_tail(struct pbw *w)
{
	pb_str(w, 13, "/dev/termination-log");
	pb_str(w, 14, "IfNotPresent");
	pb_int(w, 16, 0);
	pb_int(w, 17, 0);
	pb_int(w, 18, 0);
	pb_str(w, 20, "File");
}

static void pb_toleration(struct pbw *w, const char *key, const char *effect, int64_t seconds)
{
	pb_begin(w, 22);
	pb_str(w, 1, key);
	pb_str(w, 2, "Exists");
	pb_str(w, 3, "");
	pb_str(w, 4, effect);
	if (seconds >= 0)
		pb_int(w, 5, seconds);
	pb_end(w);
}

static void pb_condition(struct pbw *w, const char *type, int64_t transition)
{
	pb_begin(w, 2);
	pb_str(w, 1, type);
	pb_str(w, 2, "True");
	pb_time(w, 3, 0); /* lastProbeTime: null */
	pb_time(w, 4, transition);
	pb_str(w, 5, "");
	pb_str(w, 6, "");
	pb_int(w, 7, 0);
	pb_end(w);
}

static void pb_mount_status(struct pbw *w, const char *name, const char *path, bool ro)
{
	pb_begin(w, 12);
	pb_str(w, 1, name);
	pb_str(w, 2, path);
	pb_int(w, 3, ro);
	if (ro)
		pb_str(w, 4, "Disabled");
	pb_end(w);
}

/* Where a pod's protobuf needs patching (see struct bench_pbrec): offsets in the writer's buffer. */
struct pb_marks {
	size_t rv, health, path[BENCH_PB_PATH];
};

/*
 * Pod i as the Pod message kube-apiserver serves in protobuf: the same
 * content as gen_pod()'s JSON, fields in number order, every field Go's
 * generated marshaller writes (empty strings, zero numbers and booleans of
 * non-pointer fields included), maps sorted by key.
 */
static void gen_pod_pb(struct pbw *w, uint32_t i, uint32_t nodes, struct pb_marks *m)
{
	uint32_t deploy = i / 10, node = i % nodes, slot = i / nodes;
	char u[37], ou[37], sfx[6], gpu[48];
	static int64_t t_created, t_kubelet, t_ready0, t_ready5, t_exporter, t_trainer, t_oom_start;

	if (!t_created) {
		t_created = unix_of("2026-11-20T09:59:00Z");
		t_kubelet = unix_of("2026-11-27T01:02:03Z");
		t_ready0 = unix_of("2026-11-20T10:00:00Z");
		t_ready5 = unix_of("2026-11-20T10:00:05Z");
		t_exporter = unix_of("2026-11-20T10:00:01Z");
		t_trainer = unix_of("2026-11-27T01:02:04Z");
		t_oom_start = t_ready0;
	}
	uuid(u, i + 1ULL);
	uuid(ou, 0x100000000ULL + deploy);
	pod_suffix(sfx, i);
	gpu_id(gpu, node, slot);
	pb_reset(w);
	memset(m, 0, sizeof(*m));
	pb_mark(w, &m->rv);
	pb_mark(w, &m->health);
	for (int k = 0; k < BENCH_PB_PATH; k++)
		pb_mark(w, &m->path[k]);

	pb_begin(w, 1); /* metadata */
	pb_strf(w, 1, "train-%u-7d9f8c6b5-%s", deploy, sfx);
	pb_strf(w, 2, "train-%u-7d9f8c6b5-", deploy);
	pb_strf(w, 3, "team-%02u", deploy % BENCH_NAMESPACES);
	pb_str(w, 4, "");
	pb_str(w, 5, u);
	pb_key(w, 6, 2);
	pb_uvarint(w, BENCH_RV_DIGITS);
	m->rv = w->len;
	{
		char d[BENCH_RV_DIGITS + 1];

		snprintf(d, sizeof(d), "%013llu", (unsigned long long)(BENCH_RV0 + i));
		pb_raw(w, d, BENCH_RV_DIGITS);
	}
	pb_int(w, 7, 0);
	pb_time(w, 8, t_created);
	{
		char app[32], team[16];

		snprintf(app, sizeof(app), "train-%u", deploy);
		snprintf(team, sizeof(team), "team-%02u", deploy % BENCH_NAMESPACES);
		pb_map_str(w, 11, "app", app);
		pb_map_str(w, 11, "pod-template-hash", "7d9f8c6b5");
		pb_map_str(w, 11, "team", team);
		pb_map_str(w, 11, "tier", i % 3 ? "batch" : "serving");
	}
	pb_map_str(w, 12, "kubectl.kubernetes.io/restartedAt", "2026-11-20T09:58:00Z");
	pb_map_str(w, 12, "prometheus.io/port", "9400");
	pb_map_str(w, 12, "prometheus.io/scrape", "true");
	pb_begin(w, 13); /* ownerReferences */
	pb_str(w, 1, "ReplicaSet");
	pb_strf(w, 3, "train-%u-7d9f8c6b5", deploy);
	pb_str(w, 4, ou);
	pb_str(w, 5, "apps/v1");
	pb_int(w, 6, 1);
	pb_int(w, 7, 1);
	pb_end(w);
	pb_begin(w, 17); /* managedFields */
	pb_str(w, 1, "kube-controller-manager");
	pb_str(w, 2, "Update");
	pb_str(w, 3, "v1");
	pb_time(w, 4, t_created);
	pb_str(w, 6, "FieldsV1");
	pb_begin(w, 7);
	pb_bytes(w, 1, MF_CONTROLLER_FIELDS, sizeof(MF_CONTROLLER_FIELDS) - 1);
	pb_end(w);
	pb_str(w, 8, "");
	pb_end(w);
	pb_begin(w, 17);
	pb_str(w, 1, "kubelet");
	pb_str(w, 2, "Update");
	pb_str(w, 3, "v1");
	pb_time(w, 4, t_kubelet);
	pb_str(w, 6, "FieldsV1");
	pb_begin(w, 7);
	pb_bytes(w, 1, MF_KUBELET_FIELDS, sizeof(MF_KUBELET_FIELDS) - 1);
	pb_end(w);
	pb_str(w, 8, "status");
	pb_end(w);
	pb_end(w); /* metadata */

	pb_begin(w, 2); /* spec */
	pb_begin(w, 1); /* volumes */
	pb_str(w, 1, "config");
	pb_begin(w, 2);
	pb_begin(w, 19); /* configMap */
	pb_begin(w, 1);
	pb_strf(w, 1, "train-%u-config", deploy);
	pb_end(w);
	pb_int(w, 3, 420);
	pb_end(w);
	pb_end(w);
	pb_end(w);
	pb_begin(w, 1);
	pb_str(w, 1, "dshm");
	pb_begin(w, 2);
	pb_begin(w, 2); /* emptyDir */
	pb_str(w, 1, "Memory");
	pb_begin(w, 2);
	pb_str(w, 1, "16Gi");
	pb_end(w);
	pb_end(w);
	pb_end(w);
	pb_end(w);
	pb_begin(w, 1);
	pb_str(w, 1, "kube-api-access-x7k2p");
	pb_begin(w, 2);
	pb_begin(w, 26); /* projected */
	pb_begin(w, 1);
	pb_begin(w, 4); /* serviceAccountToken */
	pb_str(w, 1, "");
	pb_int(w, 2, 3607);
	pb_str(w, 3, "token");
	pb_end(w);
	pb_end(w);
	pb_begin(w, 1);
	pb_begin(w, 3); /* configMap */
	pb_begin(w, 1);
	pb_str(w, 1, "kube-root-ca.crt");
	pb_end(w);
	pb_begin(w, 2);
	pb_str(w, 1, "ca.crt");
	pb_str(w, 2, "ca.crt");
	pb_end(w);
	pb_end(w);
	pb_end(w);
	pb_begin(w, 1);
	pb_begin(w, 2); /* downwardAPI */
	pb_begin(w, 1);
	pb_str(w, 1, "namespace");
	pb_field_ref(w, 2, "metadata.namespace");
	pb_end(w);
	pb_end(w);
	pb_end(w);
	pb_int(w, 2, 420);
	pb_end(w);
	pb_end(w);
	pb_end(w);

	pb_begin(w, 2); /* containers: trainer */
	pb_str(w, 1, "trainer");
	pb_strf(w, 2, "registry.example/ml/trainer:2.%u", i % 10);
	pb_str(w, 3, "/usr/bin/python3");
	pb_str(w, 3, "-m");
	pb_str(w, 3, "torch.distributed.run");
	pb_str(w, 4, "--nproc-per-node=1");
	pb_str(w, 4, "--config=/etc/train/config.yaml");
	pb_strf(w, 4, "--checkpoint-dir=/ckpt/train-%u", deploy);
	pb_str(w, 5, "");
	pb_port(w, "http", 8080);
	pb_env(w, "NCCL_DEBUG", "INFO", NULL);
	pb_env(w, "OMP_NUM_THREADS", "8", NULL);
	pb_env(w, "POD_NAME", "", "metadata.name");
	pb_env(w, "POD_NAMESPACE", "", "metadata.namespace");
	pb_begin(w, 8); /* resources */
	pb_map_qty(w, 1, "cpu", "16");
	pb_map_qty(w, 1, "memory", "128Gi");
	pb_map_qty(w, 1, "nvidia.com/gpu", "1");
	{
		char cpu[16], mem[16];

		snprintf(cpu, sizeof(cpu), "%um", 4000 + i % 7 * 500);
		snprintf(mem, sizeof(mem), "%uMi", 16384u << (i % 3));
		pb_map_qty(w, 2, "cpu", cpu);
		pb_map_qty(w, 2, "memory", mem);
	}
	pb_map_qty(w, 2, "nvidia.com/gpu", "1");
	pb_end(w);
	pb_volume_mount(w, "config", true, "/etc/train");
	pb_volume_mount(w, "dshm", false, "/dev/shm");
	pb_volume_mount(w, "kube-api-access-x7k2p", true, "/var/run/secrets/kubernetes.io/serviceaccount");
	pb_http_probe(w, 10, "/healthz", 10);
	pb_http_probe(w, 11, "/ready", 5);
	pb_container_tail(w);
	pb_end(w);
	pb_begin(w, 2); /* containers: metrics-exporter */
	pb_str(w, 1, "metrics-exporter");
	pb_strf(w, 2, "registry.example/obs/exporter:0.9.%u", i % 5);
	pb_str(w, 5, "");
	pb_port(w, "metrics", 9400);
	pb_begin(w, 8);
	pb_map_qty(w, 1, "cpu", "200m");
	pb_map_qty(w, 1, "memory", "256Mi");
	pb_map_qty(w, 2, "cpu", "50m");
	pb_map_qty(w, 2, "memory", "64Mi");
	pb_end(w);
	pb_volume_mount(w, "kube-api-access-x7k2p", true, "/var/run/secrets/kubernetes.io/serviceaccount");
	pb_container_tail(w);
	pb_end(w);
	pb_str(w, 3, "Always");
	pb_int(w, 4, 30);
	pb_str(w, 6, "ClusterFirst");
	pb_str(w, 8, "default");
	pb_str(w, 9, "default");
	pb_strf(w, 10, "gpu-node-%u", node);
	pb_int(w, 11, 0);
	pb_int(w, 12, 0);
	pb_int(w, 13, 0);
	pb_begin(w, 14); /* securityContext: {} */
	pb_end(w);
	pb_str(w, 16, "");
	pb_str(w, 17, "");
	pb_str(w, 19, "default-scheduler");
	pb_toleration(w, "nvidia.com/gpu", "NoSchedule", -1);
	pb_toleration(w, "node.kubernetes.io/not-ready", "NoExecute", 300);
	pb_toleration(w, "node.kubernetes.io/unreachable", "NoExecute", 300);
	pb_str(w, 24, "");
	pb_int(w, 25, 0);
	pb_int(w, 30, 1);
	pb_str(w, 31, "PreemptLowerPriority");
	pb_end(w); /* spec */

	pb_begin(w, 3); /* status */
	m->path[BENCH_PB_STATUS] = w->open[w->depth - 1];
	pb_str(w, 1, "Running");
	pb_condition(w, "PodReadyToStartContainers", t_ready0);
	pb_condition(w, "Initialized", t_created);
	pb_condition(w, "Ready", t_ready5);
	pb_condition(w, "ContainersReady", t_ready5);
	pb_condition(w, "PodScheduled", t_created);
	pb_str(w, 3, "");
	pb_str(w, 4, "");
	pb_strf(w, 5, "10.%u.%u.%u", node >> 16, (node >> 8) & 255, node & 255);
	pb_strf(w, 6, "10.%u.%u.%u", 128 + (i >> 16), (i >> 8) & 255, i & 255);
	pb_time(w, 7, t_created);
	pb_begin(w, 8); /* containerStatuses: metrics-exporter */
	pb_str(w, 1, "metrics-exporter");
	pb_begin(w, 2);
	pb_begin(w, 2); /* running */
	pb_time(w, 1, t_exporter);
	pb_end(w);
	pb_end(w);
	pb_begin(w, 3); /* lastState: {} */
	pb_end(w);
	pb_int(w, 4, 1);
	pb_int(w, 5, 0);
	pb_strf(w, 6, "registry.example/obs/exporter:0.9.%u", i % 5);
	pb_str(w, 7, "registry.example/obs/exporter@sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0");
	pb_strf(w, 8, "containerd://%016llx%016llx", (unsigned long long)mix(i * 2ULL + 7),
		(unsigned long long)mix(i * 2ULL + 8));
	pb_int(w, 9, 1);
	pb_mount_status(w, "kube-api-access-x7k2p", "/var/run/secrets/kubernetes.io/serviceaccount", true);
	pb_end(w);
	pb_begin(w, 8); /* containerStatuses: trainer */
	m->path[BENCH_PB_CSTATUS] = w->open[w->depth - 1];
	pb_str(w, 1, "trainer");
	pb_begin(w, 2);
	pb_begin(w, 2);
	pb_time(w, 1, t_trainer);
	pb_end(w);
	pb_end(w);
	pb_begin(w, 3);
	if (i % 13 == 0) {
		pb_begin(w, 3); /* terminated */
		pb_int(w, 1, 137);
		pb_int(w, 2, 0);
		pb_str(w, 3, "OOMKilled");
		pb_str(w, 4, "");
		pb_time(w, 5, t_oom_start);
		pb_time(w, 6, t_kubelet);
		pb_str(w, 7, "containerd://3c1e0f9e8d7c6b5a");
		pb_end(w);
	}
	pb_end(w);
	pb_int(w, 4, 1);
	pb_int(w, 5, i % 13 == 0 ? 1 : 0);
	pb_strf(w, 6, "registry.example/ml/trainer:2.%u", i % 10);
	pb_str(w, 7, "registry.example/ml/trainer@sha256:3c1e0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a");
	pb_strf(w, 8, "containerd://%016llx%016llx", (unsigned long long)mix(i * 2ULL + 9),
		(unsigned long long)mix(i * 2ULL + 10));
	pb_int(w, 9, 1);
	pb_mount_status(w, "config", "/etc/train", true);
	pb_mount_status(w, "dshm", "/dev/shm", false);
	pb_mount_status(w, "kube-api-access-x7k2p", "/var/run/secrets/kubernetes.io/serviceaccount", true);
	pb_begin(w, 14); /* allocatedResourcesStatus */
	m->path[BENCH_PB_RSTATUS] = w->open[w->depth - 1];
	pb_str(w, 1, "nvidia.com/gpu");
	pb_begin(w, 2);
	m->path[BENCH_PB_RHEALTH] = w->open[w->depth - 1];
	pb_str(w, 1, gpu);
	pb_key(w, 2, 2);
	pb_uvarint(w, 7);
	m->health = w->len;
	pb_raw(w, "Healthy", 7);
	pb_end(w);
	pb_end(w);
	pb_end(w); /* trainer */
	pb_str(w, 9, "Burstable");
	pb_str(w, 11, "");
	pb_begin(w, 12);
	pb_strf(w, 1, "10.%u.%u.%u", 128 + (i >> 16), (i >> 8) & 255, i & 255);
	pb_end(w);
	pb_str(w, 14, "");
	pb_begin(w, 16);
	pb_strf(w, 1, "10.%u.%u.%u", node >> 16, (node >> 8) & 255, node & 255);
	pb_end(w);
	pb_int(w, 17, 0);
	pb_end(w); /* status */
	if (w->depth != 0)
		abort();
}

static void gen_node(struct out *o, uint32_t i, uint32_t gpus)
{
	static const char *const conds[] = { "MemoryPressure", "DiskPressure", "PIDPressure", "Ready" };
	static const char *const reasons[] = { "KubeletHasSufficientMemory", "KubeletHasNoDiskPressure",
					       "KubeletHasSufficientPID", "KubeletReady" };
	static const char *const msgs[] = { "kubelet has sufficient memory available", "kubelet has no disk pressure",
					    "kubelet has sufficient PID available",
					    "kubelet is posting ready status" };
	char u[37];

	uuid(u, 0x200000000ULL + i);
	ap(o, "{\"metadata\":{\"name\":\"gpu-node-%u\",\"uid\":\"%s\",\"resourceVersion\":\"%013llu\","
	      "\"creationTimestamp\":\"2026-11-01T00:00:00Z\",\"labels\":{\"beta.kubernetes.io/arch\":\"amd64\","
	      "\"beta.kubernetes.io/os\":\"linux\",\"kubernetes.io/arch\":\"amd64\",\"kubernetes.io/hostname\":\"gpu-node-%u\","
	      "\"kubernetes.io/os\":\"linux\",\"node.kubernetes.io/instance-type\":\"p5.48xlarge\","
	      "\"topology.kubernetes.io/region\":\"us-east-1\",\"topology.kubernetes.io/zone\":\"us-east-1%c\","
	      "\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\",\"nvidia.com/gpu.count\":\"%u\"},"
	      "\"annotations\":{\"node.alpha.kubernetes.io/ttl\":\"0\",\"kubeadm.alpha.kubernetes.io/cri-socket\":"
	      "\"unix:///run/containerd/containerd.sock\",\"volumes.kubernetes.io/controller-managed-attach-detach\":\"true\"},"
	      "\"managedFields\":[{\"manager\":\"kubelet\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
	      "\"time\":\"2026-11-27T01:02:00Z\",\"fieldsType\":\"FieldsV1\",\"subresource\":\"status\",\"fieldsV1\":"
	      "{\"f:status\":{\"f:allocatable\":{\"f:nvidia.com/gpu\":{}},\"f:capacity\":{\"f:nvidia.com/gpu\":{}},"
	      "\"f:conditions\":{\"k:{\\\"type\\\":\\\"DiskPressure\\\"}\":{\"f:lastHeartbeatTime\":{}},"
	      "\"k:{\\\"type\\\":\\\"MemoryPressure\\\"}\":{\"f:lastHeartbeatTime\":{}},\"k:{\\\"type\\\":\\\"PIDPressure\\\"}\":"
	      "{\"f:lastHeartbeatTime\":{}},\"k:{\\\"type\\\":\\\"Ready\\\"}\":{\"f:lastHeartbeatTime\":{}}}}}}]},"
	      "\"spec\":{\"podCIDR\":\"10.%u.%u.0/24\",\"podCIDRs\":[\"10.%u.%u.0/24\"],\"providerID\":"
	      "\"aws:///us-east-1%c/i-%017llx\",\"taints\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"present\","
	      "\"effect\":\"NoSchedule\"}]},\"status\":{\"capacity\":{\"cpu\":\"192\",\"ephemeral-storage\":\"3750771692Ki\","
	      "\"hugepages-1Gi\":\"0\",\"hugepages-2Mi\":\"0\",\"memory\":\"2063727476Ki\",\"nvidia.com/gpu\":\"%u\","
	      "\"pods\":\"110\"},\"allocatable\":{\"cpu\":\"191450m\",\"ephemeral-storage\":\"3456779345453\","
	      "\"hugepages-1Gi\":\"0\",\"hugepages-2Mi\":\"0\",\"memory\":\"2052193140Ki\",\"nvidia.com/gpu\":\"%u\","
	      "\"pods\":\"110\"},\"conditions\":[",
	   i, u, (unsigned long long)(BENCH_RV0 + BENCH_NODE_RV_OFFSET + i), i, 'a' + (char)(i % 3), gpus, 64 + (i >> 8),
	   i & 255, 64 + (i >> 8), i & 255, 'a' + (char)(i % 3), (unsigned long long)(mix(i) & 0xffffffffffffffULL), gpus,
	   gpus);
	for (int c = 0; c < 4; c++)
		ap(o, "%s{\"type\":\"%s\",\"status\":\"%s\",\"lastHeartbeatTime\":\"2026-11-27T01:02:00Z\","
		      "\"lastTransitionTime\":\"2026-11-01T00:00:00Z\",\"reason\":\"%s\",\"message\":\"%s\"}",
		   c ? "," : "", conds[c], c == 3 ? "True" : "False", reasons[c], msgs[c]);
	ap(o, "],\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.%u.%u\"},{\"type\":\"InternalDNS\","
	      "\"address\":\"ip-10-0-%u-%u.ec2.internal\"},{\"type\":\"Hostname\",\"address\":\"gpu-node-%u\"}],"
	      "\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":10250}},"
	      "\"nodeInfo\":{\"machineID\":\"%016llx%016llx\",\"systemUUID\":\"%s\",\"bootID\":\"%s\","
	      "\"kernelVersion\":\"6.1.0-27-cloud-amd64\",\"osImage\":\"Debian GNU/Linux 12 (bookworm)\","
	      "\"containerRuntimeVersion\":\"containerd://1.7.20\",\"kubeletVersion\":\"v1.36.1\","
	      "\"kubeProxyVersion\":\"\",\"operatingSystem\":\"linux\",\"architecture\":\"amd64\"},"
	      "\"images\":[{\"names\":[\"registry.example/ml/trainer@sha256:3c1e0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a\","
	      "\"registry.example/ml/trainer:2.1\"],\"sizeBytes\":9876543210},"
	      "{\"names\":[\"registry.example/obs/exporter@sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0\","
	      "\"registry.example/obs/exporter:0.9.1\"],\"sizeBytes\":45678901}]}}",
	   (i >> 8) & 255, i & 255, (i >> 8) & 255, i & 255, i, (unsigned long long)mix(i + 11ULL),
	   (unsigned long long)mix(i + 12ULL), u, u);
}

/* Finds the first occurrence of what in [p, p+n): the offset of its end, or -1. */
static long find_after(const char *p, size_t n, const char *what)
{
	const char *q = memmem(p, n, what, strlen(what));

	return q ? (long)(q - p) + (long)strlen(what) : -1;
}

static void write_all(const char *dir, const char *kind, uint32_t count, uint32_t nodes, uint32_t gpus)
{
	struct out data, idx;
	char name[64];

	snprintf(name, sizeof(name), "%s.json", kind);
	out_open(&data, dir, name);
	snprintf(name, sizeof(name), "%s.idx", kind);
	out_open(&idx, dir, name);
	for (uint32_t i = 0; i < count; i++) {
		struct bench_rec r = { 0 };
		size_t start;
		long rv, h;

		if (i)
			raw(&data, ",", 1);
		if (OUTBUF - data.len < 256 * 1024)
			out_flush(&data);
		start = data.len;
		if (kind[0] == 'p')
			gen_pod(&data, i, nodes);
		else
			gen_node(&data, i, gpus);
		r.off = data.off + start;
		r.len = (uint32_t)(data.len - start);
		rv = find_after(data.buf + start, r.len, "\"resourceVersion\":\"");
		h = kind[0] == 'p' ? find_after(data.buf + start, r.len, "\"health\":\"") : 0;
		if (rv < 0 || h < 0) {
			fprintf(stderr, "gen: bad object %u\n", i);
			exit(1);
		}
		r.rv_rel = (uint32_t)rv;
		r.health_rel = (uint32_t)h;
		raw(&idx, (const char *)&r, sizeof(r));
	}
	out_close(&data);
	out_close(&idx);
}

/* DIR/pods.pb and DIR/pods.pbidx: every pod in protobuf (see struct bench_pbrec). */
static void write_pods_pb(const char *dir, uint32_t count, uint32_t nodes)
{
	struct out data, idx;
	struct pbw w = { 0 };

	out_open(&data, dir, "pods.pb");
	out_open(&idx, dir, "pods.pbidx");
	for (uint32_t i = 0; i < count; i++) {
		struct bench_pbrec r = { 0 };
		struct pb_marks m;
		uint8_t hdr[11];

		gen_pod_pb(&w, i, nodes, &m);
		hdr[0] = 0x12; /* PodList.items */
		r.hdr = (uint32_t)(1 + pb_varint_put(hdr + 1, w.len));
		r.off = data.off + data.len;
		r.len = (uint32_t)w.len;
		r.rv_rel = (uint32_t)m.rv;
		r.health_rel = (uint32_t)m.health;
		for (int k = 0; k < BENCH_PB_PATH; k++)
			r.path[k] = (uint32_t)m.path[k];
		if (memcmp(w.buf + m.health, "Healthy", 7) != 0 || w.buf[m.health - 1] != 7 ||
		    memcmp(w.buf + m.rv, "1", 1) != 0) {
			fprintf(stderr, "gen: bad protobuf pod %u\n", i);
			exit(1);
		}
		raw(&data, (const char *)hdr, r.hdr);
		raw(&data, (const char *)w.buf, w.len);
		raw(&idx, (const char *)&r, sizeof(r));
	}
	pb_free(&w);
	out_close(&data);
	out_close(&idx);
}

int main(int argc, char **argv)
{
	uint32_t pods, nodes, ppn, gpus;
	char path[4096];
	struct timespec t0, t1;
	FILE *f;

	if (argc != 4 || atol(argv[2]) <= 0 || atol(argv[3]) <= 0) {
		fprintf(stderr, "usage: gen DIR PODS NODES\n");
		return 2;
	}
	pods = (uint32_t)atol(argv[2]);
	nodes = (uint32_t)atol(argv[3]);
	if (pods > 10000000 || nodes > 1000000) {
		fprintf(stderr, "gen: at most 10,000,000 pods and 1,000,000 nodes\n");
		return 2;
	}
	ppn = (pods + nodes - 1) / nodes;
	gpus = (ppn + 7) / 8 * 8;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (mkdir(argv[1], 0755) != 0 && errno != EEXIST)
		die("cannot create", argv[1]);
	snprintf(path, sizeof(path), "%s/DONE", argv[1]);
	unlink(path);
	write_all(argv[1], "pods", pods, nodes, gpus);
	write_pods_pb(argv[1], pods, nodes);
	write_all(argv[1], "nodes", nodes, nodes, gpus);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%s %u %u %u\n", BENCH_FORMAT, pods, nodes, gpus) < 0 || fclose(f) != 0)
		die("cannot write", path);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("generated %u pods on %u nodes (%u GPUs each) in %.1f s\n", pods, nodes, gpus,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
