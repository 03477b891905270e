"""The circuit breaker and the limits, end to end: the controller against the test API server.

Each scenario reproduces one finding of issue 14 (the breaker's evidence, DRA-only clusters,
terminal pods, CPU-only nodes, hysteresis, dry run and the limits) and fails on the code
before the fix.

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_breaker -v
"""

import time

from test.integration.scenario import (GPU, ScenarioTest, base_policy, condition, events_for, evictions,
                                       gpu_id, hold_for, node_obj, path_for, pod_obj, stop_shared_servers,
                                       wait_evictions, wait_for, write_atomic, policy_yaml)

tearDownModule = stop_shared_servers

# The downward API of the manifests: cluster-wide notices become Events on our own pod.
SELF = {"POD_NAME": "device-descheduler-abc12", "POD_NAMESPACE": "kube-system", "POD_UID": "dd-uid-1"}
DRIVER = "gpu.example.com"


def breaker_events(srv):
    """(reason, count) of the breaker's Events on the controller's own pod, in creation order."""
    out = []
    for e in events_for(srv, SELF["POD_NAMESPACE"], SELF["POD_NAME"]):
        if e["reason"].startswith("CircuitBreaker"):
            out.append((e["reason"], e.get("count") or 1))
    return out


class BreakerScenarios(ScenarioTest):

    def gpu_nodes(self, n, ns="ml"):
        """n 8-GPU nodes with one Running one-GPU ReplicaSet pod each; returns the pod objects."""
        rs = self.cluster.replicaset("trainer-6f9c7d8b5", ns, replicas=n)
        nodes = [node_obj("gpu-node-%02d" % i) for i in range(n)]
        pods = [pod_obj("trainer-6f9c7d8b5-%02d" % i, "gpu-node-%02d" % i, [gpu_id("gpu-node-%02d" % i, 0)],
                        ns=ns, owner=rs, labels={"app": "trainer-6f9c7d8b5"}) for i in range(n)]
        self.cluster.bulk(nodes + pods)
        return pods

    def fail(self, pod, drop=True):
        """The device plugin reports the pod's GPU Unhealthy and (drop) lowers allocatable 8 -> 7."""
        node = pod["spec"]["nodeName"]
        if drop:
            cur = self.srv.get(path_for(kind="Node", name=node))
            alloc = dict(cur["status"]["allocatable"])
            alloc[GPU] = "7"
            self.srv.patch_status(path_for(kind="Node", name=node), {"allocatable": alloc})
        p = self.srv.get("/api/v1/namespaces/%s/pods/%s" % (pod["metadata"]["namespace"], pod["metadata"]["name"]))
        for cs in p["status"]["containerStatuses"]:
            for a in cs.get("allocatedResourcesStatus") or []:
                for r in a["resources"]:
                    r["health"] = "Unhealthy"
                    r["message"] = "XID 79: GPU has fallen off the bus"
        self.srv.patch_status("/api/v1/namespaces/%s/pods/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]),
                              {"containerStatuses": p["status"]["containerStatuses"]})

    def test_rolling_failure_opens_the_breaker(self):
        """Issue 14 #1. One GPU per node turns Unhealthy and allocatable drops 8 -> 7, one node every
        1.5 s (a bad driver rollout), on 8 nodes. Each eviction used to erase its own evidence: all 8
        pods were evicted and the breaker never opened. Now a failed device counts until it recovers
        (or for circuitBreaker.memory after its pod is gone) and any allocatable drop counts: the
        breaker opens at the fifth node (5 of 8 > 50%) and exactly 4 pods are evicted."""
        pods = self.gpu_nodes(8)
        ctl = self.controller(base_policy(), env=SELF)
        for i, pod in enumerate(pods):
            t = time.monotonic()
            self.fail(pod)
            if i < 4:
                wait_evictions(self.srv, i + 1, timeout=5.0, ctl=ctl, status=201)
            elif i == 4:
                ctl.wait_log(r"circuit breaker open: 5 of 8 device nodes \(62%\) are unhealthy", timeout=5.0)
            time.sleep(max(0.0, t + 1.5 - time.monotonic()))
        ctl.wait_metric("circuit_breaker_open", 1.0, timeout=5.0)
        hold_for(lambda: len(evictions(self.srv)) == 4, 2.0, "exactly four evictions", ctl=ctl,
                 show=lambda: [e["name"] for e in evictions(self.srv)])
        self.assertEqual(sorted(e["name"] for e in evictions(self.srv)),
                         ["trainer-6f9c7d8b5-%02d" % i for i in range(4)])
        self.assertEqual(ctl.metric("circuit_breaker_open"), 1.0)
        self.assertEqual(breaker_events(self.srv), [("CircuitBreakerOpen", 1)])
        self.assertStopsCleanly(ctl)

    def test_rolling_failure_remembered_without_allocatable_drop(self):
        """Issue 14 #1, the memory alone: the plugin reports the devices Unhealthy but does not lower
        allocatable. The evicted pods' devices are remembered (circuitBreaker.memory, 10m by
        default), so the breaker still opens at the fifth node."""
        pods = self.gpu_nodes(8)
        ctl = self.controller(base_policy())
        for i, pod in enumerate(pods[:5]):
            self.fail(pod, drop=False)
            if i < 4:
                wait_evictions(self.srv, i + 1, timeout=5.0, ctl=ctl, status=201)
        ctl.wait_metric("circuit_breaker_open", 1.0, timeout=5.0)
        hold_for(lambda: len(evictions(self.srv)) == 4, 1.5, "exactly four evictions", ctl=ctl)
        self.assertStopsCleanly(ctl)

    def dra_node(self, i, tainted):
        """A DRA-only node (no device capacity) whose ResourceSlice publishes two GPUs."""
        name = "dra-node-%02d" % i
        dev = {"name": "gpu-0"}
        if tainted:
            dev["taints"] = [{"key": DRIVER + "/xid", "value": "79", "effect": "NoExecute",
                              "timeAdded": "2026-11-27T01:01:58Z"}]
        sl = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
              "metadata": {"name": "%s-%s" % (name, DRIVER)},
              "spec": {"driver": DRIVER, "nodeName": name,
                       "pool": {"name": name, "generation": 1, "resourceSliceCount": 1},
                       "devices": [dev, {"name": "gpu-1"}]}}
        return [node_obj(name, gpus=0), sl]

    def dra_pod(self, i, rs):
        """A Running pod on dra-node-<i> whose claim is allocated gpu-0 of that node."""
        node, name, claim = "dra-node-%02d" % i, "server-7c8d9e0f1-%02d" % i, "server-%02d-gpu" % i
        pod = pod_obj(name, node, [], ns="ml", owner=rs, labels={"app": "server"})
        pod["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimName": claim}]
        pod["spec"]["containers"][0]["resources"]["claims"] = [{"name": "gpu"}]
        pod["status"]["resourceClaimStatuses"] = [{"name": "gpu", "resourceClaimName": claim}]
        created = self.srv.create(pod)
        self.srv.create({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": claim, "namespace": "ml"},
            "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": DRIVER}}]}},
            "status": {"allocation": {"devices": {"results": [
                {"request": "gpu", "driver": DRIVER, "pool": node, "device": "gpu-0"}]}},
                "reservedFor": [{"resource": "pods", "name": name, "uid": created["metadata"]["uid"]}]}})
        return name

    def test_dra_only_nodes_are_device_nodes(self):
        """Issue 14 #3. 20 DRA-only nodes, 4 of them with a tainted (NoExecute) device under a pod.
        Only node capacity used to make a device node, so the log said "4 of 4 device nodes (100%)"
        and nothing was evicted. A node whose ResourceSlices publish devices is a device node: 4 of
        20, and the 4 pods are evicted."""
        rs = self.cluster.replicaset("server-7c8d9e0f1", "ml", replicas=20)
        objs = []
        for i in range(20):
            objs += self.dra_node(i, tainted=i < 4)
        self.cluster.bulk(objs)
        names = [self.dra_pod(i, rs) for i in range(4)]
        ctl = self.controller(base_policy())
        wait_evictions(self.srv, 4, timeout=8.0, ctl=ctl, status=201)
        self.assertEqual(sorted(e["name"] for e in evictions(self.srv)), sorted(names))
        self.assertEqual(ctl.metric("circuit_breaker_open"), 0.0)
        self.assertNotIn("circuit breaker open", ctl.log())
        self.assertStopsCleanly(ctl)

    def test_failed_pods_are_not_evidence(self):
        """Issue 14 #8. Five Failed pods with a stale Unhealthy device status on 5 of 8 nodes used to
        open the breaker ("5 of 8"), and a real failure elsewhere was not evicted. Succeeded and
        Failed pods are no evidence: the real failure is evicted and the breaker stays closed."""
        pods = self.gpu_nodes(8)
        rs = self.cluster.replicaset("batch-5d4c3b2a1", "ml", replicas=5)
        old = []
        for i in range(5):
            node = "gpu-node-%02d" % i
            o = pod_obj("batch-5d4c3b2a1-%02d" % i, node, [gpu_id(node, 1)], ns="ml", owner=rs,
                        health={gpu_id(node, 1): ("Unhealthy", "XID 79")}, restart_policy="Never")
            o["status"]["phase"] = "Failed"
            old.append(o)
        self.cluster.bulk(old)
        ctl = self.controller(base_policy())
        self.fail(pods[6], drop=False)
        wait_evictions(self.srv, 1, timeout=5.0, ctl=ctl, status=201, name=pods[6]["metadata"]["name"])
        self.assertEqual(ctl.metric("circuit_breaker_open"), 0.0)
        self.assertEqual(len(evictions(self.srv)), 1)
        self.assertStopsCleanly(ctl)

    def test_cpu_only_nodes_do_not_count(self):
        """Issue 14 #9. KernelDeadlock=True, listed with resources [nvidia.com/gpu], on 9 CPU-only
        nodes used to open the breaker ("9 of 17 device nodes") and hold back a real GPU failure.
        A node condition counts only where the node holds one of the listed resources."""
        pods = self.gpu_nodes(8)
        cpu = [node_obj("cpu-node-%02d" % i, gpus=0, conditions=[condition("KernelDeadlock")])
               for i in range(9)]
        self.cluster.bulk(cpu)
        ctl = self.controller(base_policy(signals={"nodeConditions": [
            {"type": "KernelDeadlock", "status": "True", "resources": [GPU]}]}))
        self.fail(pods[0], drop=False)
        wait_evictions(self.srv, 1, timeout=5.0, ctl=ctl, status=201, name=pods[0]["metadata"]["name"])
        self.assertEqual(ctl.metric("circuit_breaker_open"), 0.0)
        self.assertNotIn("circuit breaker open", ctl.log())
        self.assertStopsCleanly(ctl)

    def test_flapping_device_one_open_closed_pair(self):
        """Issue 14 #15. One device flapping 10 times at the threshold used to give 20 Events (10
        Open, 10 Closed). With closeAfter the breaker closes only once the count has stayed below
        the threshold that long: one CircuitBreakerOpen, then one CircuitBreakerClosed."""
        self.cluster.bulk([node_obj("gpu-node-%02d" % i) for i in range(8)])
        # Four bare pods (never evicted) with a failed GPU: 4 of 8, at the threshold, not above.
        bare = [pod_obj("notebook-%02d" % i, "gpu-node-%02d" % i, [gpu_id("gpu-node-%02d" % i, 0)], ns="ml",
                        health={gpu_id("gpu-node-%02d" % i, 0): ("Unhealthy", "XID 79")}) for i in range(4)]
        flap = pod_obj("notebook-flap", "gpu-node-07", [gpu_id("gpu-node-07", 0)], ns="ml")
        self.cluster.bulk(bare + [flap])
        ctl = self.controller(base_policy(eviction={"circuitBreaker": {"closeAfter": "3s"}}), env=SELF)
        self.assertEqual(ctl.metric("circuit_breaker_open"), 0.0)
        path = "/api/v1/namespaces/ml/pods/notebook-flap"
        for i in range(10):
            for health in ("Unhealthy", "Healthy"):
                p = self.srv.get(path)
                r = p["status"]["containerStatuses"][0]["allocatedResourcesStatus"][0]["resources"][0]
                r["health"] = health
                self.srv.patch_status(path, {"containerStatuses": p["status"]["containerStatuses"]})
                if i == 0 and health == "Unhealthy":
                    ctl.wait_metric("circuit_breaker_open", 1.0, timeout=5.0)
                time.sleep(0.1)
        ctl.wait_log(r"circuit breaker closed: 4 of 8 device nodes are unhealthy", timeout=8.0)
        wait_for(lambda: len(breaker_events(self.srv)) == 2, 5.0, "two breaker Events", ctl=ctl)
        self.assertEqual(breaker_events(self.srv), [("CircuitBreakerOpen", 1), ("CircuitBreakerClosed", 1)])
        self.assertEqual(ctl.log().count("circuit breaker open:"), 1)
        self.assertStopsCleanly(ctl)

    def test_dry_run_leaves_the_real_budget(self):
        """Issue 14 #13. Dry-run reports used the real limits: after turning dry run off with
        maxTotal: 2 per 60 s, the first real eviction waited 28 s. Dry run now counts apart."""
        pods = self.gpu_nodes(3)
        limits = {"limits": {"window": "60s", "maxTotal": 2}, "circuitBreaker": {"enabled": False}}
        ctl = self.controller(base_policy(dryRun=True, eviction=limits))
        for pod in pods:
            self.fail(pod, drop=False)
        ctl.wait_log(r"Would evict pod ml/trainer", count=2, timeout=5.0)
        self.assertEqual(evictions(self.srv), [])
        write_atomic(ctl.policy_path, policy_yaml(base_policy(eviction=limits)))
        ctl.wait_log(r"policy reloaded", timeout=5.0)
        wait_evictions(self.srv, 2, timeout=3.0, ctl=ctl, status=201)
        # And the real budget holds: 2 in any 60 s.
        hold_for(lambda: len(evictions(self.srv)) == 2, 1.0, "exactly two evictions", ctl=ctl)
        self.assertStopsCleanly(ctl)

    def test_limits_hold_over_every_window(self):
        """Issue 9 item 7. maxTotal: 3 per 10 s is a hard budget: three evictions, then none until
        the first leaves the window. The old token bucket refilled one token every 3.3 s and let a
        fourth through long before (up to 2N in one window)."""
        pods = self.gpu_nodes(8)
        ctl = self.controller(base_policy(eviction={"limits": {"window": "10s", "maxTotal": 3},
                                                    "circuitBreaker": {"enabled": False}}))
        for pod in pods:
            self.fail(pod, drop=False)
        wait_evictions(self.srv, 3, timeout=5.0, ctl=ctl, status=201)
        hold_for(lambda: len(evictions(self.srv)) == 3, 5.0, "three evictions in the window", ctl=ctl)
        self.assertStopsCleanly(ctl)
