"""`explain` and `simulate` against the real control plane (test/cluster): explain under a
ServiceAccount whose ClusterRole grants only get and list, with kube-apiserver's own RBAC and
discovery; simulate on a snapshot that real kubectl read from the real kube-apiserver (pods
created by the real ReplicaSet controller, bound by the real scheduler, with managedFields and
every server-set field).

    DD_KUBE_CLUSTER=PATH DD_BIN=$PWD/bin/device-descheduler \\
        python3 -m unittest test.realcluster.real_tools -v
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from test.integration import scenario as sc  # noqa: E402
from test.realcluster.cluster import RealClusterTest, stop_shared_cluster  # noqa: E402

tearDownModule = stop_shared_cluster

READER = "dd-explain-reader"


class Tools(RealClusterTest):

    def reader_kubeconfig(self):
        """A ServiceAccount of this test's namespace that may only get and list what explain reads."""
        rules = [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list"]},
                 {"apiGroups": ["resource.k8s.io"],
                  "resources": ["resourceclaims", "resourceslices", "devicetaintrules"],
                  "verbs": ["get", "list"]}]
        name = "%s-%s" % (READER, self.ns)
        self.rc.create({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": READER, "namespace": self.ns}})
        self.rc.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": name}, "rules": rules})
        self.rc.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                        "metadata": {"name": name},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                        "subjects": [{"kind": "ServiceAccount", "name": READER, "namespace": self.ns}]})
        for path in ("/apis/rbac.authorization.k8s.io/v1/clusterroles/" + name,
                     "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/" + name):
            self.addCleanup(self.rc.delete, path)
        token = self.rc.token_request(self.ns, READER)
        return self.rc.write_kubeconfig(os.path.join(self.workdir, "kubeconfig-reader"), token)

    def write(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_tool(self, args, expect=0):
        p = subprocess.run([sc.BIN] + args, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, expect, "%s\n--- stdout\n%s--- stderr\n%s" % (args, p.stdout, p.stderr))
        return p.stdout

    def test_explain_needs_only_get_and_list(self):
        """A pod bound by the real scheduler, its GPU marked Unhealthy: explain, under a token whose
        role grants only get and list, says "would evict now" with the controller's own message;
        every request it made was answered 200 by kube-apiserver, none was a watch or a write."""
        self.node()
        self.kubelet.start()
        self.replicaset("trainer", 2)
        pods = self.wait_running("trainer", 2)
        victim = pods[0]
        name, dev = victim["metadata"]["name"], self.devices_of(victim)[0]
        self.kubelet.set_health(name, dev)
        kubeconfig = self.reader_kubeconfig()
        policy = self.write("policy.yaml", sc.policy_yaml(self.policy()))
        start = len(self.rc.audit())
        out = self.run_tool(["explain", "%s/%s" % (self.ns, name), "--kubeconfig", kubeconfig,
                             "--policy-config-file", policy, "-o", "json"])
        j = json.loads(out)
        self.assertEqual(j["decision"]["kind"], "WouldEvictNow", out)
        self.assertIn("Evicting pod %s/%s: nvidia.com/gpu device %s is Unhealthy" % (self.ns, name, dev),
                      j["decision"]["action"])
        self.assertEqual(j["pod"]["owner"], {"kind": "ReplicaSet", "name": "trainer"})
        other = self.run_tool(["explain", "%s/%s" % (self.ns, pods[1]["metadata"]["name"]), "--kubeconfig",
                               kubeconfig, "--policy-config-file", policy])
        self.assertIn("Decision:  not evicted: no device it holds looks unhealthy", other)
        user = "system:serviceaccount:%s:%s" % (self.ns, READER)
        mine = [e for e in self.rc.requests(user=user) if e["seq"] >= start]
        self.assertTrue(mine)
        self.assertEqual([(e["verb"], e["path"], e["status"]) for e in mine if e["status"] != 200], [])
        self.assertEqual({e["verb"] for e in mine} - {"get", "list"}, set())

    def test_simulate_on_a_real_snapshot(self):
        """`kubectl get pods,nodes,resourceclaims,resourceslices -A -o json` from the real
        kube-apiserver, a timeline that marks one pod's GPU Unhealthy at 5 s: simulate evicts
        exactly that pod at 5 s, offline."""
        self.node()
        self.kubelet.start()
        self.replicaset("trainer", 2)
        pods = self.wait_running("trainer", 2)
        victim = pods[1]
        name, dev = victim["metadata"]["name"], self.devices_of(victim)[0]
        snap = self.write("snapshot.json", self.rc.kubectl("get", "pods,nodes,resourceclaims,resourceslices",
                                                           "-A", "-o", "json").stdout)
        statuses = victim["status"]["containerStatuses"]
        for cs in statuses:
            for a in cs.get("allocatedResourcesStatus") or []:
                for r in a["resources"]:
                    if r["resourceID"] == dev:
                        r["health"], r["message"] = "Unhealthy", "XID 79"
        timeline = self.write("timeline.jsonl", json.dumps({
            "at": "5s", "kind": "Pod", "namespace": self.ns, "name": name,
            "patch": {"status": {"containerStatuses": statuses}}}) + "\n")
        policy = self.write("policy.yaml", sc.policy_yaml(self.policy()))
        j = json.loads(self.run_tool(["simulate", "--policy-config-file", policy, "--from", snap,
                                      "--timeline", timeline, "-o", "json"]))
        ev = [(e["atSeconds"], e["pod"]) for e in j["events"] if e["type"] == "evict"]
        self.assertEqual(ev, [(5.0, "%s/%s" % (self.ns, name))], j)
        # Other tests' namespaces may still be in the snapshot; this one has nothing left pending.
        self.assertEqual([p for p in j["end"]["pending"] if p["pod"].startswith(self.ns + "/")], [])
