"""Scale (issue 12): the pod cache keeps only the pods that hold a device under the policy, and
the initial sync streams (WatchList) where the server serves it.

The others are counted (device_descheduler_ignored_objects) but not stored; a pod that gains a
device through an update is cached from then on and one that loses it leaves; a policy reload
that widens the device set relists the pods, and the pods it brings in are evicted like any.

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_scale -v
"""

import signal

from test.integration.scenario import (GPU, Pod, ScenarioTest, base_policy, evictions, pod_obj, policy_yaml,
                                       stop_shared_servers, wait_evictions, wait_for, write_atomic)

tearDownModule = stop_shared_servers

FPGA = "example.com/fpga"


class DeviceOnlyCache(ScenarioTest):

    def cluster_with(self, cpu_pods, fpga_pods):
        """Node gpu-node-1 with two GPU pods, `cpu_pods` pods without devices and `fpga_pods`
        pods holding an FPGA; returns (gpu pods, cpu pods, fpga pods) as created."""
        c = self.cluster
        c.node("gpu-node-1")
        rs = self.rs = c.replicaset("trainer-7c9d8f6b5")
        gpu = [c.pod("trainer-7c9d8f6b5-g%d" % i, "gpu-node-1", rs=rs) for i in range(2)]
        cpu = [c.pod("web-%d" % i, "gpu-node-1", devices=[], rs=rs) for i in range(cpu_pods)]
        fpga = [c.pod("fpga-job-%d" % i, "gpu-node-1", devices=["fpga-%d" % i], rs=rs, resource=FPGA)
                for i in range(fpga_pods)]
        return gpu, cpu, fpga

    def wait_cache(self, ctl, cached, ignored):
        ctl.wait_metric("cached_objects", cached, resource="pods")
        ctl.wait_metric("ignored_objects", ignored, resource="pods")

    def test_only_device_pods_are_cached(self):
        gpu, cpu, fpga = self.cluster_with(cpu_pods=12, fpga_pods=2)
        ctl = self.controller(base_policy(devices={"resources": [GPU]}))
        ctl.wait_log(r"caches synced: 2 pods with devices \(14 others not cached\)")
        self.wait_cache(ctl, 2, 14)

        # A pod that gains a GPU through an update is cached, and evicted when its GPU fails.
        web = cpu[0]
        self.cluster.bulk([pod_obj(web.name, web.node, ["GPU-late-0"], owner=self.rs,
                                   labels=web.obj["metadata"]["labels"])])
        self.wait_cache(ctl, 3, 13)
        # One that loses its GPU leaves the cache.
        g1 = gpu[1]
        self.cluster.bulk([pod_obj(g1.name, g1.node, [], owner=self.rs, labels=g1.obj["metadata"]["labels"])])
        self.wait_cache(ctl, 2, 14)
        # Pods without devices come and go: counted only.
        self.cluster.pod("web-extra", "gpu-node-1", devices=[])
        self.wait_cache(ctl, 2, 15)
        self.srv.delete(cpu[1].path, grace_period=0)
        self.wait_cache(ctl, 2, 14)

        self.cluster.set_device_health(Pod(self.srv.get(web.path)), "GPU-late-0")
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=web.name)
        self.assertStopsCleanly(ctl)

    def test_widening_reload_relists(self):
        gpu, cpu, fpga = self.cluster_with(cpu_pods=3, fpga_pods=2)
        ctl = self.controller(base_policy(devices={"resources": [GPU]}))
        self.wait_cache(ctl, 2, 5)
        # The FPGA's health turns bad while the policy ignores FPGAs: nothing happens.
        self.cluster.set_device_health(fpga[0], "fpga-0")
        self.cluster.set_device_health(gpu[0], gpu[0].devices[0])
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=gpu[0].name)
        self.assertEqual(evictions(self.srv, name=fpga[0].name), [])

        # Narrowing (still GPUs only, an exclusion added) does not relist.
        lists = lambda: len(self.srv.requests(verb="list", resource="pods"))  # noqa: E731 (no WatchList here)
        n = lists()
        write_atomic(ctl.policy_path, policy_yaml(base_policy(devices={"resources": [GPU],
                                                                         "excludeResources": [FPGA]})))
        ctl.signal(signal.SIGHUP)
        ctl.wait_log(r"policy reloaded from .*\(SIGHUP\)")
        self.assertEqual(lists(), n)
        self.assertNotRegex(ctl.log(), r"relisting pods")

        # Widening: every extended resource is a device now.
        write_atomic(ctl.policy_path, policy_yaml(base_policy(devices={"resources": []})))
        ctl.signal(signal.SIGHUP)
        ctl.wait_log(r"policy reload widened the device resources: relisting pods")
        ev = wait_evictions(self.srv, 1, ctl=ctl, status=201, name=fpga[0].name)
        self.assertEqual(len(ev), 1)
        self.assertGreater(lists(), n)
        # The GPU and FPGA pods (the evicted ones terminate for their grace period); three CPU pods.
        ctl.wait_log(r"reflector pods: listed 4 objects at resourceVersion \d+ \(0 deleted meanwhile, 3 not kept\)")
        # Evicted pods go away after their grace period: compare with what the server holds.
        def in_step():
            on_server = len(self.srv.list("/api/v1/pods")["items"])
            return (ctl.metric("cached_objects", resource="pods") == on_server - 3 and
                    ctl.metric("ignored_objects", resource="pods") == 3)
        wait_for(in_step, 5.0, "cache = the device pods on the server, 3 ignored", ctl=ctl)
        self.assertEqual(evictions(self.srv, name=fpga[1].name), [])
        self.assertStopsCleanly(ctl)


class OversizedObjects(ScenarioTest):
    """An object over a decoder bound (here 16,385 ownerReferences, 1 MB of JSON) is left out of
    the cache with a warning and counted; the LIST and the watch go on for every other pod."""

    def huge(self, name, rs, device):
        obj = pod_obj(name, "gpu-node-1", [device], owner=rs, labels={"app": "huge"})
        obj["metadata"]["ownerReferences"] += [{"apiVersion": "v1", "kind": "ConfigMap", "name": "cm-%d" % i,
                                                "uid": "u-%d" % i} for i in range(16384)]
        return obj

    def test_oversized_pod_is_counted_not_cached(self):
        c = self.cluster
        c.node("gpu-node-1")
        rs = c.replicaset("trainer-7c9d8f6b5")
        pods = [c.pod("trainer-7c9d8f6b5-o%d" % i, "gpu-node-1", rs=rs) for i in range(2)]
        c.bulk([self.huge("huge-0", rs, "GPU-huge-0")])
        ctl = self.controller(base_policy(devices={"resources": [GPU]}))
        ctl.wait_log(r"Pod default/huge-0: not cached: more than 16384 elements in one array")
        ctl.wait_metric("cached_objects", 2, resource="pods")
        ctl.wait_metric("oversized_objects_total", 1, resource="pods")

        # In the watch: a cached pod that grows over the bound leaves the cache (no stale copy
        # stays), and the next event is still applied.
        c.bulk([self.huge(pods[0].name, rs, pods[0].devices[0])])
        ctl.wait_metric("oversized_objects_total", 2, resource="pods")
        ctl.wait_metric("cached_objects", 1, resource="pods")
        c.set_device_health(pods[1], pods[1].devices[0])
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=pods[1].name)
        self.assertEqual(evictions(self.srv, name="huge-0"), [])
        self.assertStopsCleanly(ctl)


class StreamingSync(ScenarioTest):
    """WatchList: the initial sync streams where the server serves it, and falls back to paged
    LIST where it refuses it."""

    def gpu_pods(self, n):
        c = self.cluster
        c.node("gpu-node-1")
        rs = c.replicaset("trainer-7c9d8f6b5")
        return [c.pod("trainer-7c9d8f6b5-s%d" % i, "gpu-node-1", rs=rs) for i in range(n)]

    def test_sync_through_watch_list(self):
        self.srv.set_watch_list(True)
        pods = self.gpu_pods(3)
        self.cluster.pod("web-0", "gpu-node-1", devices=[])
        ctl = self.controller(base_policy())
        ctl.wait_log(r"reflector pods: streamed \(WatchList\) 3 objects at resourceVersion \d+ "
                     r"\(0 deleted meanwhile, 1 not kept\)")
        ctl.wait_log(r"reflector nodes: streamed \(WatchList\) 1 objects")
        self.assertEqual(self.srv.requests(resource="pods", verb="list"), [])
        self.assertNotRegex(ctl.log(), r"falling back to paged LIST")
        self.cluster.set_device_health(pods[1], pods[1].devices[0])
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=pods[1].name)
        self.assertStopsCleanly(ctl)

    def test_refused_watch_list_falls_back_to_list(self):
        pods = self.gpu_pods(2)
        ctl = self.controller(base_policy())
        ctl.wait_log(r"reflector pods: streaming initial sync \(WatchList\) unavailable \(HTTP 422: .*\); "
                     r"falling back to paged LIST")
        ctl.wait_log(r"reflector pods: listed 2 objects")
        refused = [e for e in self.srv.requests(resource="pods", verb="watch") if "sendInitialEvents" in e["query"]]
        self.assertEqual([e["status"] for e in refused], [422])
        self.cluster.set_device_health(pods[0], pods[0].devices[0])
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=pods[0].name)
        self.assertStopsCleanly(ctl)


class LabelsKept(ScenarioTest):
    """The caches keep only the pod labels the policy's selector reads; a reload that reads a new
    label key relists the pods, so the selector sees it."""

    def test_reload_reading_a_new_label_relists(self):
        c = self.cluster
        c.node("gpu-node-1")
        rs = c.replicaset("trainer-7c9d8f6b5")
        a = c.pod("trainer-7c9d8f6b5-a", "gpu-node-1", rs=rs, labels={"team": "ml", "tier": "gpu"})
        b = c.pod("trainer-7c9d8f6b5-b", "gpu-node-1", rs=rs, labels={"team": "ml", "tier": "cpu"})
        ctl = self.controller(base_policy(podFilters={"labelSelector": {"matchLabels": {"team": "ml"}}}))
        # Narrower selector on a key already kept: no relist.
        write_atomic(ctl.policy_path, policy_yaml(base_policy(
            podFilters={"labelSelector": {"matchLabels": {"team": "ml"},
                                          "matchExpressions": [{"key": "team", "operator": "Exists"}]}})))
        ctl.signal(signal.SIGHUP)
        ctl.wait_log(r"policy reloaded from .*\(SIGHUP\)")
        self.assertNotRegex(ctl.log(), r"relisting pods")
        # A new key: the cached pods never had `tier`; the relist brings it.
        write_atomic(ctl.policy_path, policy_yaml(base_policy(
            podFilters={"labelSelector": {"matchLabels": {"team": "ml", "tier": "gpu"}}})))
        ctl.signal(signal.SIGHUP)
        ctl.wait_log(r"policy reload reads new pod labels: relisting pods")
        ctl.wait_log(r"reflector pods: listed 2 objects", count=2)
        c.set_device_health(b, b.devices[0])
        c.set_device_health(a, a.devices[0])
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=a.name)
        self.assertEqual(evictions(self.srv, name=b.name), [])
        self.assertStopsCleanly(ctl)


class NodeConditionsKept(ScenarioTest):
    """The node cache keeps only the condition types the policy's rules read; a reload that reads
    a new type relists the nodes, so a condition that was already there counts."""

    def test_reload_reading_a_new_condition_type_relists(self):
        c = self.cluster
        c.node("gpu-node-1")
        rs = c.replicaset("trainer-7c9d8f6b5")
        pod = c.pod("trainer-7c9d8f6b5-x", "gpu-node-1", rs=rs)
        # The condition is there before the controller starts, and never changes after.
        c.set_node_condition("gpu-node-1", "GPUXIDErrors", "True", message="XID 79", reason="XIDCriticalError")
        # Without DRA no other cache's sync re-evaluates the pods: only the relisted node can.
        no_dra = {"devices": {"dra": False}}
        ctl = self.controller(base_policy(**no_dra))
        ctl.wait_log(r"reflector nodes: listed 1 objects")
        # Another rule on a type the cache keeps no more than before: no relist.
        write_atomic(ctl.policy_path, policy_yaml(base_policy(signals={"podResourceHealth": {"for": "1s"}},
                                                              **no_dra)))
        ctl.signal(signal.SIGHUP)
        ctl.wait_log(r"policy reloaded from .*\(SIGHUP\)")
        self.assertNotRegex(ctl.log(), r"relisting nodes")
        self.assertEqual(evictions(self.srv, name=pod.name), [])
        # Reading GPUXIDErrors: the relist brings the condition the cache had dropped.
        write_atomic(ctl.policy_path, policy_yaml(base_policy(signals={"nodeConditions": [
            {"type": "GPUXIDErrors", "status": "True", "resources": [GPU], "for": "0s"}]}, **no_dra)))
        ctl.signal(signal.SIGHUP)
        ctl.wait_log(r"policy reload reads new node condition types: relisting nodes")
        # Listed again at the same resourceVersion: delivered anyway, the condition now kept.
        ctl.wait_log(r"reflector nodes: listed 1 objects", count=2)
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=pod.name)
        self.assertStopsCleanly(ctl)
