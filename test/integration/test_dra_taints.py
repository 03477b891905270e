"""DRA device taints as the cluster reads them, against the test API server (the same cases run
on the real control plane in test/realcluster/real_scenarios.py, DraDivergences).

- A claim whose allocation result tolerates the NoExecute taint of its device keeps its pod, as
  kube-scheduler and kube-controller-manager keep it; the pod next to it, whose claim does not,
  is evicted.
- tolerationSeconds: the pod is evicted once the toleration ends, counted from the taint's
  timeAdded (the server sets it when the client leaves it out), not from when the controller saw it.
- A NoExecute DeviceTaintRule written by someone else taints the devices its selector picks exactly
  as a slice taint does; a rule with our label (our own fences) is no signal, and the controller
  does not even list it; a NoSchedule rule evicts nobody with the default effects.
"""

import datetime
import os
import subprocess
import unittest

from test.integration.scenario import BIN, ScenarioTest, base_policy, evictions, hold_for, policy_yaml, \
    stop_shared_servers, wait_evictions
from test.integration.test_discovery import DRIVER, dra_objects

tearDownModule = stop_shared_servers

NODE = "gpu-node-1"
POD_A, POD_B = "dra-7c9d8f6b5-a1b2c", "dra-7c9d8f6b5-d3e4f"  # claims on gpu-0 and gpu-1
KEY = "gpu.example.com/xid"
RULES = "/apis/resource.k8s.io/v1/devicetaintrules"


def rfc3339(seconds_ago):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def objects(tolerations=None, taint_both=False, taint=True, time_added=None):
    """dra_objects("v1") with the first pod's claim tolerating `tolerations` (allocation result and
    spec alike, as the real allocator copies them) and gpu-0 (and with taint_both gpu-1) tainted
    NoExecute (timeAdded as given, or left to the server); taint=False: no slice taint at all."""
    objs = dra_objects("v1")
    for o in objs:
        if o["kind"] == "ResourceClaim" and o["metadata"]["name"] == POD_A + "-gpu" and tolerations:
            o["spec"]["devices"]["requests"][0]["exactly"]["tolerations"] = tolerations
            o["status"]["allocation"]["devices"]["results"][0]["tolerations"] = tolerations
        if o["kind"] == "ResourceSlice":
            for d in o["spec"]["devices"]:
                d.pop("taints", None)
                if taint and (d["name"] == "gpu-0" or taint_both):
                    d["taints"] = [{"key": KEY, "value": "79", "effect": "NoExecute"}]
                    if time_added:
                        d["taints"][0]["timeAdded"] = time_added
    return objs


class ClaimTolerationsTest(ScenarioTest):

    def start(self, objs, policy=None):
        self.cluster.node(NODE)
        self.srv.create_objects(objs)
        return self.controller(policy or base_policy(), verbosity=4)

    def test_a_claim_that_tolerates_the_taint_is_not_evicted(self):
        """Both devices tainted NoExecute; POD_A's claim tolerates the key (Exists, NoExecute, for
        ever): only POD_B is evicted (before: both)."""
        ctl = self.start(objects([{"key": KEY, "operator": "Exists", "effect": "NoExecute"}], taint_both=True))
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=POD_B)
        hold_for(lambda: not evictions(self.srv, name=POD_A), 1.5, "no eviction of the tolerating pod", ctl=ctl)
        self.assertStopsCleanly(ctl)

    def test_a_toleration_without_the_noexecute_effect_does_not_count(self):
        """kube-controller-manager counts only tolerations of effect NoExecute against a NoExecute
        taint (it deletes this pod): the controller evicts it, through the Eviction API."""
        ctl = self.start(objects([{"key": KEY, "operator": "Exists"}]))
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=POD_A)
        self.assertStopsCleanly(ctl)

    def test_toleration_seconds_count_from_time_added(self):
        """The taint was added 100 s ago and the claim tolerates it for 103 s: evicted in about 3 s
        (counted from the controller's first sight it would be 103 s), and not at once."""
        ctl = self.start(objects([{"key": KEY, "operator": "Equal", "value": "79", "effect": "NoExecute",
                                   "tolerationSeconds": 103}], time_added=rfc3339(100)))
        ctl.wait_log(r"pod ml/%s bound to claim:gpu/gpu device .*gpu-0 \(tainted, signal DRADeviceTaint\): "
                     r"evictable in \d+ ms" % POD_A)
        hold_for(lambda: not evictions(self.srv, name=POD_A), 1.0, "no eviction while tolerated", ctl=ctl)
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=POD_A, timeout=10)
        self.assertStopsCleanly(ctl)

    def test_the_server_sets_time_added(self):
        """As kube-apiserver's defaulting: a slice taint and a rule's taint without timeAdded get the
        current time, and changing a rule's effect moves it."""
        self.srv.create_objects(objects())
        slice_ = self.srv.list("/apis/resource.k8s.io/v1/resourceslices")["items"][0]
        self.assertRegex(slice_["spec"]["devices"][0]["taints"][0]["timeAdded"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        then = rfc3339(600)
        rule = self.srv.create({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceTaintRule",
                                "metadata": {"name": "r"},
                                "spec": {"deviceSelector": {"pool": NODE},
                                         "taint": {"key": KEY, "effect": "NoSchedule", "timeAdded": then}}})
        self.assertEqual(rule["spec"]["taint"]["timeAdded"], then)
        rule["spec"]["taint"]["effect"] = "NoExecute"
        upd = self.srv.update(rule)
        self.assertNotEqual(upd["spec"]["taint"]["timeAdded"], rule["spec"]["taint"]["timeAdded"])


class ForeignDeviceTaintRulesTest(ScenarioTest):

    def rule(self, name, device, effect="NoExecute", ours=False):
        md = {"name": name}
        if ours:
            md["labels"] = {"app.kubernetes.io/managed-by": "device-descheduler"}
        return self.srv.create({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceTaintRule", "metadata": md,
                                "spec": {"deviceSelector": {"driver": DRIVER, "pool": NODE, "device": device},
                                         "taint": {"key": "example.com/maintenance", "value": "planned",
                                                   "effect": effect}}})

    def test_a_foreign_rule_evicts_like_a_slice_taint(self):
        """No slice taint; a NoExecute rule of someone else's picks gpu-0: POD_A is evicted (before:
        nothing happened), for that device, by the DRADeviceTaint signal, naming the rule."""
        self.cluster.node(NODE)
        self.srv.create_objects(objects(taint=False))
        ctl = self.controller(base_policy(), verbosity=4)
        ctl.wait_log(r"watching DeviceTaintRules \(resource\.k8s\.io/v1\) but ours")
        self.rule("maintenance", "gpu-0")
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=POD_A)
        # The rules' cache is in /metrics like the others (it was the fifth watch, left out).
        ctl.wait_metric("cached_objects", 1, resource="devicetaintrules")
        ctl.wait_log(r"device gpu\.example\.com/gpu-node-1/gpu-0 is tainted \(signal DRADeviceTaint: "
                     r"DeviceTaintRule maintenance: taint example\.com/maintenance=planned:NoExecute\)")
        self.assertEqual(evictions(self.srv, name=POD_B), [])
        # The controller never reads our own fences: its list and watch leave them out.
        reads = [e for e in self.srv.requests(resource="devicetaintrules") if e["method"] == "GET"
                 and "managed-by" in (e.get("query") or "") and "!=" in (e.get("query") or "").replace("%21%3D", "!=")]
        self.assertTrue(reads, [(e["path"], e.get("query")) for e in self.srv.requests(resource="devicetaintrules")])
        self.assertStopsCleanly(ctl)

    def test_our_own_rules_and_noschedule_rules_are_no_signal(self):
        """A NoExecute rule with our label (a fence of ours: reading it would loop) and a NoSchedule
        rule of someone else's: nobody is evicted; then a foreign NoExecute rule on POD_B's device
        evicts POD_B, and only POD_B."""
        self.cluster.node(NODE)
        self.srv.create_objects(objects(taint=False))
        ctl = self.controller(base_policy(), verbosity=4)
        ctl.wait_log(r"watching DeviceTaintRules")
        self.rule("ours", "gpu-0", ours=True)
        self.rule("soft", "gpu-0", effect="NoSchedule")
        hold_for(lambda: not evictions(self.srv), 1.5, "no eviction for our rule or a NoSchedule rule", ctl=ctl)
        self.rule("theirs", "gpu-1")
        wait_evictions(self.srv, 1, ctl=ctl, status=201, name=POD_B)
        hold_for(lambda: not evictions(self.srv, name=POD_A), 0.5, "still no eviction of POD_A", ctl=ctl)
        self.assertStopsCleanly(ctl)

    def test_explain_reads_the_rules(self):
        """`explain` reads the rules of others as the daemon does (and not ours)."""
        self.cluster.node(NODE)
        self.srv.create_objects(objects(taint=False))
        self.rule("ours", "gpu-0", ours=True)
        path = os.path.join(self.workdir, "policy.yaml")
        with open(path, "w") as f:
            f.write(policy_yaml(base_policy()))
        cmd = [BIN, "explain", "ml/" + POD_A, "--kubeconfig", self.srv.kubeconfig, "--policy-config-file", path]
        run = lambda: subprocess.run(cmd, capture_output=True, text=True, timeout=60,  # noqa: E731
                                     stdin=subprocess.DEVNULL)
        p = run()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("not evicted: no device it holds looks unhealthy", p.stdout)
        self.rule("maintenance", "gpu-0")
        p = run()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("DeviceTaintRule maintenance: taint example.com/maintenance=planned:NoExecute", p.stdout)
        self.assertIn("Decision:  would evict now", p.stdout)


if __name__ == "__main__":
    unittest.main()
