"""API discovery and the DRA versions (issue 10 item 1).

The controller reads discovery (/apis: aggregated where the server offers it, else the group list
and /apis/resource.k8s.io/VERSION) and watches ResourceClaims and ResourceSlices in the best
version served: v1, else v1beta2, else v1beta1. Against servers that serve one version only, or
none, or switch while it runs:

- v1 only, v1beta2 only, v1beta1 only (device taints nested under `basic`): the same DRA pod is
  evicted for the same device, signal and reason, and the healthy one is left alone; the
  controller's view is identical whatever the version;
- no DRA: one Info line, no LIST or WATCH of DRA resources, ready as usual, device-plugin pods
  still handled; a policy that explicitly enables DRA signals gets one Warning line;
- none, then v1 while running: the DRA reflectors start when discovery shows the API;
- v1, then v1beta1 only: the 404 of the next WATCH makes discovery look again, and the
  reflectors move to v1beta1.
"""

import os
import re
import shutil
import tempfile
import unittest

from test.integration.scenario import (Cluster, Controller, ScenarioTest, base_policy, evictions, start_apiserver,
                                       stop_shared_servers, wait_evictions, wait_for)

tearDownModule = stop_shared_servers

DRIVER = "gpu.example.com"
NOT_SERVED = "resource.k8s.io not served; DRA signals off until it is"


def dra_objects(version, node="gpu-node-1", ns="ml", pods=("dra-7c9d8f6b5-a1b2c", "dra-7c9d8f6b5-d3e4f"),
                failing="taint"):
    """A ReplicaSet's two DRA pods on node, each with its own claim (allocated gpu-0 and gpu-1 of
    the node's pool), and the node's ResourceSlice with gpu-0 tainted NoExecute, in the shape of
    resource.k8s.io/VERSION: v1beta1 nests device fields under `basic`, and its requests have
    deviceClassName directly instead of under `exactly`. failing="condition": gpu-0 is reported
    by its driver in the first claim's status.devices (Ready False) instead of tainted."""
    av = "resource.k8s.io/" + version
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet",
             "metadata": {"name": "dra-7c9d8f6b5", "namespace": ns, "uid": "rs-dra-uid"},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "dra"}},
                      "template": {"metadata": {"labels": {"app": "dra"}}, "spec": {"containers": [{"name": "c"}]}}}}]
    taint = {"key": "gpu.example.com/xid", "value": "79", "effect": "NoExecute", "timeAdded": "2026-11-27T01:01:58Z"}
    devices = []
    for i, name in enumerate(pods):
        claim = "%s-gpu" % name
        request = {"name": "gpu", "deviceClassName": DRIVER}
        if version != "v1beta1":
            request = {"name": "gpu", "exactly": {"deviceClassName": DRIVER}}
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": name, "namespace": ns, "labels": {"app": "dra"},
                                  "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                       "name": "dra-7c9d8f6b5", "uid": "rs-dra-uid",
                                                       "controller": True}]},
                     "spec": {"nodeName": node, "resourceClaims": [{"name": "gpu", "resourceClaimName": claim}],
                              "containers": [{"name": "c", "resources": {"claims": [{"name": "gpu"}]}}]},
                     "status": {"phase": "Running",
                                "conditions": [{"type": "Ready", "status": "True"}],
                                "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                                       "state": {"running": {"startedAt": "2026-11-27T00:00:00Z"}}}],
                                "resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": claim}]}})
        objs.append({"apiVersion": av, "kind": "ResourceClaim", "metadata": {"name": claim, "namespace": ns},
                     "spec": {"devices": {"requests": [request]}},
                     "status": {"allocation": {"devices": {"results": [
                         {"request": "gpu", "driver": DRIVER, "pool": node, "device": "gpu-%d" % i}]}},
                         "reservedFor": [{"resource": "pods", "name": name}]}})
        if i == 0 and failing == "condition":
            objs[-1]["status"]["devices"] = [{"driver": DRIVER, "pool": node, "device": "gpu-0", "conditions": [
                {"type": "Ready", "status": "False", "reason": "ECC", "message": "uncorrectable ECC errors",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]
        dev = {"name": "gpu-%d" % i}
        fields = {"attributes": {"model": {"string": "H100"}}}
        if i == 0 and failing == "taint":
            fields["taints"] = [taint]
        if version == "v1beta1":
            dev["basic"] = fields
        else:
            dev.update(fields)
        devices.append(dev)
    objs.append({"apiVersion": av, "kind": "ResourceSlice", "metadata": {"name": "%s-%s" % (node, DRIVER)},
                 "spec": {"driver": DRIVER, "nodeName": node,
                          "pool": {"name": node, "generation": 1, "resourceSliceCount": 1}, "devices": devices}})
    return objs


def dra_requests(srv):
    """The LISTs and WATCHes of DRA resources (not discovery's /apis/resource.k8s.io/VERSION)."""
    return [e for e in srv.requests() if e["path"].startswith("/apis/resource.k8s.io/")
            and re.search(r"/(resourceclaims|resourceslices)(/|$)", e["path"])]


def view_lines(log):
    """The controller's decisions and the devices it saw, without timestamps or pids: what must not
    depend on the DRA version it read them in."""
    out = []
    for line in log.splitlines():
        m = re.match(r"^[IWE]\d{4} [\d:.]+\s+\d+ device-descheduler\] (.*)$", line)
        if m and "dra-7c9d8f6b5" in m.group(1):
            out.append(re.sub(r"uid[ =][0-9a-f-]+", "uid=U", m.group(1)))
    return sorted(out)


class DraVersionsTest(unittest.TestCase):
    """One private server per case (each serves a DRA version from the start)."""

    def run_case(self, version, aggregated):
        tmp = tempfile.mkdtemp(prefix="dd-discovery-%s-" % version)
        self.addCleanup(shutil.rmtree, tmp, True)
        # No DeviceTaintRules: the group's versions are then exactly the DRA version.
        srv = start_apiserver(tmp, dra_version=version, aggregated_discovery=aggregated,
                              device_taint_rule_version="none")
        self.addCleanup(srv.stop)
        cluster = Cluster(srv)
        cluster.node("gpu-node-1")
        srv.create_objects(dra_objects(version))
        ctl = Controller(srv, tmp, base_policy(), verbosity=4).start()
        try:
            ctl.wait_ready()
            wait_evictions(srv, 1, ctl=ctl, status=201, name="dra-7c9d8f6b5-a1b2c")
            ctl.wait_log(r"core: pod ml/dra-7c9d8f6b5-a1b2c evicted")
            ctl.wait_log(r"resource\.k8s\.io served: ResourceClaims %s, ResourceSlices %s" % (version, version))
        finally:
            self.assertEqual(ctl.stop(), 0)
        self.assertEqual(evictions(srv, name="dra-7c9d8f6b5-d3e4f"), [])
        reqs = dra_requests(srv)
        self.assertTrue(reqs)
        for e in reqs:
            self.assertTrue(e["path"].startswith("/apis/resource.k8s.io/%s/" % version), e)
            self.assertNotEqual(e["status"], 404, e)
        # Aggregated discovery is one request; plain discovery also asks the DRA version.
        disc = [e["path"] for e in srv.requests() if e["path"] == "/apis" or e["path"].startswith("/apis/resource.k8s.io/v")
                and e["path"].count("/") == 3]
        self.assertEqual(disc, ["/apis"] if aggregated else ["/apis", "/apis/resource.k8s.io/" + version])
        return view_lines(ctl.log())

    def test_kubectl_reads_the_aggregated_discovery(self):
        """The server's aggregated discovery is what real clients accept: kubectl lists the DRA
        resources from /api and /apis alone, without asking any group version."""
        tmp = tempfile.mkdtemp(prefix="dd-discovery-kubectl-")
        self.addCleanup(shutil.rmtree, tmp, True)
        srv = start_apiserver(tmp, dra_version="v1beta2", aggregated_discovery=True)
        self.addCleanup(srv.stop)
        out = srv.kubectl("api-resources", "--api-group=resource.k8s.io", "-o", "wide").stdout
        self.assertRegex(out, r"resourceclaims\s+resource\.k8s\.io/v1beta2\s+true\s+ResourceClaim")
        self.assertRegex(out, r"resourceslices\s+resource\.k8s\.io/v1beta2\s+false\s+ResourceSlice")
        self.assertEqual(sorted(e["path"] for e in srv.requests() if e["path"].startswith("/api")), ["/api", "/apis"])

    def test_view_identical_across_versions(self):
        views = {}
        for version, aggregated in (("v1", True), ("v1", False), ("v1beta2", False), ("v1beta1", True),
                                    ("v1beta1", False)):
            views[(version, aggregated)] = self.run_case(version, aggregated)
        first = views[("v1", True)]
        self.assertTrue(any("dra-7c9d8f6b5-a1b2c" in line for line in first), first)
        self.assertTrue(any("device gpu.example.com/gpu-node-1/gpu-0 is tainted (signal DRADeviceTaint: taint "
                            "gpu.example.com/xid=79:NoExecute)" in line for line in first), first)
        self.assertFalse(any("d3e4f" in line for line in first), first)
        for k, v in views.items():
            self.assertEqual(v, first, "the view read through %s differs from v1's" % (k,))


class TaintRuleVersionTest(unittest.TestCase):
    """Fencing writes DeviceTaintRules in the version discovery found, without trying newer ones
    first, and fences through the node at once when none is served."""

    def run_case(self, rule_version):
        tmp = tempfile.mkdtemp(prefix="dd-discovery-rules-")
        self.addCleanup(shutil.rmtree, tmp, True)
        srv = start_apiserver(tmp, device_taint_rule_version=rule_version)
        self.addCleanup(srv.stop)
        Cluster(srv).node("gpu-node-1")
        srv.create_objects(dra_objects("v1", failing="condition"))
        ctl = Controller(srv, tmp, base_policy(remediation={"recoverAfter": "1h"})).start()
        try:
            ctl.wait_ready()
            ctl.wait_log(r"resource\.k8s\.io served: .*DeviceTaintRules %s" %
                         (rule_version if rule_version != "none" else "not served"))
            wait_evictions(srv, 1, ctl=ctl, status=201, name="dra-7c9d8f6b5-a1b2c", timeout=10)
        finally:
            self.assertEqual(ctl.stop(), 0)
        return srv.requests(resource="devicetaintrules"), ctl.log(), srv

    def test_rules_in_the_discovered_version(self):
        reqs, log, srv = self.run_case("v1beta2")
        self.assertTrue([e for e in reqs if e["method"] == "POST" and e["status"] == 201],
                        [(e["method"], e["path"], e["status"]) for e in srv.requests()])
        for e in reqs:
            self.assertTrue(e["path"].startswith("/apis/resource.k8s.io/v1beta2/devicetaintrules"), e)
            self.assertNotEqual(e["status"], 404, e)
        self.assertEqual(len(srv.list("/apis/resource.k8s.io/v1beta2/devicetaintrules")["items"]), 1)

    def test_no_rule_api_fences_the_node_without_asking(self):
        reqs, log, srv = self.run_case("none")
        self.assertEqual(reqs, [])
        self.assertRegex(log, r"serves no DeviceTaintRule")
        taints = srv.get("/api/v1/nodes/gpu-node-1")["spec"].get("taints") or []
        self.assertIn("device-descheduler.io/unhealthy-device", [t["key"] for t in taints])


class NoDraTest(ScenarioTest):
    server_opts = {"dra_version": "none"}

    def test_no_dra_one_info_line_no_requests_ready(self):
        rs = self.cluster.replicaset("trainer")
        self.cluster.node("gpu-node-1")
        pod = self.cluster.pod("trainer-nodra1", "gpu-node-1", rs=rs)
        ctl = self.controller(base_policy(), verbosity=4)
        ctl.wait_log(re.escape(NOT_SERVED))
        # Device-plugin pods are still handled.
        self.cluster.set_device_health(pod, pod.devices[0])
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=pod.name)
        self.assertStopsCleanly(ctl)
        log = ctl.log()
        self.assertEqual(log.count(NOT_SERVED), 1, log)
        self.assertEqual([e for e in self.srv.requests() if "resourceclaims" in e["path"] or "resourceslices" in e["path"]], [])
        self.assertNotRegex(log, r"(?m)^W")  # the default policy does not ask for DRA explicitly
        self.assertNotRegex(log, r"(?m)^E")

    def test_explicit_dra_policy_one_warning(self):
        policy = base_policy(devices={"dra": True}, signals={"draDeviceTaints": {"enabled": True}})
        ctl = self.controller(policy)
        ctl.wait_log(r"(?m)^W.*the policy enables DRA signals, but this cluster does not serve resource\.k8s\.io")
        self.assertStopsCleanly(ctl)
        log = ctl.log()
        self.assertEqual(len(re.findall(r"(?m)^W.*", log)), 1, log)
        self.assertNotRegex(log, r"(?m)^E")
        self.assertEqual(log.count(NOT_SERVED), 1)


class SwitchTest(ScenarioTest):
    server_opts = {"dra_version": "none"}

    def tearDown(self):
        self.srv.set_dra("none", aggregated=False)

    def test_none_then_v1_starts_the_reflectors(self):
        ctl = self.controller(base_policy(), args=["--discovery-interval=1s"], verbosity=4)
        ctl.wait_log(re.escape(NOT_SERVED))
        self.assertEqual(dra_requests(self.srv), [])
        self.srv.set_dra("v1")
        self.cluster.node("gpu-node-1")
        self.srv.create_objects(dra_objects("v1"))
        ctl.wait_log(r"resource\.k8s\.io served: ResourceClaims v1, ResourceSlices v1", timeout=10)
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name="dra-7c9d8f6b5-a1b2c", timeout=10)
        self.assertStopsCleanly(ctl)
        self.assertEqual(ctl.log().count(NOT_SERVED), 1)

    def test_v1_gone_404_rediscovers_v1beta1(self):
        self.srv.set_dra("v1")
        self.cluster.node("gpu-node-1")
        ctl = self.controller(base_policy(), verbosity=4)
        ctl.wait_log(r"watching ResourceClaims \(resource\.k8s\.io/v1\)")
        # The server now serves v1beta1 only (a downgrade); the open watches are cut, and their
        # next WATCH gets 404, which makes discovery look again before its 5-minute interval.
        self.srv.set_dra("v1beta1")
        self.srv.create_objects(dra_objects("v1beta1"))
        self.srv.drop_watches(path_regex="resource")
        ctl.wait_log(r"resource\.k8s\.io served: ResourceClaims v1beta1, ResourceSlices v1beta1", timeout=15)
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name="dra-7c9d8f6b5-a1b2c", timeout=10)
        self.assertStopsCleanly(ctl)
        four04 = [e for e in dra_requests(self.srv) if e["status"] == 404]
        self.assertTrue(four04)
        self.assertTrue(all(e["path"].startswith("/apis/resource.k8s.io/v1/") for e in four04), four04)


if __name__ == "__main__":
    unittest.main()
