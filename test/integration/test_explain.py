"""`device-descheduler explain NAMESPACE/POD` against the test API server: one scenario per
decision kind (would evict now, would evict in N s, never, held by the node limit, held by the
circuit breaker, healthy), text and `-o json`, exit statuses, and that it is read-only and
works with a role that grants only get and list.

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_explain -v
"""

import json
import os
import subprocess
import unittest

from test.integration.scenario import (BIN, ScenarioTest, base_policy, evictions, policy_yaml,
                                       stop_shared_servers, wait_evictions)

SA_USER = "system:serviceaccount:kube-system:device-descheduler"


class ExplainBase(ScenarioTest):

    def explain(self, target, policy=None, args=(), kubeconfig=None, expect=0):
        """Runs explain; returns (stdout, stderr) after checking the exit status."""
        path = os.path.join(self.workdir, "explain-policy.yaml")
        with open(path, "w") as f:
            f.write(policy_yaml(policy or base_policy()))
        cmd = [BIN, "explain"] + ([target] if target else []) + [
            "--kubeconfig", kubeconfig or self.srv.kubeconfig, "--policy-config-file", path] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, expect, "exit status of %s\n--- stdout\n%s--- stderr\n%s"
                         % (" ".join(cmd), p.stdout, p.stderr))
        return p.stdout, p.stderr

    def explain_json(self, target, policy=None, args=()):
        out, _ = self.explain(target, policy, ["-o", "json"] + list(args))
        return json.loads(out)

    def gpu_pods(self, n=1, node="gpu-node-1", ns="ml", rs_name="trainer-7d9f8c6b5", create_node=True):
        if create_node:
            self.cluster.node(node)
        rs = self.cluster.replicaset(rs_name, ns, replicas=n)
        return [self.cluster.pod("%s-%s-%d" % (rs_name, node[-1], i), node, rs=rs, ns=ns) for i in range(n)]


class ExplainDecisions(ExplainBase):

    def test_would_evict_now_text_and_json(self):
        """An Unhealthy GPU: the device, its signal verdicts, every filter passing, the breaker
        closed, and "would evict now" with the controller's own action message; then the
        controller does evict exactly that pod."""
        pod = self.gpu_pods(2)[0]
        self.cluster.set_device_health(pod, pod.devices[0], "Unhealthy", "XID 79")
        out, err = self.explain("ml/" + pod.name)
        self.assertIn("Pod:       ml/%s (uid %s)" % (pod.name, pod.uid), out)
        self.assertIn("Owner:     ReplicaSet/trainer-7d9f8c6b5", out)
        self.assertIn("nvidia.com/gpu %s (kubelet: Unhealthy)" % pod.devices[0], out)
        self.assertRegex(out, r"PodResourceHealth +unhealthy \(Unhealthy: XID 79\); debounce 0 s, 0 s left")
        self.assertRegex(out, r"ExitCode +off")
        self.assertRegex(out, r"DaemonSet +passes")
        self.assertIn("Circuit breaker: closed", out)
        self.assertIn("Decision:  would evict now\n", out)
        self.assertIn("Evicting pod ml/%s: nvidia.com/gpu device %s is Unhealthy (signal PodResourceHealth: "
                      "XID 79)" % (pod.name, pod.devices[0]), out)
        j = self.explain_json("ml/" + pod.name)
        self.assertEqual(j["pod"], {"namespace": "ml", "name": pod.name, "uid": pod.uid, "node": "gpu-node-1",
                                    "phase": "Running", "owner": {"kind": "ReplicaSet",
                                                                  "name": "trainer-7d9f8c6b5"}})
        self.assertEqual(j["decision"]["kind"], "WouldEvictNow")
        self.assertEqual(j["decision"]["text"], "would evict now")
        self.assertEqual(j["decision"]["inSeconds"], 0)
        self.assertEqual(len(j["devices"]), 1)
        dev = j["devices"][0]
        self.assertEqual((dev["resource"], dev["device"], dev["kubeletHealth"]),
                         ("nvidia.com/gpu", pod.devices[0], "Unhealthy"))
        sig = {s["signal"]: s for s in dev["signals"]}
        self.assertEqual(sig["PodResourceHealth"]["verdict"], "unhealthy")
        self.assertEqual(sig["PodResourceHealth"]["detail"], "XID 79")
        self.assertEqual(sig["NodeCondition"]["verdict"], "off")
        self.assertNotIn("DRADeviceTaint", sig)  # not a claim
        self.assertTrue(all(f["passed"] for f in j["filters"]), j["filters"])
        self.assertFalse(j["circuitBreaker"]["open"])
        # The controller agrees: it evicts this pod, and only this one.
        ctl = self.controller(base_policy())
        wait_evictions(self.srv, 1, ctl=ctl, name=pod.name, status=201)
        self.assertEqual({e["name"] for e in evictions(self.srv)}, {pod.name})
        self.assertStopsCleanly(ctl)

    def test_would_evict_later(self):
        """podResourceHealth for: 25s: "would evict in 25 s (debounce)"."""
        pod = self.gpu_pods(1)[0]
        self.cluster.set_device_health(pod, pod.devices[0])
        policy = base_policy(signals={"podResourceHealth": {"for": "25s"}})
        out, _ = self.explain("ml/" + pod.name, policy)
        self.assertIn("Decision:  would evict in 25 s (debounce)\n", out)
        self.assertRegex(out, r"debounce 25 s, 25 s left")
        j = self.explain_json("ml/" + pod.name, policy)
        self.assertEqual((j["decision"]["kind"], j["decision"]["inSeconds"]), ("Waiting", 25))

    def test_never_daemonset(self):
        """A DaemonSet pod on an unhealthy GPU: "never: pod is owned by a DaemonSet", and every
        filter that keeps it is listed (here the opt-out annotation too)."""
        self.cluster.node("gpu-node-1")
        ds = self.cluster.replicaset("dcgm-exporter", "gpu-operator", kind="DaemonSet")
        agent = self.cluster.pod("dcgm-exporter-h3w6d", "gpu-node-1", rs=ds, ns="gpu-operator",
                                 annotations={"device-descheduler.io/evict": "false"})
        self.cluster.set_device_health(agent, agent.devices[0])
        out, _ = self.explain("gpu-operator/" + agent.name)
        self.assertIn("Decision:  never: pod is owned by a DaemonSet\n", out)
        self.assertRegex(out, r"DaemonSet +keeps it: pod is owned by a DaemonSet")
        self.assertRegex(out, r"OptOut +keeps it: pod has the annotation")
        j = self.explain_json("gpu-operator/" + agent.name)
        self.assertEqual((j["decision"]["kind"], j["decision"]["filter"]), ("Never", "DaemonSet"))
        failed = sorted(f["name"] for f in j["filters"] if not f["passed"])
        self.assertEqual(failed, ["DaemonSet", "OptOut"])
        self.assertEqual([f["message"] for f in j["filters"] if f["name"] == "DaemonSet"],
                         ["pod is owned by a DaemonSet"])
        self.assertTrue(all("message" not in f for f in j["filters"] if f["passed"]))

    def test_held_by_node_limit(self):
        """maxPerNode 1 and two pods of one node on unhealthy GPUs: one would go now, the other is
        "held: node limit" for a window."""
        pods = self.gpu_pods(2)
        for p in pods:
            self.cluster.set_device_health(p, p.devices[0])
        policy = base_policy(eviction={"limits": {"window": "1m", "maxPerNode": 1}})
        kinds = {}
        for p in pods:
            j = self.explain_json("ml/" + p.name, policy)
            kinds[p.name] = j["decision"]
        now = [n for n, d in kinds.items() if d["kind"] == "WouldEvictNow"]
        held = [d for d in kinds.values() if d["kind"] == "Held"]
        self.assertEqual(len(now), 1, kinds)
        self.assertEqual(len(held), 1, kinds)
        self.assertEqual(held[0]["heldBy"], "maxPerNode")
        self.assertEqual(held[0]["text"], "held: node limit (maxPerNode per window); would evict in 60 s")
        self.assertEqual(held[0]["inSeconds"], 60)

    def test_held_by_circuit_breaker(self):
        """3 of 4 device nodes unhealthy (maximum 50%): "held: circuit breaker open" with the counts."""
        victims = []
        for i in range(1, 5):
            pod = self.gpu_pods(1, node="gpu-node-%d" % i, rs_name="trainer-%d" % i)[0]
            if i <= 3:
                self.cluster.set_device_health(pod, pod.devices[0])
                victims.append(pod)
        out, _ = self.explain("ml/" + victims[0].name)
        self.assertIn("Decision:  held: circuit breaker open\n", out)
        self.assertIn("Circuit breaker: open (3 of 4 device nodes (75%) are unhealthy (maximum 50%))", out)
        j = self.explain_json("ml/" + victims[0].name)
        self.assertEqual(j["circuitBreaker"], {"open": True, "deviceNodes": 4, "unhealthyNodes": 3,
                                               "reason": "3 of 4 device nodes (75%) are unhealthy (maximum 50%)"})
        self.assertEqual((j["decision"]["kind"], j["decision"]["heldBy"]), ("Held", "circuitBreaker"))

    def test_healthy_pod(self):
        pod = self.gpu_pods(1)[0]
        out, _ = self.explain("ml/" + pod.name)
        self.assertIn("Decision:  not evicted: no device it holds looks unhealthy\n", out)
        self.assertRegex(out, r"PodResourceHealth +healthy")
        j = self.explain_json("ml/" + pod.name)
        self.assertEqual(j["decision"]["kind"], "Healthy")

    def test_node_quarantine(self):
        """A node condition: explain shows the fence the controller would write first; once the
        controller has quarantined the node, explain reports the node as quarantined."""
        pods = self.gpu_pods(2)
        for i in range(2, 5):  # enough device nodes that the default quarantine cap (25%) allows one
            self.cluster.node("gpu-node-%d" % i)
        policy = base_policy(signals={"nodeConditions": [
            {"type": "GPUXIDErrors", "status": "True", "resources": ["nvidia.com/gpu"], "for": "0s"}]})
        self.cluster.set_node_condition("gpu-node-1", "GPUXIDErrors", "True", "XID 79")
        out, _ = self.explain("ml/" + pods[0].name, policy)
        self.assertIn("Quarantine:      node gpu-node-1 is not quarantined\n", out)
        self.assertIn("first: Quarantining node gpu-node-1 (taint device-descheduler.io/unhealthy-device=", out)
        self.assertRegex(out, r"NodeCondition +unhealthy \(unhealthy: GPUXIDErrors=True: XID 79\); debounce 0 s, "
                              r"0 s left; since 2025-01-01T00:00:00Z \(API\), so 0 s left for a controller watching")
        self.assertIn("Decision:  would evict now", out)
        ctl = self.controller(policy)
        ctl.wait_metric("quarantine_actions_total", 1.0, timeout=10.0, action="taint")
        self.assertStopsCleanly(ctl)
        rs = self.cluster.replicaset("late-5d6f7", "ml", replicas=1)
        late = self.cluster.pod("late-5d6f7-q2w3e", "gpu-node-1", rs=rs, ns="ml")
        j = self.explain_json("ml/" + late.name, policy)
        self.assertEqual(j["quarantine"], {"nodeQuarantined": True, "fenceFirst": None})
        sig = {x["signal"]: x for x in j["devices"][0]["signals"]}
        self.assertEqual(sig["NodeCondition"]["since"], "2025-01-01T00:00:00Z")
        self.assertEqual(sig["NodeCondition"]["debounceLeftSecondsSinceThen"], 0)
        self.assertIsNone(j["devices"][0]["signals"][0].get("since"))  # PodResourceHealth: healthy
        self.assertEqual(j["decision"]["kind"], "WouldEvictNow")


class ExplainCommand(ExplainBase):

    def test_exit_statuses_and_help(self):
        """Unknown pod: 1; bad flags or target: 2; --help: 0 and names every flag it takes."""
        self.cluster.node("gpu-node-1")
        _, err = self.explain("ml/nope", expect=1)
        self.assertIn("pod ml/nope not found", err)
        _, err = self.explain("nope", expect=2)
        self.assertIn("expected NAMESPACE/POD", err)
        _, err = self.explain("ml/x", args=["-o", "yaml"], expect=2)
        self.assertIn("--output: expected text or json", err)
        _, err = self.explain(None, expect=2)
        self.assertIn("NAMESPACE/POD", err)
        p = subprocess.run([BIN, "explain", "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for flag in ("-o, --output", "--timeout", "--policy-config-file", "--kubeconfig", "--context",
                     "--dry-run", "-v"):
            self.assertIn(flag, p.stdout)
        p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
        self.assertIn("device-descheduler explain NAMESPACE/POD", p.stdout)

    def test_read_only(self):
        """explain sends only GETs (lists), never a watch, and writes nothing."""
        pod = self.gpu_pods(1)[0]
        self.cluster.set_device_health(pod, pod.devices[0])
        self.srv.clear_requests()
        self.explain("ml/" + pod.name)
        reqs = self.srv.requests()
        self.assertTrue(reqs)
        self.assertEqual({e["method"] for e in reqs}, {"GET"})
        self.assertFalse([e for e in reqs if e["watch"] or "watch" in (e["query"] or "")])
        # Lists of the caches, and API discovery (which versions of resource.k8s.io to list).
        self.assertEqual({e["resource"] for e in reqs if e["verb"] == "list"},
                         {"pods", "nodes", "resourceclaims", "resourceslices", "devicetaintrules"})
        others = sorted({e["path"] for e in reqs if e["verb"] != "list"})
        self.assertTrue(all(p == "/apis" or p.startswith("/apis/resource.k8s.io/") for p in others), others)
        self.assertEqual(evictions(self.srv), [])


class ExplainRbac(ExplainBase):
    """The API server enforces RBAC; the service account may only get and list."""

    server_opts = {"enforce_rbac": True}

    def test_get_and_list_are_enough(self):
        self.srv.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                         "metadata": {"name": "device-descheduler-explain"},
                         "rules": [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list"]},
                                   {"apiGroups": ["resource.k8s.io"],
                                    "resources": ["resourceclaims", "resourceslices", "devicetaintrules"],
                                    "verbs": ["get", "list"]}]})
        self.srv.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": "device-descheduler-explain"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                     "name": "device-descheduler-explain"},
                         "subjects": [{"kind": "ServiceAccount", "name": "device-descheduler",
                                       "namespace": "kube-system"}]})
        pod = self.gpu_pods(1)[0]
        self.cluster.set_device_health(pod, pod.devices[0])
        self.srv.clear_requests()
        out, _ = self.explain("ml/" + pod.name)
        self.assertIn("Decision:  would evict now", out)
        mine = self.srv.requests(user=SA_USER)
        self.assertTrue(mine)
        self.assertEqual([(e["path"], e["status"]) for e in mine if e["status"] != 200], [])
        self.assertTrue([e for e in mine if e["resource"] == "devicetaintrules"], mine)

    def test_without_the_rules_it_explains_without_them(self):
        """A role without DeviceTaintRules (older than the signal): the list is refused once, explain
        says so on stderr and answers from the rest instead of waiting for --timeout."""
        self.srv.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                         "metadata": {"name": "device-descheduler-explain"},
                         "rules": [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list"]},
                                   {"apiGroups": ["resource.k8s.io"],
                                    "resources": ["resourceclaims", "resourceslices"],
                                    "verbs": ["get", "list"]}]})
        self.srv.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": "device-descheduler-explain"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                     "name": "device-descheduler-explain"},
                         "subjects": [{"kind": "ServiceAccount", "name": "device-descheduler",
                                       "namespace": "kube-system"}]})
        pod = self.gpu_pods(1)[0]
        self.cluster.set_device_health(pod, pod.devices[0])
        out, err = self.explain("ml/" + pod.name, args=["--timeout", "30s"])
        self.assertIn("Decision:  would evict now", out)
        self.assertIn("cannot list DeviceTaintRules (HTTP 403): explained without them", err)


tearDownModule = stop_shared_servers

if __name__ == "__main__":
    unittest.main()
