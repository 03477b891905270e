// pbfixtures writes the protobuf test fixtures of device-descheduler's Pod decoder
// (test/fixtures/pb/) with the Kubernetes Go libraries themselves, each with its JSON
// twin, so the C decoder can be tested differentially: decode the JSON and the protobuf
// of the same object and compare. See test/fixtures/pb/README.md for what each file is.
//
//	pbfixtures [-in test/fixtures] [-out test/fixtures/pb]   write the fixtures
//	pbfixtures -verify [-in ...] [-out ...]                  check them (no writes)
//	pbfixtures -dump FILE                                    print a .pb (object, list or
//	                                                         watch stream) as JSON lines
//
// The encoders are built the way kube-apiserver builds its own (same CodecFactory
// options as k8s.io/apiserver's NewDefaultAPIGroupInfo; the watch encoding is
// k8s.io/apiserver/pkg/endpoints/handlers/response.go's watchEncoder.doEncode), so the
// bytes are those the server sends. -verify also re-encodes the real captures
// (real-*.pb, taken from a real kube-apiserver) with these encoders and requires the
// same bytes, which is what ties the made-up fixtures to the server's real output.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
	mediaJSON     = "application/json"
	listRV        = "12345"
	listContinue  = "token-abc"
)

// The input pods, in test/fixtures (-in); each X.json gives X.pb and X.roundtrip.json.
var inputPods = []string{"pod-device-plugin-unhealthy", "pod-dra-unhealthy"}

// codec holds the server-side encoders and a decoder.
type codec struct {
	codecs serializer.CodecFactory
	pb, js runtime.SerializerInfo
	gv     schema.GroupVersion
}

func newCodec() *codec {
	scheme := runtime.NewScheme()
	// core/v1 registers its types and, through metav1.AddToGroupVersion, WatchEvent and
	// the unversioned Status in "v1".
	if err := corev1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	// The options kube-apiserver's API groups use (k8s.io/apiserver/pkg/server/
	// genericapiserver.go, NewDefaultAPIGroupInfo): lists are written item by item.
	cf := serializer.NewCodecFactory(scheme,
		serializer.WithStreamingCollectionEncodingToJSON(),
		serializer.WithStreamingCollectionEncodingToProtobuf())
	c := &codec{codecs: cf, gv: corev1.SchemeGroupVersion}
	var ok bool
	if c.pb, ok = runtime.SerializerInfoForMediaType(cf.SupportedMediaTypes(), mediaProtobuf); !ok {
		panic("no protobuf serializer")
	}
	if c.js, ok = runtime.SerializerInfoForMediaType(cf.SupportedMediaTypes(), mediaJSON); !ok {
		panic("no JSON serializer")
	}
	return c
}

// object encodes obj as a whole response body (GET, LIST or an error Status) is encoded:
// protobuf gives "k8s\x00" + runtime.Unknown{TypeMeta, Raw}; JSON gives one line.
func (c *codec) object(info runtime.SerializerInfo, obj runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	if err := c.codecs.EncoderForVersion(info.Serializer, c.gv).Encode(obj, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// watchStream encodes events as kube-apiserver's watch handler does
// (handlers/watch.go serveWatchHandler + response.go watchEncoder.doEncode): the object
// with the negotiated serializer (protobuf: with the k8s\x00 envelope), put as raw bytes
// in a metav1.WatchEvent, the event encoded with the *stream* serializer (protobuf: the
// raw message, no envelope) and written in one Write to the framer (protobuf: 4-byte
// big-endian length prefix; JSON: none, each event ends in '\n').
func (c *codec) watchStream(info runtime.SerializerInfo, events []watch.Event) ([]byte, error) {
	var out bytes.Buffer
	frames := info.StreamSerializer.Framer.NewFrameWriter(&out)
	embedded := c.codecs.EncoderForVersion(info.Serializer, c.gv)
	enc := c.codecs.EncoderForVersion(info.StreamSerializer.Serializer, c.gv)
	for _, ev := range events {
		var obj, evbuf bytes.Buffer
		if err := embedded.Encode(ev.Object, &obj); err != nil {
			return nil, err
		}
		we := &metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: obj.Bytes()}}
		if err := enc.Encode(we, &evbuf); err != nil {
			return nil, err
		}
		if _, err := frames.Write(evbuf.Bytes()); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// decode decodes one whole body (protobuf with its envelope, or JSON).
func (c *codec) decode(data []byte) (runtime.Object, error) {
	obj, _, err := c.codecs.UniversalDeserializer().Decode(data, nil, nil)
	return obj, err
}

// splitWatch splits a protobuf watch stream by hand (not with the library's framer, so
// the layout is checked independently): each frame is a 4-byte big-endian length and a
// metav1.WatchEvent message of that length.
func splitWatch(data []byte) ([]metav1.WatchEvent, error) {
	var evs []metav1.WatchEvent
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, fmt.Errorf("truncated frame header (%d bytes left)", len(data))
		}
		n := binary.BigEndian.Uint32(data[:4])
		if uint64(n) > uint64(len(data)-4) {
			return nil, fmt.Errorf("frame of %d bytes, %d left", n, len(data)-4)
		}
		var ev metav1.WatchEvent
		if err := ev.Unmarshal(data[4 : 4+n]); err != nil {
			return nil, fmt.Errorf("frame %d: %v", len(evs), err)
		}
		if !bytes.HasPrefix(ev.Object.Raw, []byte("k8s\x00")) {
			return nil, fmt.Errorf("frame %d: object.raw does not start with k8s\\x00", len(evs))
		}
		evs = append(evs, ev)
		data = data[4+n:]
	}
	return evs, nil
}

// splitWatchJSON splits a JSON watch stream: one event per line.
func splitWatchJSON(data []byte) ([]metav1.WatchEvent, error) {
	var evs []metav1.WatchEvent
	for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var ev metav1.WatchEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// ---- the fixtures -------------------------------------------------------------------

func ts(s string) metav1.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return metav1.NewTime(t.UTC())
}

func tsp(s string) *metav1.Time { t := ts(s); return &t }

func q(s string) resource.Quantity { return resource.MustParse(s) }

func ptr[T any](v T) *T { return &v }

func base(name, ns, uid, rv string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, UID: types.UID(uid), ResourceVersion: rv,
			CreationTimestamp: ts("2026-11-20T09:59:00Z"),
		},
		Spec: corev1.PodSpec{
			NodeName: "gpu-node-05", RestartPolicy: corev1.RestartPolicyAlways,
			Containers: []corev1.Container{{Name: "main", Image: "registry.example/app:1"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func gpuStatus(name string, health corev1.ResourceHealthStatus, msg *string) corev1.ResourceStatus {
	return corev1.ResourceStatus{Name: corev1.ResourceName(name), Resources: []corev1.ResourceHealth{
		{ResourceID: "GPU-0aa1", Health: health, Message: msg}}}
}

// managedFields as a real API server writes them: kubectl's apply, the scheduler's
// binding and the kubelet's status, each with its fieldsV1 set (the bulk of a real Pod).
func managedFields() []metav1.ManagedFieldsEntry {
	f := func(s string) *metav1.FieldsV1 { return &metav1.FieldsV1{Raw: []byte(s)} }
	return []metav1.ManagedFieldsEntry{
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
			Time: tsp("2026-11-20T09:59:00Z"), FieldsType: "FieldsV1",
			FieldsV1: f(`{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"0b9f5a2e-7c1d-4e2f-8a3b-9c4d5e6f7a8b\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"trainer\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{".":{},"f:limits":{".":{},"f:cpu":{},"f:memory":{},"f:nvidia.com/gpu":{}},"f:requests":{".":{},"f:cpu":{},"f:memory":{},"f:nvidia.com/gpu":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}`)},
		{Manager: "kube-scheduler", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
			Time: tsp("2026-11-20T09:59:01Z"), FieldsType: "FieldsV1", Subresource: "status",
			FieldsV1: f(`{"f:status":{"f:conditions":{".":{},"k:{\"type\":\"PodScheduled\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}}}}`)},
		{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
			Time: tsp("2026-11-27T01:02:03Z"), FieldsType: "FieldsV1", Subresource: "status",
			FieldsV1: f(`{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Initialized\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"PodReadyToStartContainers\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:hostIPs":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"10.244.1.17\"}":{".":{},"f:ip":{}}},"f:startTime":{}}}`)},
		{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1",
			Time: tsp("2026-11-20T09:58:59Z"), FieldsType: "FieldsV1",
			FieldsV1: f(`{"f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/last-applied-configuration":{}}}}`)},
	}
}

// variants are Pods made here so that every field the controller reads is covered.
func variants() map[string]*corev1.Pod {
	v := map[string]*corev1.Pod{}

	p := base("drain-me-0", "ml", "11111111-2222-4333-8444-555555555501", "900101")
	p.DeletionTimestamp = tsp("2026-11-27T02:00:00Z")
	p.DeletionGracePeriodSeconds = ptr(int64(30))
	p.Finalizers = []string{"example.com/cleanup"}
	v["variant-deleting"] = p

	p = base("owned-ümlaut-0", "ml", "11111111-2222-4333-8444-555555555502", "900102")
	p.GenerateName = "owned-"
	p.Labels = map[string]string{"app": "trainer", "team": "größe-δ-训练", "tier": ""}
	p.Annotations = map[string]string{"example.com/note": "non-ASCII: café ✓ 😀", "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}\n"}
	p.OwnerReferences = []metav1.OwnerReference{
		{APIVersion: "batch/v1", Kind: "Job", Name: "train-42", UID: "0b9f5a2e-7c1d-4e2f-8a3b-000000000042", Controller: ptr(true), BlockOwnerDeletion: ptr(true)},
		{APIVersion: "v1", Kind: "ConfigMap", Name: "not-the-controller", UID: "0b9f5a2e-7c1d-4e2f-8a3b-000000000043", Controller: ptr(false)},
	}
	v["variant-owner-labels-utf8"] = p

	p = base("init-1", "ml", "11111111-2222-4333-8444-555555555503", "900103")
	p.Spec.InitContainers = []corev1.Container{
		{Name: "fetch", Image: "registry.example/fetch:1"},
		{Name: "gpu-check", Image: "registry.example/gpu-check:1", RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways),
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": q("1")}, Requests: corev1.ResourceList{"nvidia.com/gpu": q("1")}}},
	}
	p.Status.Phase = corev1.PodPending
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: "fetch", Ready: false, RestartCount: 0, Image: "registry.example/fetch:1",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
				StartedAt: ts("2026-11-27T01:00:00Z"), FinishedAt: ts("2026-11-27T01:00:05Z")}}},
		{Name: "gpu-check", Ready: false, RestartCount: 4, Started: ptr(false), Image: "registry.example/gpu-check:1",
			State:                    corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 1m20s"}},
			LastTerminationState:     corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}},
			AllocatedResourcesStatus: []corev1.ResourceStatus{gpuStatus("nvidia.com/gpu", corev1.ResourceHealthStatusUnhealthy, ptr("XID 48: double bit ECC error"))}},
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: "main", Ready: false, Image: "registry.example/app:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}},
	}
	v["variant-init-containers"] = p

	p = base("states-0", "ml", "11111111-2222-4333-8444-555555555504", "900104")
	p.Spec.Containers = []corev1.Container{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: "a", Ready: true, Started: ptr(true), RestartCount: 0,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ts("2026-11-20T10:00:00Z")}}},
		{Name: "b", Ready: false, Started: ptr(false), RestartCount: 12,
			State:                corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", Signal: 9, Message: "killed"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 139, Reason: "Error"}}},
		{Name: "c", Ready: false, RestartCount: 2147483647,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: "secret \"x\" not found"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: -1, Reason: "Unknown"}}},
		{Name: "d", Ready: false, RestartCount: 1,
			State:                corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 255}}},
	}
	v["variant-container-states"] = p

	p = base("low-prio-0", "batch", "11111111-2222-4333-8444-555555555505", "900105")
	p.Spec.Priority = ptr(int32(-100))
	p.Spec.PriorityClassName = "best-effort-negative"
	v["variant-priority-negative"] = p

	p = base("critical-0", "kube-system", "11111111-2222-4333-8444-555555555506", "900106")
	p.Spec.Priority = ptr(int32(2000001000))
	p.Spec.PriorityClassName = "system-node-critical"
	v["variant-priority-critical"] = p

	p = base("resources-0", "ml", "11111111-2222-4333-8444-555555555507", "900107")
	p.Spec.Priority = ptr(int32(0))
	p.Spec.Containers = []corev1.Container{
		{Name: "big", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{"cpu": q("1"), "memory": q("2Gi"), "nvidia.com/gpu": q("8"), "ephemeral-storage": q("0")},
			Limits:   corev1.ResourceList{"cpu": q("500m"), "memory": q("2048Mi"), "nvidia.com/gpu": q("8"), "hugepages-2Mi": q("1Gi")}}},
		{Name: "odd", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{"cpu": q("0.5"), "memory": q("1e9"), "example.com/fpga": q("1k")},
			Limits:   corev1.ResourceList{"cpu": q("1.5"), "memory": q("1G"), "example.com/fpga": q("1000")}}},
		{Name: "none"},
	}
	v["variant-resources"] = p

	p = base("dra-0", "serving", "11111111-2222-4333-8444-555555555508", "900108")
	p.Spec.ResourceClaims = []corev1.PodResourceClaim{
		{Name: "gpus", ResourceClaimTemplateName: ptr("two-gpus")},
		{Name: "shared", ResourceClaimName: ptr("shared-fpga")},
		{Name: "unused", ResourceClaimTemplateName: ptr("nothing")},
	}
	p.Spec.Containers = []corev1.Container{
		{Name: "server", Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "gpus"}, {Name: "shared", Request: "fpga-0"}}}},
		{Name: "sidecar", Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "gpus", Request: "gpu-1"}}}},
	}
	p.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{
		{Name: "gpus", ResourceClaimName: ptr("dra-0-gpus-7xq2p")},
		{Name: "shared", ResourceClaimName: ptr("shared-fpga")},
		{Name: "unused"}, // a template that produced no claim: resourceClaimName unset
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: "server", Ready: true, RestartCount: 0,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ts("2026-11-20T10:00:00Z")}},
			AllocatedResourcesStatus: []corev1.ResourceStatus{
				{Name: "claim:gpus/gpu-0", Resources: []corev1.ResourceHealth{
					{ResourceID: "gpu.example.com/gpu-node-05/gpu-0", Health: corev1.ResourceHealthStatusHealthy},
					{ResourceID: "gpu.example.com/gpu-node-05/gpu-1", Health: corev1.ResourceHealthStatusUnhealthy, Message: ptr("XID 79: GPU has fallen off the bus")},
					{ResourceID: "gpu.example.com/gpu-node-05/gpu-2", Health: corev1.ResourceHealthStatusUnknown, Message: ptr("")},
					{ResourceID: "gpu.example.com/gpu-node-05/gpu-3", Health: corev1.ResourceHealthStatusUnknown}}},
				{Name: "claim:shared/fpga-0", Resources: []corev1.ResourceHealth{
					{ResourceID: "fpga.example.com/gpu-node-05/fpga-0", Health: corev1.ResourceHealthStatusHealthy, Message: ptr("ok: température normale")}}},
			}},
		{Name: "sidecar", Ready: false, RestartCount: 1,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
	}
	v["variant-dra-claims"] = p

	p = base("applied-0", "ml", "11111111-2222-4333-8444-555555555509", "900109")
	p.Labels = map[string]string{"app": "trainer", "pod-template-hash": "7d9f8c6b5"}
	p.ManagedFields = managedFields()
	v["variant-managed-fields"] = p

	// The pod of the watch stream's ADDED/MODIFIED events, before and after its GPU
	// turns unhealthy.
	v["variant-health-before"] = healthPod("900110", corev1.ResourceHealthStatusHealthy, nil)
	v["variant-health-after"] = healthPod("900111", corev1.ResourceHealthStatusUnhealthy, ptr("XID 79: GPU has fallen off the bus"))
	return v
}

func healthPod(rv string, h corev1.ResourceHealthStatus, msg *string) *corev1.Pod {
	p := base("flip-0", "ml", "11111111-2222-4333-8444-555555555510", rv)
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits: corev1.ResourceList{"nvidia.com/gpu": q("1")}, Requests: corev1.ResourceList{"nvidia.com/gpu": q("1")}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", Ready: true, Started: ptr(true),
		State:                    corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ts("2026-11-20T10:00:00Z")}},
		AllocatedResourcesStatus: []corev1.ResourceStatus{gpuStatus("nvidia.com/gpu", h, msg)}}}
	return p
}

// bookmark is the object of a BOOKMARK event: a Pod with only its resourceVersion and,
// at the end of a WatchList's initial events, the initial-events-end annotation.
func bookmark(rv string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		ResourceVersion: rv, Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}
}

func status410() *metav1.Status {
	s := apierrors.NewResourceExpired("too old resource version: 1 (2)").ErrStatus
	return &s
}

// status429 is the Status of an eviction refused by a PodDisruptionBudget
// (k8s.io/kubernetes/pkg/registry/core/pod/storage/eviction.go), with retryAfterSeconds 3.
func status429() *metav1.Status {
	s := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 3).ErrStatus
	s.Details.Causes = append(s.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause,
		Message: "The disruption budget trainer-pdb needs 4 healthy pods and has 4 currently"})
	return &s
}

// ---- generation ---------------------------------------------------------------------

// files maps each fixture's file name to its bytes.
type files map[string][]byte

func readPod(c *codec, path string) (*corev1.Pod, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj, err := c.decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not a Pod", path, obj)
	}
	return pod, nil
}

// build makes every generated fixture in memory.
func build(c *codec, in string) (files, []*corev1.Pod, error) {
	out := files{}
	var all []*corev1.Pod
	named := map[string]*corev1.Pod{}
	var names []string
	for _, n := range inputPods {
		pod, err := readPod(c, filepath.Join(in, n+".json"))
		if err != nil {
			return nil, nil, err
		}
		named[n] = pod
		names = append(names, n)
	}
	vs := variants()
	var vnames []string
	for n := range vs {
		vnames = append(vnames, n)
	}
	sort.Strings(vnames)
	for _, n := range vnames {
		named[n] = vs[n]
		names = append(names, n)
	}
	for _, n := range names {
		// As the server holds them: no TypeMeta on the object itself (the encoder sets
		// it on a top-level object; list items and watch objects go without in JSON).
		pod := named[n].DeepCopy()
		pod.TypeMeta = metav1.TypeMeta{}
		named[n] = pod
		pb, err := c.object(c.pb, pod)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", n, err)
		}
		js, err := c.object(c.js, pod)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", n, err)
		}
		out[n+".pb"], out[n+".roundtrip.json"] = pb, js
		all = append(all, pod)
	}

	list := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: listRV, Continue: listContinue}}
	for _, p := range all {
		list.Items = append(list.Items, *p)
	}
	var err error
	if out["podlist.pb"], err = c.object(c.pb, list); err != nil {
		return nil, nil, err
	}
	if out["podlist.json"], err = c.object(c.js, list); err != nil {
		return nil, nil, err
	}

	deleted := named["variant-deleting"].DeepCopy()
	deleted.ResourceVersion = "900120"
	events := []watch.Event{
		{Type: watch.Added, Object: named["pod-device-plugin-unhealthy"]},
		{Type: watch.Added, Object: named["pod-dra-unhealthy"]},
		{Type: watch.Added, Object: named["variant-health-before"]},
		{Type: watch.Modified, Object: named["variant-health-after"]},
		{Type: watch.Deleted, Object: deleted},
		{Type: watch.Bookmark, Object: bookmark("900130")},
		{Type: watch.Error, Object: status410()},
	}
	if out["watch.pb"], err = c.watchStream(c.pb, events); err != nil {
		return nil, nil, err
	}
	if out["watch.jsonl"], err = c.watchStream(c.js, events); err != nil {
		return nil, nil, err
	}
	for name, st := range map[string]*metav1.Status{"status-410": status410(), "status-429": status429()} {
		if out[name+".pb"], err = c.object(c.pb, st); err != nil {
			return nil, nil, err
		}
		if out[name+".json"], err = c.object(c.js, st); err != nil {
			return nil, nil, err
		}
	}
	return out, all, nil
}

func sortedNames(f files) []string {
	var names []string
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ---- verification -------------------------------------------------------------------

// equalObjects compares two decoded objects the way the API machinery does (quantities
// by value, times by instant).
func equalObjects(what string, a, b runtime.Object) error {
	if !apiequality.Semantic.DeepEqual(a, b) {
		return fmt.Errorf("%s: protobuf and JSON decode differently:\n%s", what, diff.Diff(a, b))
	}
	return nil
}

func decodePair(c *codec, dir, pbName, jsName string) (runtime.Object, runtime.Object, error) {
	pbData, err := os.ReadFile(filepath.Join(dir, pbName))
	if err != nil {
		return nil, nil, err
	}
	jsData, err := os.ReadFile(filepath.Join(dir, jsName))
	if err != nil {
		return nil, nil, err
	}
	if !bytes.HasPrefix(pbData, []byte("k8s\x00")) {
		return nil, nil, fmt.Errorf("%s: no k8s\\x00 magic", pbName)
	}
	a, err := c.decode(pbData)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", pbName, err)
	}
	b, err := c.decode(jsData)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", jsName, err)
	}
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return nil, nil, fmt.Errorf("%s is a %T, %s a %T", pbName, a, jsName, b)
	}
	return a, b, nil
}

func compareWatch(c *codec, what string, pbData, jsData []byte) (int, error) {
	pevs, err := splitWatch(pbData)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", what, err)
	}
	jevs, err := splitWatchJSON(jsData)
	if err != nil {
		return 0, fmt.Errorf("%s (JSON): %v", what, err)
	}
	if len(pevs) != len(jevs) {
		return 0, fmt.Errorf("%s: %d protobuf events, %d JSON events", what, len(pevs), len(jevs))
	}
	for i := range pevs {
		if pevs[i].Type != jevs[i].Type {
			return 0, fmt.Errorf("%s event %d: type %s vs %s", what, i, pevs[i].Type, jevs[i].Type)
		}
		a, err := c.decode(pevs[i].Object.Raw)
		if err != nil {
			return 0, fmt.Errorf("%s event %d: %v", what, i, err)
		}
		b, err := c.decode(jevs[i].Object.Raw)
		if err != nil {
			return 0, fmt.Errorf("%s event %d (JSON): %v", what, i, err)
		}
		if err := equalObjects(fmt.Sprintf("%s event %d (%s)", what, i, pevs[i].Type), a, b); err != nil {
			return 0, err
		}
	}
	return len(pevs), nil
}

// jsonDiffs lists the paths where two JSON documents differ (what Go drops or rewrites).
func jsonDiffs(path string, a, b any, out *[]string) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: %v -> %v", path, short(a), short(b)))
			return
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		var ks []string
		for k := range keys {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			x, inA := av[k]
			y, inB := bv[k]
			switch {
			case !inA:
				*out = append(*out, fmt.Sprintf("%s.%s: added %v", path, k, short(y)))
			case !inB:
				*out = append(*out, fmt.Sprintf("%s.%s: dropped (was %v)", path, k, short(x)))
			default:
				jsonDiffs(path+"."+k, x, y, out)
			}
		}
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			*out = append(*out, fmt.Sprintf("%s: %v -> %v", path, short(a), short(b)))
			return
		}
		for i := range av {
			jsonDiffs(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i], out)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, fmt.Sprintf("%s: %v -> %v", path, short(a), short(b)))
		}
	}
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

// verify checks the fixtures in dir: they are exactly what build makes now, each .pb
// decodes (with the Go serializer) to the same object as its JSON twin, the watch
// stream's frames split as documented, and the real captures re-encode byte for byte.
func verify(c *codec, in, dir string) error {
	want, _, err := build(c, in)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range sortedNames(want) {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			errs = append(errs, err)
		} else if !bytes.Equal(got, want[n]) {
			errs = append(errs, fmt.Errorf("%s: differs from what the generator makes now (run make pb-fixtures)", n))
		}
	}
	checked := 0
	for _, n := range sortedNames(want) {
		if !strings.HasSuffix(n, ".pb") || n == "watch.pb" {
			continue
		}
		stem := strings.TrimSuffix(n, ".pb")
		twin := stem + ".roundtrip.json"
		if _, ok := want[twin]; !ok {
			twin = stem + ".json"
		}
		a, b, err := decodePair(c, dir, n, twin)
		if err == nil {
			err = equalObjects(n+" vs "+twin, a, b)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		checked++
		if l, ok := a.(*corev1.PodList); ok && (l.ResourceVersion != listRV || l.Continue != listContinue) {
			errs = append(errs, fmt.Errorf("%s: list metadata %q %q", n, l.ResourceVersion, l.Continue))
		}
	}
	pbw, err1 := os.ReadFile(filepath.Join(dir, "watch.pb"))
	jsw, err2 := os.ReadFile(filepath.Join(dir, "watch.jsonl"))
	if err := errors.Join(err1, err2); err != nil {
		errs = append(errs, err)
	} else if n, err := compareWatch(c, "watch.pb", pbw, jsw); err != nil {
		errs = append(errs, err)
	} else {
		fmt.Printf("verify: watch.pb: %d events, each equal to its watch.jsonl line\n", n)
	}
	fmt.Printf("verify: %d .pb files decode equal to their JSON twins\n", checked)

	// What Go's decode+encode changes in the hand-written input pods.
	for _, n := range inputPods {
		var a, b any
		orig, err := os.ReadFile(filepath.Join(in, n+".json"))
		if err == nil {
			err = json.Unmarshal(orig, &a)
		}
		if err == nil {
			err = json.Unmarshal(want[n+".roundtrip.json"], &b)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var d []string
		jsonDiffs("", a, b, &d)
		fmt.Printf("verify: %s.json -> %s.roundtrip.json: %d JSON differences\n", n, n, len(d))
		for _, s := range d {
			fmt.Printf("    %s\n", s)
		}
	}
	if err := verifyReal(c, dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// verifyReal re-encodes the captures from a real kube-apiserver with this program's
// encoders: the same bytes prove the generated fixtures have the server's layout. It
// also requires real-list.pb and real-list.json (taken at the same resourceVersion) to
// decode to the same PodList.
func verifyReal(c *codec, dir string) error {
	var errs []error
	captures := []struct {
		name  string
		info  runtime.SerializerInfo
		watch bool
	}{
		{"real-list.pb", c.pb, false}, {"real-list.json", c.js, false}, {"real-pod.pb", c.pb, false},
		{"real-status-404.pb", c.pb, false}, {"real-status-400.pb", c.pb, false},
		{"real-status-410-list-exact.pb", c.pb, false}, {"real-status-410-continue.pb", c.pb, false},
		{"real-watch.pb", c.pb, true}, {"real-watch.jsonl", c.js, true},
		{"real-watchlist.pb", c.pb, true}, {"real-watch-bookmark.pb", c.pb, true},
		{"real-watch-410.pb", c.pb, true}, {"real-watch-410.jsonl", c.js, true},
	}
	for _, cp := range captures {
		data, err := os.ReadFile(filepath.Join(dir, cp.name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			errs = append(errs, err)
			continue
		}
		var again []byte
		what := ""
		if !cp.watch {
			var obj runtime.Object
			if obj, err = c.decode(data); err == nil {
				again, err = c.object(cp.info, obj)
				what = fmt.Sprintf("a %T", obj)
			}
		} else {
			var evs []metav1.WatchEvent
			if cp.info.MediaType == mediaJSON {
				evs, err = splitWatchJSON(data)
			} else {
				evs, err = splitWatch(data)
			}
			var wevs []watch.Event
			for i := 0; err == nil && i < len(evs); i++ {
				var obj runtime.Object
				if obj, err = c.decode(evs[i].Object.Raw); err == nil {
					wevs = append(wevs, watch.Event{Type: watch.EventType(evs[i].Type), Object: obj})
				}
			}
			if err == nil {
				again, err = c.watchStream(cp.info, wevs)
				what = fmt.Sprintf("%d events", len(evs))
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", cp.name, err))
		} else if !bytes.Equal(again, data) {
			errs = append(errs, fmt.Errorf("%s: re-encoded differs from the server's bytes", cp.name))
		} else {
			fmt.Printf("verify: %s (%s) re-encodes to the server's exact %d bytes\n", cp.name, what, len(data))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "real-list.json")); err == nil {
		a, b, err := decodePair(c, dir, "real-list.pb", "real-list.json")
		if err == nil {
			err = equalObjects("real-list.pb vs real-list.json", a, b)
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			fmt.Println("verify: real-list.pb and real-list.json decode to the same PodList")
		}
	}
	pbw, err1 := os.ReadFile(filepath.Join(dir, "real-watch-410.pb"))
	jsw, err2 := os.ReadFile(filepath.Join(dir, "real-watch-410.jsonl"))
	if err1 == nil && err2 == nil {
		if n, err := compareWatch(c, "real-watch-410.pb", pbw, jsw); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Printf("verify: real-watch-410.pb: %d events, each equal to its real-watch-410.jsonl line\n", n)
		}
	}
	return errors.Join(errs...)
}

// dump prints a .pb file: an object or list (k8s\x00 envelope) as one JSON line, or a
// watch stream as one line per frame (frame length, event type, object JSON).
func dump(c *codec, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	show := func(prefix string, raw []byte) error {
		obj, err := c.decode(raw)
		if err != nil {
			return err
		}
		js, err := c.object(c.js, obj)
		if err != nil {
			return err
		}
		fmt.Printf("%s%s", prefix, js)
		return nil
	}
	if bytes.HasPrefix(data, []byte("k8s\x00")) {
		fmt.Printf("# object, %d bytes, first 16: % x\n", len(data), data[:min(16, len(data))])
		return show("", data)
	}
	evs, err := splitWatch(data)
	if err != nil {
		return err
	}
	off := 0
	for _, ev := range evs {
		n := binary.BigEndian.Uint32(data[off:])
		fmt.Printf("# frame at %d: length %d, first 16: % x\n", off, n, data[off:off+min(16, int(n)+4)])
		if err := show(ev.Type+" ", ev.Object.Raw); err != nil {
			return err
		}
		off += 4 + int(n)
	}
	return nil
}

func main() {
	in := flag.String("in", "test/fixtures", "directory of the input pods (X.json)")
	out := flag.String("out", "test/fixtures/pb", "directory of the fixtures")
	doVerify := flag.Bool("verify", false, "check the fixtures instead of writing them")
	dumpFile := flag.String("dump", "", "print this .pb file as JSON and exit")
	flag.Parse()
	c := newCodec()
	var err error
	switch {
	case *dumpFile != "":
		err = dump(c, *dumpFile)
	case *doVerify:
		err = verify(c, *in, *out)
		if err == nil {
			fmt.Println("verify: OK")
		}
	default:
		var f files
		if f, _, err = build(c, *in); err == nil {
			err = os.MkdirAll(*out, 0o755)
		}
		for _, n := range sortedNames(f) {
			if err != nil {
				break
			}
			err = os.WriteFile(filepath.Join(*out, n), f[n], 0o644)
		}
		if err == nil {
			fmt.Printf("pbfixtures: wrote %d files to %s\n", len(f), *out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pbfixtures:", err)
		os.Exit(1)
	}
}
