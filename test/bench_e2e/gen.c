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

static const char managed_fields[] =
	"{\"manager\":\"kube-controller-manager\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
	"\"time\":\"2026-11-20T09:59:00Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":"
	"{\"f:generateName\":{},\"f:labels\":{\".\":{},\"f:app\":{},\"f:pod-template-hash\":{},\"f:team\":{},"
	"\"f:tier\":{}},\"f:ownerReferences\":{\".\":{},\"k:{\\\"uid\\\":\\\"5e0c2f1a\\\"}\":{}}},"
	"\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"trainer\\\"}\":{\".\":{},\"f:args\":{},\"f:command\":{},"
	"\"f:env\":{\".\":{},\"k:{\\\"name\\\":\\\"NCCL_DEBUG\\\"}\":{\".\":{},\"f:name\":{},\"f:value\":{}},"
	"\"k:{\\\"name\\\":\\\"OMP_NUM_THREADS\\\"}\":{\".\":{},\"f:name\":{},\"f:value\":{}}},\"f:image\":{},"
	"\"f:imagePullPolicy\":{},\"f:livenessProbe\":{\".\":{},\"f:failureThreshold\":{},\"f:httpGet\":{\".\":{},"
	"\"f:path\":{},\"f:port\":{},\"f:scheme\":{}},\"f:periodSeconds\":{}},\"f:name\":{},\"f:ports\":{},"
	"\"f:resources\":{\".\":{},\"f:limits\":{\".\":{},\"f:cpu\":{},\"f:memory\":{},\"f:nvidia.com/gpu\":{}},"
	"\"f:requests\":{\".\":{},\"f:cpu\":{},\"f:memory\":{},\"f:nvidia.com/gpu\":{}}},\"f:volumeMounts\":{}},"
	"\"k:{\\\"name\\\":\\\"metrics-exporter\\\"}\":{\".\":{},\"f:image\":{},\"f:name\":{},\"f:ports\":{},"
	"\"f:resources\":{}}},\"f:dnsPolicy\":{},\"f:enableServiceLinks\":{},\"f:restartPolicy\":{},"
	"\"f:schedulerName\":{},\"f:securityContext\":{},\"f:terminationGracePeriodSeconds\":{},\"f:tolerations\":{},"
	"\"f:volumes\":{}}}},"
	"{\"manager\":\"kubelet\",\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"2026-11-27T01:02:03Z\","
	"\"fieldsType\":\"FieldsV1\",\"subresource\":\"status\",\"fieldsV1\":{\"f:status\":{\"f:conditions\":{"
	"\"k:{\\\"type\\\":\\\"ContainersReady\\\"}\":{\".\":{},\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{},"
	"\"f:status\":{},\"f:type\":{}},\"k:{\\\"type\\\":\\\"Initialized\\\"}\":{\".\":{},\"f:lastProbeTime\":{},"
	"\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}},\"k:{\\\"type\\\":\\\"PodReadyToStartContainers\\\"}\":"
	"{\".\":{},\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}},"
	"\"k:{\\\"type\\\":\\\"Ready\\\"}\":{\".\":{},\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{},"
	"\"f:status\":{},\"f:type\":{}}},\"f:containerStatuses\":{},\"f:hostIP\":{},\"f:hostIPs\":{},\"f:phase\":{},"
	"\"f:podIP\":{},\"f:podIPs\":{\".\":{},\"k:{\\\"ip\\\":\\\"10.244.1.17\\\"}\":{\".\":{},\"f:ip\":{}}},"
	"\"f:startTime\":{}}}}";

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
	write_all(argv[1], "nodes", nodes, nodes, gpus);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%s %u %u %u\n", BENCH_FORMAT, pods, nodes, gpus) < 0 || fclose(f) != 0)
		die("cannot write", path);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("generated %u pods on %u nodes (%u GPUs each) in %.1f s\n", pods, nodes, gpus,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
