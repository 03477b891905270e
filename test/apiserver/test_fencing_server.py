"""The test API server's side of fencing: node taints and cordons honoured by the simulated
scheduler (with the switch that makes it ignore them), optimistic concurrency on node writes,
and DeviceTaintRules (resource.k8s.io, cluster-scoped) in every version a server may serve.

Run: python3 -m unittest test.apiserver.test_fencing_server -v
"""

import os
import sys
import tempfile
import shutil
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ApiError, ApiServer, path_for  # noqa: E402
import simulate  # noqa: E402

GPU = "nvidia.com/gpu"


def node(name, gpus=4, taints=None, unschedulable=False):
    spec = {"taints": [{"key": GPU, "value": "present", "effect": "NoSchedule"}] + list(taints or [])}
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": spec,
            "status": {"capacity": {GPU: str(gpus)}, "allocatable": {GPU: str(gpus)},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def replicaset(name, replicas, tolerations=None):
    spec = {"containers": [{"name": "c", "image": "x", "resources": {"limits": {GPU: "1"}}}]}
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


class TolerationTest(unittest.TestCase):
    """The matching rules, against k8s.io/api/core/v1 Toleration.ToleratesTaint."""

    def test_rules(self):
        t = {"key": "k", "value": "v", "effect": "NoSchedule"}
        self.assertTrue(simulate.toleration_matches({"key": "k", "operator": "Exists"}, t))
        self.assertTrue(simulate.toleration_matches({"operator": "Exists"}, t))
        self.assertTrue(simulate.toleration_matches({"key": "k", "value": "v"}, t))
        self.assertFalse(simulate.toleration_matches({"key": "k", "value": "w"}, t))
        self.assertFalse(simulate.toleration_matches({"key": "k", "operator": "Exists", "effect": "NoExecute"}, t))
        self.assertFalse(simulate.toleration_matches({"key": "k2", "operator": "Exists"}, t))
        # PreferNoSchedule never keeps a pod off; NoExecute does.
        self.assertTrue(simulate.tolerates({}, [dict(t, effect="PreferNoSchedule")]))
        self.assertFalse(simulate.tolerates({}, [dict(t, effect="NoExecute")]))
        spec = simulate.extended_resource_tolerations(
            {"containers": [{"resources": {"limits": {GPU: "1", "cpu": "1"}}}]})
        self.assertEqual(spec["tolerations"], [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}])


class FencingServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dd-fence-srv-")
        cls.srv = ApiServer().start(os.path.join(cls.tmp, "a"), simulate=True)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.srv.reset()
        self.srv.request("POST", "/_test/simulator", {"ignoreTaints": False})

    def placed(self, rs):
        pods = self.srv.list("/api/v1/namespaces/default/pods")["items"]
        return sorted(p["spec"].get("nodeName") or "" for p in pods
                      if p["metadata"]["name"].startswith(rs + "-") and not p["metadata"].get("deletionTimestamp"))

    def test_scheduler_honours_taints_and_cordons(self):
        self.srv.create(node("a", 8))
        self.srv.create(node("b", 8, taints=[{"key": "device-descheduler.io/unhealthy-device",
                                              "value": "nvidia.com_gpu", "effect": "NoSchedule"}]))
        self.srv.create(node("c", 8, unschedulable=True))
        self.srv.create(node("d", 8, taints=[{"key": "x", "effect": "NoExecute"}]))
        self.srv.create(node("e", 8, taints=[{"key": "soft", "effect": "PreferNoSchedule"}]))
        self.srv.create(replicaset("web", 6))
        got = wait_for(lambda: (lambda p: p if len(p) == 6 and "" not in p else None)(self.placed("web")), 10,
                       "6 pods placed")
        self.assertEqual(set(got), {"a", "e"})
        pod = self.srv.list("/api/v1/namespaces/default/pods")["items"][0]
        self.assertIn({"key": GPU, "operator": "Exists", "effect": "NoSchedule"}, pod["spec"]["tolerations"])

    def test_toleration_lets_a_pod_on(self):
        self.srv.create(node("b", 4, taints=[{"key": "x", "value": "1", "effect": "NoSchedule"}]))
        self.srv.create(replicaset("tol", 2, tolerations=[{"key": "x", "operator": "Equal", "value": "1"}]))
        wait_for(lambda: self.placed("tol") == ["b", "b"], 10, "2 pods on b")

    def test_nothing_fits_stays_pending_then_ignore_switch(self):
        self.srv.create(node("b", 4, unschedulable=True))
        self.srv.create(replicaset("p", 1))
        wait_for(lambda: self.placed("p") == [""], 10, "a pending pod")
        self.srv.request("POST", "/_test/simulator", {"ignoreTaints": True})
        wait_for(lambda: self.placed("p") == ["b"], 10, "the pod bound despite the cordon")

    def test_node_writes_with_stale_resource_version_conflict(self):
        n = self.srv.create(node("a", 4))
        rv = n["metadata"]["resourceVersion"]
        self.srv.patch(path_for(kind="Node", name="a"), {"metadata": {"labels": {"x": "1"}}})
        with self.assertRaises(ApiError) as e:
            self.srv.patch(path_for(kind="Node", name="a"),
                           {"metadata": {"resourceVersion": rv}, "spec": {"taints": []}})
        self.assertEqual(e.exception.code, 409)
        n["spec"]["taints"] = []
        with self.assertRaises(ApiError) as e:
            self.srv.update(n)
        self.assertEqual(e.exception.code, 409)
        cur = self.srv.get(path_for(kind="Node", name="a"))
        out = self.srv.patch(path_for(kind="Node", name="a"),
                             {"metadata": {"resourceVersion": cur["metadata"]["resourceVersion"]},
                              "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}})
        self.assertEqual(out["spec"]["taints"], [{"key": "k", "effect": "NoSchedule"}])

    def test_device_taint_rule_crud_and_watch(self):
        path = "/apis/resource.k8s.io/v1/devicetaintrules"
        rule = {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceTaintRule",
                "metadata": {"name": "r1", "labels": {"app.kubernetes.io/managed-by": "device-descheduler"}},
                "spec": {"deviceSelector": {"driver": "gpu.example.com", "pool": "n1", "device": "gpu-0"},
                         "taint": {"key": "k", "value": "v", "effect": "NoSchedule"}}}
        w = self.srv.watch(path, resourceVersion=self.srv.state()["resourceVersion"], timeout=5)
        self.srv.request("POST", path, rule)
        ev = next(w)
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "r1"))
        self.assertEqual(self.srv.get(path + "/r1")["spec"]["deviceSelector"]["device"], "gpu-0")
        items = self.srv.list(path, labelSelector="app.kubernetes.io/managed-by=device-descheduler")["items"]
        self.assertEqual([i["metadata"]["name"] for i in items], ["r1"])
        with self.assertRaises(ApiError) as e:
            self.srv.request("POST", path, rule)
        self.assertEqual(e.exception.code, 409)
        self.srv.delete(path + "/r1")
        ev = next(w)
        self.assertEqual(ev["type"], "DELETED")
        w.close()
        groups = self.srv.request("GET", "/apis/resource.k8s.io/v1")
        self.assertIn("devicetaintrules", [r["name"] for r in groups["resources"]])

    def test_kubectl_sees_device_taint_rules(self):
        path = "/apis/resource.k8s.io/v1/devicetaintrules"
        self.srv.request("POST", path, {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceTaintRule",
                                        "metadata": {"name": "r2"},
                                        "spec": {"deviceSelector": {"driver": "d", "pool": "p", "device": "x"},
                                                 "taint": {"key": "k", "effect": "NoSchedule"}}})
        out = self.srv.kubectl("get", "devicetaintrules", "-o", "name")
        self.assertIn("devicetaintrule.resource.k8s.io/r2", out.stdout)


class OlderServerTest(unittest.TestCase):
    """A server that serves DeviceTaintRules only as v1alpha3, or not at all."""

    def run_with(self, version):
        tmp = tempfile.mkdtemp(prefix="dd-fence-old-")
        srv = ApiServer().start(os.path.join(tmp, "a"), device_taint_rule_version=version)
        self.addCleanup(shutil.rmtree, tmp, True)
        self.addCleanup(srv.stop)
        return srv

    def test_versions(self):
        srv = self.run_with("v1alpha3")
        body = {"apiVersion": "resource.k8s.io/v1alpha3", "kind": "DeviceTaintRule", "metadata": {"name": "r"},
                "spec": {"deviceSelector": {"driver": "d", "pool": "p", "device": "x"},
                         "taint": {"key": "k", "effect": "NoSchedule"}}}
        with self.assertRaises(ApiError) as e:
            srv.request("POST", "/apis/resource.k8s.io/v1/devicetaintrules", dict(body, apiVersion="resource.k8s.io/v1"))
        self.assertEqual(e.exception.code, 404)
        srv.request("POST", "/apis/resource.k8s.io/v1alpha3/devicetaintrules", body)
        self.assertEqual(len(srv.list("/apis/resource.k8s.io/v1alpha3/devicetaintrules")["items"]), 1)
        srv.stop()
        srv = self.run_with("none")
        for v in ("v1", "v1beta2", "v1alpha3"):
            with self.assertRaises(ApiError) as e:
                srv.list("/apis/resource.k8s.io/%s/devicetaintrules" % v)
            self.assertEqual(e.exception.code, 404)


if __name__ == "__main__":
    unittest.main()
