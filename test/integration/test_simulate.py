"""`device-descheduler simulate` on snapshots written by real kubectl against the test API server:
a timeline that trips the per-node limit and then the circuit breaker, DRA slice taints, a
directory of snapshot files, `-o json`, dry run, input errors, and no network use.

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_simulate -v
"""

import json
import os
import re
import subprocess
import unittest

from test.integration.scenario import (BIN, ScenarioTest, base_policy, policy_yaml, stop_shared_servers)

KINDS = "pods,nodes,resourceclaims,resourceslices"


class Simulate(ScenarioTest):

    def cluster_of(self, nodes=5, per_node=2):
        """nodes GPU nodes, each with per_node pods of its own ReplicaSet; returns {node: [Pod]}."""
        out = {}
        for i in range(1, nodes + 1):
            n = "gpu-node-%d" % i
            self.cluster.node(n)
            rs = self.cluster.replicaset("trainer-%d" % i, "ml", replicas=per_node)
            out[n] = [self.cluster.pod("trainer-%d-%d" % (i, j), n, rs=rs, ns="ml") for j in range(per_node)]
        return out

    def snapshot(self, name="snapshot.json", kinds=KINDS):
        """What `kubectl get pods,nodes,resourceclaims,resourceslices -A -o json` prints, in a file."""
        out = self.srv.kubectl("get", kinds, "-A", "-o", "json")
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(out.stdout)
        return path

    def unhealthy_patch(self, pod, device):
        """A pod status merge patch marking one device Unhealthy (as the kubelet writes it)."""
        st = self.srv.get(pod.path)["status"]
        for cs in st["containerStatuses"]:
            for a in cs.get("allocatedResourcesStatus") or []:
                for r in a["resources"]:
                    if r["resourceID"] == device:
                        r["health"], r["message"] = "Unhealthy", "XID 79"
        return {"status": {"containerStatuses": st["containerStatuses"]}}

    def write(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def simulate(self, policy, snapshot, timeline=None, args=(), expect=0):
        pol = self.write("sim-policy.yaml", policy_yaml(policy))
        cmd = [BIN, "simulate", "--policy-config-file", pol, "--from", snapshot]
        if timeline is not None:
            cmd += ["--timeline", self.write("timeline.jsonl", "".join(json.dumps(x) + "\n" for x in timeline))]
        env = {"PATH": os.environ.get("PATH", ""), "HOME": self.workdir}  # no kubeconfig anywhere
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60, env=env,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, expect, "%s\n--- stdout\n%s--- stderr\n%s" % (" ".join(cmd), p.stdout,
                                                                                    p.stderr))
        return p.stdout, p.stderr

    def lines(self, out):
        """The event lines of the text output as (seconds, type, message)."""
        rx = re.compile(r"^ *([0-9.]+)s  (\S+) +(.*)$")
        return [(float(m.group(1)), m.group(2), m.group(3)) for m in map(rx.match, out.splitlines()) if m]

    def test_node_limit_then_breaker(self):
        """Two pods of gpu-node-1 fail at 1 s under maxPerNode 1: one is evicted at once, the other is
        held by the node limit and evicted a window (60 s) later. At 100-102 s a node condition hits
        three more nodes: the first is quarantined and one pod evicted, then the circuit breaker
        opens (3 of 5 device nodes, maximum 50%) and holds every other pod to the end."""
        pods = self.cluster_of()
        snap = self.snapshot()
        p1, p2 = pods["gpu-node-1"]
        timeline = [{"at": "1s", "kind": "Pod", "namespace": "ml", "name": p.name,
                     "patch": self.unhealthy_patch(p, p.devices[0])} for p in (p1, p2)]
        timeline += [{"at": "%ds" % (100 + i), "kind": "Node", "name": n,
                      "condition": {"type": "GPUXIDErrors", "status": "True", "message": "XID 79"}}
                     for i, n in enumerate(["gpu-node-2", "gpu-node-3", "gpu-node-4"])]
        policy = base_policy(signals={"nodeConditions": [{"type": "GPUXIDErrors", "for": "0s"}]},
                             eviction={"limits": {"window": "1m", "maxPerNode": 1},
                                       "circuitBreaker": {"maxUnhealthyNodePercent": 50, "minNodes": 4}})
        self.srv.clear_requests()
        out, _ = self.simulate(policy, snap, timeline)
        self.assertIn("Simulating 10 pods, 5 nodes, 0 claims, 0 slices; 5 timeline changes", out)
        ev = self.lines(out)
        evicted = [(t, m) for t, kind, m in ev if kind == "evict"]
        self.assertEqual([t for t, _ in evicted[:2]], [1.0, 61.0], out)
        self.assertEqual(sorted(m.split(":")[0] for _, m in evicted[:2]),
                         ["Evicting pod ml/%s" % p1.name, "Evicting pod ml/%s" % p2.name])
        held = [(t, m) for t, kind, m in ev if kind == "held" and "node limit" in m]
        self.assertEqual([t for t, _ in held], [1.0, 100.0], out)
        self.assertIn("held: node limit (maxPerNode per window); would evict in 60 s", held[0][1])
        fences = [(t, m) for t, kind, m in ev if kind == "quarantine"]
        self.assertEqual([t for t, _ in fences], [100.0], out)
        self.assertIn("Quarantining node gpu-node-2", fences[0][1])
        # The fence goes out before the node's first eviction.
        order = [(t, kind) for t, kind, m in ev if "gpu-node-2" in m and kind in ("quarantine", "evict")]
        self.assertEqual(order[0][1], "quarantine", out)
        opened = [t for t, kind, m in ev if kind == "notice" and "CircuitBreakerOpen" in m]
        self.assertEqual(opened, [101.0], out)
        self.assertFalse([t for t, kind, _ in ev if kind == "evict" and t > 101.0], out)
        end = out.split("pods still bound to unhealthy devices:", 1)[1]
        self.assertEqual(len(re.findall(r"held: circuit breaker open", end)), 5, end)
        # Offline: the API server saw nothing.
        self.assertEqual(self.srv.requests(), [])

        j = json.loads(self.simulate(policy, snap, timeline, ["-o", "json"])[0])
        self.assertEqual([e["atSeconds"] for e in j["events"] if e["type"] == "evict"][:2], [1.0, 61.0])
        self.assertEqual(j["end"]["evictions"], len(evicted))
        self.assertEqual(j["end"]["quarantines"], 1)
        self.assertEqual(len(j["end"]["pending"]), 5)
        self.assertEqual({p["decision"] for p in j["end"]["pending"]}, {"Held"})

    def test_dry_run_and_filters(self):
        """Dry run reports "would-evict"; a DaemonSet pod is reported as never evicted."""
        pods = self.cluster_of(nodes=1, per_node=1)
        ds = self.cluster.replicaset("dcgm-exporter", "gpu-operator", kind="DaemonSet")
        agent = self.cluster.pod("dcgm-exporter-h3w6d", "gpu-node-1", rs=ds, ns="gpu-operator")
        snap = self.snapshot()
        p = pods["gpu-node-1"][0]
        timeline = [{"at": 5, "kind": "Pod", "namespace": "ml", "name": p.name,
                     "patch": self.unhealthy_patch(p, p.devices[0])},
                    {"at": 5, "kind": "Pod", "namespace": "gpu-operator", "name": agent.name,
                     "patch": self.unhealthy_patch(agent, agent.devices[0])}]
        out, _ = self.simulate(base_policy(), snap, timeline, ["--dry-run"])
        ev = self.lines(out)
        self.assertIn((5.0, "would-evict", "Would evict pod ml/%s: nvidia.com/gpu device %s is Unhealthy "
                       "(signal PodResourceHealth: XID 79)" % (p.name, p.devices[0])), ev)
        self.assertIn((5.0, "not-evicted", "gpu-operator/%s on gpu-node-1: never: pod is owned by a DaemonSet"
                       % agent.name), ev)
        self.assertNotIn("evict", [kind for _, kind, _ in ev])

    def test_dra_slice_taint_and_snapshot_directory(self):
        """The snapshot as a directory of files (pods and claims in one, nodes and slices in the
        other); a NoExecute taint on the claimed device at 3 s evicts the DRA pod then."""
        self.cluster.node("gpu-node-1")
        self.cluster.namespace("ml")
        owner = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "dra", "controller": True,
                  "uid": "5e1f0000-0000-4000-8000-000000000001"}]
        pod = self.srv.create({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "dra-trainer", "namespace": "ml", "ownerReferences": owner},
            "spec": {"nodeName": "gpu-node-1", "containers": [{"name": "trainer", "image": "x",
                                                                "resources": {"claims": [{"name": "gpu"}]}}],
                     "resourceClaims": [{"name": "gpu", "resourceClaimName": "dra-trainer-gpu"}]},
            "status": {"phase": "Running",
                       "resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "dra-trainer-gpu"}]}})
        self.srv.create({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": "dra-trainer-gpu", "namespace": "ml"},
            "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}]}},
            "status": {"allocation": {"devices": {"results": [
                {"request": "gpu", "driver": "gpu.example.com", "pool": "gpu-node-1", "device": "gpu-0"}]}},
                "reservedFor": [{"resource": "pods", "name": "dra-trainer", "uid": pod["metadata"]["uid"]}]}})
        self.srv.create({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                         "metadata": {"name": "gpu-node-1-gpu"},
                         "spec": {"driver": "gpu.example.com", "nodeName": "gpu-node-1",
                                  "pool": {"name": "gpu-node-1", "generation": 1, "resourceSliceCount": 1},
                                  "devices": [{"name": "gpu-0"}, {"name": "gpu-1"}]}})
        os.makedirs(os.path.join(self.workdir, "snap"))
        self.snapshot(os.path.join("snap", "a-pods.json"), "pods,resourceclaims")
        snap = os.path.join(self.workdir, "snap")
        self.snapshot(os.path.join("snap", "b-nodes.json"), "nodes,resourceslices")
        timeline = [{"at": "3s", "kind": "ResourceSlice", "name": "gpu-node-1-gpu", "device": "gpu-0",
                     "taint": {"key": "example.com/xid", "value": "79", "effect": "NoExecute"}}]
        out, _ = self.simulate(base_policy(), snap, timeline)
        self.assertIn("Simulating 1 pods, 1 nodes, 1 claims, 1 slices; 1 timeline changes", out)
        self.assertIn((3.0, "evict", "Evicting pod ml/dra-trainer: claim:gpu/gpu device "
                       "gpu.example.com/gpu-node-1/gpu-0 is tainted (signal DRADeviceTaint: taint "
                       "example.com/xid=79:NoExecute)"), self.lines(out))

    def test_input_errors(self):
        """A bad timeline line names FILE:LINE and exits 2; so do a missing snapshot and bad flags;
        --help exits 0."""
        self.cluster.node("gpu-node-1")
        snap = self.snapshot()
        _, err = self.simulate(base_policy(), snap, [{"at": "1s", "kind": "Pod", "name": "x"}], expect=2)
        self.assertRegex(err, r"timeline\.jsonl:1: \"namespace\" is required")
        _, err = self.simulate(base_policy(), snap, [{"at": "later", "kind": "Node", "name": "n", "delete": True}],
                               expect=2)
        self.assertRegex(err, r"timeline\.jsonl:1: \"at\" must be a duration")
        _, err = self.simulate(base_policy(), os.path.join(self.workdir, "nope.json"), expect=2)
        self.assertIn("nope.json", err)
        _, err = self.simulate(base_policy(), snap, args=["--bogus"], expect=2)
        self.assertIn("unknown flag: --bogus", err)
        p = subprocess.run([BIN, "simulate", "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for flag in ("--policy-config-file", "--from", "--timeline", "--until", "--dry-run", "-o, --output"):
            self.assertIn(flag, p.stdout)


tearDownModule = stop_shared_servers

if __name__ == "__main__":
    unittest.main()
