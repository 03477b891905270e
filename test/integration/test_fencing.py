"""Fencing scenarios: a rescued pod must land on healthy hardware.

The test API server runs its simulated scheduler (--simulate), which honours taints,
tolerations and cordons like kube-scheduler and prefers the emptiest node, so a replacement
goes straight back to a failed node unless the controller fences it first. Four nodes of 16
GPUs, one ReplicaSet of 32 pods (8 per node). Every wait has a deadline; "never" is checked
continuously over a span (hold_for), never by a sleep followed by an assertion.

Run: DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_fencing -v
"""

import json
import time
import unittest

from test.integration.scenario import (GPU, ScenarioTest, base_policy, evictions, hold_for, node_obj,
                                       path_for, policy_yaml, stop_shared_servers, wait_for, write_atomic)

KEY = "device-descheduler.io/unhealthy-device"
ANNOTATION = "device-descheduler.io/quarantine"
NS = "ml"
RS_NAME = "trainer"
NODES = ["gpu-node-%d" % i for i in range(1, 5)]
RULES = "/apis/resource.k8s.io/v1/devicetaintrules"


def condition_policy(**remediation):
    """A node condition on nvidia.com/gpu, no debounce, and a short recoverAfter."""
    rem = {"recoverAfter": "3s"}
    rem.update(remediation)
    return base_policy(signals={"nodeConditions": [{"type": "GPUXIDErrors", "status": "True",
                                                    "resources": [GPU], "for": "0s"}]},
                       remediation=rem)


class FencingBase(ScenarioTest):
    """The shared setup and helpers (no tests)."""

    server_opts = {"simulate": True}

    def setUp(self):
        super().setUp()
        self.srv.request("POST", "/_test/simulator", {"ignoreTaints": False})
        self.addCleanup(self.srv.request, "POST", "/_test/simulator", {"ignoreTaints": False})

    # ------------------------------------------------------------------ helpers
    def start_cluster(self, replicas=32, nodes=NODES):
        for n in nodes:
            self.srv.create(node_obj(n, gpus=16))
        self.cluster.namespace(NS)
        self.srv.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                         "metadata": {"name": RS_NAME, "namespace": NS, "labels": {"app": RS_NAME}},
                         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": RS_NAME}},
                                  "template": {"metadata": {"labels": {"app": RS_NAME}},
                                               "spec": {"containers": [{
                                                   "name": "trainer", "image": "registry.example/ml/trainer:1.4",
                                                   "resources": {"limits": {GPU: "1"}, "requests": {GPU: "1"}}}]}}}})
        per = replicas // len(nodes)
        return wait_for(lambda: self.placement() if all(
            len(v) == per for v in self.placement().values()) and len(self.placement()) == len(nodes) else None,
            15, "%d running pods spread over %d nodes" % (replicas, len(nodes)))

    def alive(self):
        return [p for p in self.srv.list("/api/v1/namespaces/%s/pods" % NS)["items"]
                if not p["metadata"].get("deletionTimestamp")]

    def placement(self):
        """{node: [pod names]} of the pods alive and bound."""
        out = {}
        for p in self.alive():
            n = p["spec"].get("nodeName")
            if n and p.get("status", {}).get("phase") == "Running":
                out.setdefault(n, []).append(p["metadata"]["name"])
        return out

    def node(self, name):
        return self.srv.get(path_for(kind="Node", name=name))

    def our_taints(self, name):
        return [t for t in self.node(name)["spec"].get("taints") or [] if t["key"] == KEY]

    def node_patches(self, name):
        return [e for e in self.srv.requests(resource="nodes", name=name)
                if e["method"] in ("PATCH", "PUT") and e["subresource"] == ""]

    def raise_condition(self, node, status="True"):
        self.cluster.set_node_condition(node, "GPUXIDErrors", status, message="XID 79 on GPU-3")

    def evicted_names(self):
        return [e["name"] for e in evictions(self.srv, ns=NS) if e["status"] == 201]


    def dra_pod(self, node):
        """A pod of a StatefulSet (the simulator would delete a surplus pod of the ReplicaSet) holding
        DRA device gpu.example.com/<node>/gpu-0 through claim dra-trainer-gpu; returns the claim."""
        owner = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "dra",
                  "uid": "5e1f0000-0000-4000-8000-000000000001", "controller": True}]
        pod = self.srv.create({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "dra-trainer", "namespace": NS, "ownerReferences": owner, "labels": {"x": "y"}},
            "spec": {"nodeName": node, "containers": [{"name": "trainer", "image": "x",
                                                        "resources": {"claims": [{"name": "gpu"}]}}],
                     "resourceClaims": [{"name": "gpu", "resourceClaimName": "dra-trainer-gpu"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "dra-trainer-gpu"}]}})
        return self.srv.create({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": "dra-trainer-gpu", "namespace": NS},
            "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}]}},
            "status": {"allocation": {"devices": {"results": [
                {"request": "gpu", "driver": "gpu.example.com", "pool": node, "device": "gpu-0"}]}},
                "reservedFor": [{"resource": "pods", "name": "dra-trainer", "uid": pod["metadata"]["uid"]}]}})

    def fail_dra_device(self, node):
        self.srv.patch_status("/apis/resource.k8s.io/v1/namespaces/%s/resourceclaims/dra-trainer-gpu" % NS,
                              {"devices": [{"driver": "gpu.example.com", "pool": node, "device": "gpu-0",
                                            "conditions": [{"type": "Ready", "status": "False", "reason": "ECC",
                                                            "message": "uncorrectable ECC errors",
                                                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]})

    def dra_evicted(self, ctl):
        return wait_for(lambda: [e for e in evictions(self.srv, ns=NS, name="dra-trainer") if e["status"] == 201],
                        10, "the DRA pod evicted", ctl=ctl)


class Fencing(FencingBase):
    # ------------------------------------------------------------------ scenarios
    def test_node_condition_fences_then_evicts_and_replacements_land_elsewhere(self):
        before = self.start_cluster()
        bad = NODES[0]
        ctl = self.controller(condition_policy())
        self.srv.clear_requests()
        self.raise_condition(bad)
        wait_for(lambda: len(self.evicted_names()) >= 8, 15, "8 evictions", ctl=ctl)
        patches = [e for e in self.node_patches(bad) if e["status"] == 200]
        first_eviction = min(e["seq"] for e in evictions(self.srv, ns=NS))
        self.assertTrue(patches, "no node write")
        self.assertLess(patches[0]["seq"], first_eviction, "the taint must be written before any eviction")
        taints = self.our_taints(bad)
        self.assertEqual(taints, [{"key": KEY, "value": "nvidia.com_gpu", "effect": "NoSchedule",
                                   "timeAdded": taints[0]["timeAdded"]}])
        record = json.loads(self.node(bad)["metadata"]["annotations"][ANNOTATION])
        self.assertEqual((record["signal"], record["resource"]), ("NodeCondition", GPU))
        # Exactly the 8 pods of the bad node, each once; the replacements land elsewhere.
        self.assertEqual(sorted(self.evicted_names()), sorted(before[bad]))
        wait_for(lambda: sum(len(v) for v in self.placement().values()) == 32 and bad not in self.placement(),
                 15, "32 running pods, none on %s" % bad, ctl=ctl)
        # Nothing evicted twice, nothing back on the fenced node, within 30 s of the first eviction.
        first = min(e["time"] for e in evictions(self.srv, ns=NS))
        hold_for(lambda: len(evictions(self.srv, ns=NS)) == 8 and bad not in self.placement(),
                 max(0.0, first + 30.0 - time.time()), "no further eviction, nothing back on the fenced node",
                 ctl=ctl)
        self.assertEqual(ctl.metric("quarantined_nodes"), 1)
        self.assertEqual(ctl.metric("quarantine_actions_total", action="taint"), 1)
        self.assertStopsCleanly(ctl)

    def test_recovery_after_recover_after_never_early(self):
        self.start_cluster(replicas=8)
        bad = NODES[0]
        ctl = self.controller(condition_policy(recoverAfter="3s"))
        self.raise_condition(bad)
        wait_for(lambda: self.our_taints(bad), 10, "our taint", ctl=ctl)
        wait_for(lambda: len(self.evicted_names()) >= 2, 10, "the 2 pods of the bad node evicted", ctl=ctl)
        self.raise_condition(bad, "False")
        cleared = time.monotonic()
        hold_for(lambda: self.our_taints(bad), 2.6, "the taint during recoverAfter", ctl=ctl)
        wait_for(lambda: not self.our_taints(bad), 10, "the taint removed after recovery", ctl=ctl)
        self.assertGreaterEqual(time.monotonic() - cleared, 3.0)
        self.assertNotIn(ANNOTATION, self.node(bad)["metadata"].get("annotations") or {})
        self.assertEqual([t["key"] for t in self.node(bad)["spec"]["taints"]], [GPU])
        ctl.wait_metric("quarantine_actions_total", 1, action="untaint")
        ctl.wait_metric("quarantined_nodes", 0)
        self.assertStopsCleanly(ctl)

    def test_restart_while_quarantined(self):
        self.start_cluster(replicas=8)
        bad = NODES[0]
        ctl = self.controller(condition_policy(recoverAfter="2s"))
        self.raise_condition(bad)
        wait_for(lambda: len(self.evicted_names()) >= 2, 10, "evictions", ctl=ctl)
        self.assertStopsCleanly(ctl)
        writes = len(self.node_patches(bad))
        ctl2 = self.controller(condition_policy(recoverAfter="2s"))
        ctl2.wait_metric("quarantined_nodes", 1)
        hold_for(lambda: len(self.our_taints(bad)) == 1 and len(self.node_patches(bad)) == writes, 1.0,
                 "one taint, no new write while the node is still unhealthy", ctl=ctl2)
        self.raise_condition(bad, "False")
        wait_for(lambda: not self.our_taints(bad), 10, "the taint removed by the new replica", ctl=ctl2)
        self.assertStopsCleanly(ctl2)

    def test_foreign_similar_taints_never_touched(self):
        bad = NODES[0]
        foreign = [{"key": KEY + "-other", "value": "x", "effect": "NoSchedule"},
                   {"key": "example.com/" + KEY.split("/")[1], "value": "y", "effect": "NoSchedule"},
                   {"key": KEY, "value": "z", "effect": "PreferNoSchedule"}]
        self.start_cluster(replicas=8)
        # Someone else's taints, added after the pods were bound (a taint does not move them).
        cur = self.node(bad)
        self.srv.patch(path_for(kind="Node", name=bad),
                       {"metadata": {"resourceVersion": cur["metadata"]["resourceVersion"]},
                        "spec": {"taints": cur["spec"]["taints"] + foreign}})
        original = self.node(bad)["spec"]["taints"]
        ctl = self.controller(condition_policy(recoverAfter="1s"))
        self.raise_condition(bad)
        wait_for(lambda: any(t["effect"] == "NoSchedule" for t in self.our_taints(bad)), 10, "our taint", ctl=ctl)
        self.assertEqual([t for t in self.node(bad)["spec"]["taints"] if not (t["key"] == KEY and
                                                                            t["effect"] == "NoSchedule")], original)
        self.raise_condition(bad, "False")
        wait_for(lambda: ANNOTATION not in (self.node(bad)["metadata"].get("annotations") or {}), 10,
                 "recovery", ctl=ctl)
        self.assertEqual(self.node(bad)["spec"]["taints"], original)
        self.assertStopsCleanly(ctl)

    def test_dry_run_writes_nothing(self):
        self.start_cluster(replicas=8)
        bad = NODES[0]
        ctl = self.controller(condition_policy(), args=["--dry-run"])
        self.srv.clear_requests()
        self.raise_condition(bad)
        ctl.wait_log(r"would taint node %s with %s=nvidia.com_gpu:NoSchedule" % (bad, KEY), timeout=10)
        ctl.wait_log(r"Would evict pod", timeout=10)
        ev = wait_for(lambda: [e for e in self.srv.list("/api/v1/namespaces/%s/events" % NS)["items"]
                               if e.get("reason") == "WouldTaint"], 5, "a WouldTaint Event", ctl=ctl)
        self.assertEqual(ev[0]["type"], "Normal")
        self.assertIn("Would taint node %s" % bad, ev[0]["message"])
        hold_for(lambda: not self.node_patches(bad) and not evictions(self.srv) and not self.our_taints(bad), 1.0,
                 "no write in dry run", ctl=ctl)
        self.assertStopsCleanly(ctl)

    def test_reload_turning_remediation_off_lifts_our_fences(self):
        self.start_cluster(replicas=8)
        bad = NODES[0]
        ctl = self.controller(condition_policy(recoverAfter="10m"))
        self.raise_condition(bad)
        wait_for(lambda: self.our_taints(bad), 10, "our taint", ctl=ctl)
        write_atomic(ctl.policy_path, policy_yaml(condition_policy(enabled=False)))
        wait_for(lambda: not self.our_taints(bad) and
                 ANNOTATION not in (self.node(bad)["metadata"].get("annotations") or {}), 10,
                 "our fence lifted after the reload", ctl=ctl)
        self.assertEqual([t["key"] for t in self.node(bad)["spec"]["taints"]], [GPU])
        self.assertStopsCleanly(ctl)

    def test_cap_holds(self):
        self.start_cluster(replicas=8)
        ctl = self.controller(condition_policy(maxQuarantinedNodes=1))
        self.raise_condition(NODES[0])
        wait_for(lambda: len(self.evicted_names()) >= 2, 10, "evictions on the first node", ctl=ctl)
        on_second = set(self.placement().get(NODES[1], []))
        self.raise_condition(NODES[1])
        ctl.wait_log(r"quarantine cap reached", timeout=10)
        hold_for(lambda: not self.our_taints(NODES[1]) and not on_second & set(self.evicted_names()), 1.5,
                 "nothing fenced or evicted past the cap", ctl=ctl)
        self.assertStopsCleanly(ctl)

    def test_quarantine_counts_against_the_breaker(self):
        self.start_cluster(replicas=8)
        policy = condition_policy(recoverAfter="10m")
        policy["eviction"]["circuitBreaker"] = {"maxUnhealthyNodes": 1}
        ctl = self.controller(policy)
        self.raise_condition(NODES[0])
        wait_for(lambda: len(self.evicted_names()) >= 2, 10, "evictions on the first node", ctl=ctl)
        self.raise_condition(NODES[0], "False")  # healthy again, but still quarantined
        on_second = set(self.placement().get(NODES[1], []))
        self.raise_condition(NODES[1])
        ctl.wait_metric("circuit_breaker_open", 1)
        hold_for(lambda: not on_second & set(self.evicted_names()), 1.0, "the breaker holds", ctl=ctl)
        self.assertStopsCleanly(ctl)

    def test_loop_guard_trips_when_the_scheduler_ignores_taints(self):
        before = self.start_cluster(replicas=8)
        bad = NODES[0]
        self.srv.request("POST", "/_test/simulator", {"ignoreTaints": True})
        ctl = self.controller(condition_policy())
        self.raise_condition(bad)
        wait_for(lambda: len(self.evicted_names()) >= 2, 10, "the first evictions", ctl=ctl)
        # The replacements come back to the (emptiest) failed node; the guard keeps them.
        back = wait_for(lambda: [n for n in self.placement().get(bad, []) if n not in before[bad]] or None, 10,
                        "a replacement back on %s" % bad, ctl=ctl)
        loops = wait_for(lambda: ctl.metric("eviction_loops_total") or None, 10, "eviction_loops_total > 0", ctl=ctl)
        ev = wait_for(lambda: [e for e in self.srv.list("/api/v1/namespaces/%s/events" % NS)["items"]
                               if e.get("reason") == "EvictionLoop"], 5, "an EvictionLoop Event", ctl=ctl)
        self.assertEqual(ev[0]["type"], "Warning")
        self.assertIn(ev[0]["involvedObject"]["name"], back + [n for n in self.placement().get(bad, [])])
        self.assertEqual(ctl.metric("pods_not_evicted_total", reason="loop"), loops)
        hold_for(lambda: sorted(self.evicted_names()) == sorted(before[bad]), 1.0, "no replacement evicted",
                 ctl=ctl)
        self.assertStopsCleanly(ctl)

    def test_dra_claim_condition_yields_a_device_taint_rule(self):
        self.start_cluster(replicas=4)
        node = NODES[0]
        self.dra_pod(node)
        ctl = self.controller(base_policy(remediation={"recoverAfter": "2s"}))
        self.srv.clear_requests()
        self.fail_dra_device(node)
        ev = self.dra_evicted(ctl)
        created = [e for e in self.srv.requests(resource="devicetaintrules", method="POST") if e["status"] == 201]
        self.assertTrue(created)
        self.assertLess(created[0]["seq"], ev[0]["seq"], "the rule must exist before the eviction")
        rules = self.srv.list(RULES)["items"]
        self.assertEqual(len(rules), 1)
        self.assertEqual(rules[0]["spec"]["deviceSelector"], {"driver": "gpu.example.com", "pool": node,
                                                             "device": "gpu-0"})
        self.assertEqual(rules[0]["spec"]["taint"]["effect"], "NoSchedule")
        self.assertNotIn(KEY, [t["key"] for t in self.node(node)["spec"].get("taints") or []])
        ctl.wait_metric("quarantined_devices", 1)
        wait_for(lambda: not self.srv.list(RULES)["items"], 10, "the rule deleted after recovery", ctl=ctl)
        self.assertStopsCleanly(ctl)

    def test_cordon_mode(self):
        before = self.start_cluster(replicas=8)
        bad = NODES[0]
        ctl = self.controller(condition_policy(mode="cordon", recoverAfter="1s"))
        self.raise_condition(bad)
        wait_for(lambda: len(self.evicted_names()) >= 2, 10, "evictions", ctl=ctl)
        self.assertTrue(self.node(bad)["spec"].get("unschedulable"))
        self.assertEqual(self.our_taints(bad), [])
        wait_for(lambda: sum(len(v) for v in self.placement().values()) == 8 and bad not in self.placement(), 10,
                 "the replacements elsewhere", ctl=ctl)
        self.assertEqual(sorted(self.evicted_names()), sorted(before[bad]))
        self.raise_condition(bad, "False")
        wait_for(lambda: not self.node(bad)["spec"].get("unschedulable"), 10, "uncordoned after recovery", ctl=ctl)
        self.assertStopsCleanly(ctl)


class OlderDeviceTaintRuleApi(FencingBase):
    """A server of Kubernetes 1.33-1.35: DeviceTaintRules only as resource.k8s.io/v1alpha3."""

    server_opts = {"simulate": True, "device_taint_rule_version": "v1alpha3"}

    def test_dra_claim_condition_yields_a_device_taint_rule(self):
        self.start_cluster(replicas=4)
        self.dra_pod(NODES[0])
        ctl = self.controller(base_policy(remediation={"recoverAfter": "2s"}))
        self.fail_dra_device(NODES[0])
        self.dra_evicted(ctl)
        rules = self.srv.list("/apis/resource.k8s.io/v1alpha3/devicetaintrules")["items"]
        self.assertEqual([r["spec"]["deviceSelector"]["device"] for r in rules], ["gpu-0"])
        wait_for(lambda: not self.srv.list("/apis/resource.k8s.io/v1alpha3/devicetaintrules")["items"], 10,
                 "the rule deleted after recovery", ctl=ctl)
        self.assertStopsCleanly(ctl)


class NoDeviceTaintRuleApi(FencingBase):
    """A server that serves no DeviceTaintRule: the device's node is tainted instead, said once."""

    server_opts = {"simulate": True, "device_taint_rule_version": "none"}

    def test_dra_claim_condition_yields_a_device_taint_rule(self):
        self.start_cluster(replicas=4)
        node = NODES[0]
        self.dra_pod(node)
        ctl = self.controller(base_policy(remediation={"recoverAfter": "2s"}))
        self.srv.clear_requests()
        self.fail_dra_device(node)
        ev = self.dra_evicted(ctl)
        patches = [e for e in self.node_patches(node) if e["status"] == 200]
        self.assertTrue(patches)
        self.assertLess(patches[0]["seq"], ev[0]["seq"], "the node taint must exist before the eviction")
        self.assertEqual(self.our_taints(node)[0]["value"], "claim_gpu_gpu")
        self.assertEqual(ctl.log().count("serves no DeviceTaintRule"), 1)
        wait_for(lambda: not self.our_taints(node), 10, "the node taint removed after recovery", ctl=ctl)
        self.assertStopsCleanly(ctl)


tearDownModule = stop_shared_servers

if __name__ == "__main__":
    unittest.main()
