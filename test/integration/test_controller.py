"""Integration scenarios of the controller against the test API server: one test per
behaviour a user relies on (issue text in each docstring). Run with `make test`, or alone:

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_controller -v
"""

import os
import time
import unittest

from test.integration.scenario import (GPU, ScenarioTest, base_policy, evictions, events_for, gpu_id,
                                       hold_for, node_obj, pod_deletes, pod_obj, stop_shared_servers,
                                       wait_evictions, wait_for)

SUFFIXES = ["x2k4q", "b7m9z", "q4t8n", "h3w6d", "p9c2v", "k5r7j", "m8s3f", "t6y1g"]


def names(rs, n):
    return ["%s-%s" % (rs, SUFFIXES[i % len(SUFFIXES)] + ("" if i < len(SUFFIXES) else str(i)))
            for i in range(n)]


def eviction_count(srv, status=None):
    return len([e for e in evictions(srv) if status is None or e["status"] == status])


class ControllerScenarios(ScenarioTest):

    def deployment(self, rs_name, ns, node, n, gpus=1):
        """n pods of one Deployment's ReplicaSet on node, each holding `gpus` GPUs."""
        rs = self.cluster.replicaset(rs_name, ns, replicas=n)
        return [self.cluster.pod(name, node, gpus=gpus, rs=rs, ns=ns) for name in names(rs_name, n)]

    # ------------------------------------------------------------------ the main scenario
    def test_unhealthy_gpu_evicted_and_neighbours_kept(self):
        """A Deployment-owned restartPolicy: Always pod whose GPU turns Unhealthy is evicted
        (debounce 0), after the status patch in the request log; the healthy pods beside it on
        the same node are not. (How fast is measured by `make bench`, not asserted here.)"""
        self.cluster.node("gpu-node-1")
        pods = self.deployment("trainer-7d9f8c6b5", "ml", "gpu-node-1", 4)
        ctl = self.controller(base_policy())
        victim = pods[1]
        patch = self.cluster.set_device_health(victim, victim.devices[0], "Unhealthy", "XID 79")
        ev = wait_evictions(self.srv, 1, timeout=3.0, ctl=ctl, status=201)
        self.assertEqual([(e["namespace"], e["name"]) for e in ev], [("ml", victim.name)])
        latency = ev[0]["time"] - patch["time"]
        self.assertGreaterEqual(latency, 0.0)
        if os.environ.get("DD_VERBOSE"):
            print("eviction %.3f s after the status patch" % latency)
        self.assertEqual(ev[0]["user"], "system:serviceaccount:kube-system:device-descheduler")
        # The neighbours on the same node keep running: no eviction, no delete.
        hold_for(lambda: eviction_count(self.srv) == 1 and not pod_deletes(self.srv), 1.0,
                 "exactly one eviction request", ctl=ctl)
        for p in pods:
            if p is not victim:
                self.assertTrue(self.srv.exists(p.path), p)
        self.assertStopsCleanly(ctl)

    def test_warning_event_precedes_eviction(self):
        """An Event (type Warning, reason UnhealthyDevice, message naming the resource and the
        device ID) is recorded on the pod before the eviction request."""
        self.cluster.node("gpu-node-1")
        pods = self.deployment("trainer-7d9f8c6b5", "ml", "gpu-node-1", 2)
        ctl = self.controller(base_policy())
        victim = pods[0]
        self.cluster.set_device_health(victim, victim.devices[0], "Unhealthy", "XID 79")
        ev = wait_evictions(self.srv, 1, ctl=ctl, status=201)[0]
        posts = [e for e in self.srv.requests(method="POST", resource="events", namespace="ml")]
        self.assertEqual(len(posts), 1, posts)
        self.assertEqual(posts[0]["status"], 201)
        self.assertLess(posts[0]["seq"], ev["seq"], "the Event must be posted before the eviction")
        evs = events_for(self.srv, "ml", victim.name)
        self.assertEqual(len(evs), 1, evs)
        e = evs[0]
        self.assertEqual(e["type"], "Warning")
        self.assertEqual(e["reason"], "UnhealthyDevice")
        self.assertIn(GPU, e["message"])
        self.assertIn(victim.devices[0], e["message"])
        self.assertEqual(e["involvedObject"]["kind"], "Pod")
        self.assertEqual(e["involvedObject"]["uid"], victim.uid)
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------------ PodDisruptionBudgets
    def test_pdb_blocks_then_allows(self):
        """A PodDisruptionBudget blocks the eviction (429s in the log, retried with backoff),
        and the eviction goes through once the budget is relaxed."""
        self.cluster.node("gpu-node-1")
        pods = self.deployment("serve-5c8d7f9b4", "inference", "gpu-node-1", 3)
        self.cluster.pdb("serve", "inference", "serve-5c8d7f9b4", 3)
        ctl = self.controller(base_policy())
        victim = pods[0]
        self.cluster.set_device_health(victim, victim.devices[0])
        blocked = wait_evictions(self.srv, 2, timeout=5.0, ctl=ctl, status=429)
        self.assertTrue(all(e["name"] == victim.name for e in blocked))
        self.assertEqual(eviction_count(self.srv, 201), 0)
        wait_for(lambda: ctl.metric("evictions_total", result="blocked", signal="PodResourceHealth")
                 == eviction_count(self.srv, 429), 3.0, "evictions_total{result=blocked} == the 429s", ctl=ctl)
        self.cluster.set_pdb_min_available("serve", "inference", 2)
        ok = wait_evictions(self.srv, 1, timeout=5.0, ctl=ctl, status=201)
        self.assertEqual(ok[0]["name"], victim.name)
        wait_for(lambda: not self.srv.exists(victim.path), 5.0, "the evicted pod to be gone", ctl=ctl)
        n = eviction_count(self.srv)
        hold_for(lambda: eviction_count(self.srv) == n, 1.0, "no eviction after success", ctl=ctl)
        self.assertEqual(eviction_count(self.srv, 201), 1)
        self.assertEqual(evictions(self.srv)[-1]["status"], 201)
        ctl.wait_metric("evictions_total", 1.0, result="success", signal="PodResourceHealth")
        # One latency sample for the one pod rescued, not one per attempt (issue 14 #14).
        ctl.wait_metric("eviction_latency_seconds_count", 1.0)
        self.assertStopsCleanly(ctl)

    def test_blocked_retries_count_on_one_event(self):
        """Each retry of a blocked eviction records the same Warning Event again: the one
        Event's count and lastTimestamp go up (PATCH), no new Event is created per retry
        (issue 14 #11, as client-go's EventRecorder)."""
        self.cluster.node("gpu-node-1")
        pods = self.deployment("serve-5c8d7f9b4", "inference", "gpu-node-1", 3)
        self.cluster.pdb("serve", "inference", "serve-5c8d7f9b4", 3)
        ctl = self.controller(base_policy())
        victim = pods[0]
        self.cluster.set_device_health(victim, victim.devices[0])
        wait_evictions(self.srv, 3, timeout=8.0, ctl=ctl, status=429)
        counted = wait_for(lambda: [e for e in events_for(self.srv, "inference", victim.name)
                                    if (e.get("count") or 1) >= 3], 5.0, "an Event with count >= 3", ctl=ctl)
        evs = events_for(self.srv, "inference", victim.name)
        self.assertEqual(len(evs), 1, [(e["metadata"]["name"], e.get("count")) for e in evs])
        self.assertEqual(evs[0]["reason"], "UnhealthyDevice")
        self.assertGreaterEqual(evs[0]["lastTimestamp"], evs[0]["firstTimestamp"])
        self.assertEqual(counted[0]["metadata"]["name"], evs[0]["metadata"]["name"])
        patches = [r for r in self.srv.requests(method="PATCH", resource="events") if r["status"] == 200]
        self.assertGreaterEqual(len(patches), 2)
        self.assertStopsCleanly(ctl)

    def test_delete_after_fallback(self):
        """eviction.deleteAfter: when the eviction has been blocked that long, the pod is
        deleted (DELETE of the pod, with its UID as precondition)."""
        self.cluster.node("gpu-node-1")
        pods = self.deployment("serve-5c8d7f9b4", "inference", "gpu-node-1", 2)
        self.cluster.pdb("serve", "inference", "serve-5c8d7f9b4", 2)
        ctl = self.controller(base_policy(eviction={"deleteAfter": "1s"}))
        victim = pods[0]
        self.cluster.set_device_health(victim, victim.devices[0])
        dels = wait_for(lambda: [e for e in pod_deletes(self.srv, "inference", victim.name) if e["status"]], 6.0,
                        "DELETE of %s" % victim.name, ctl=ctl)
        first = evictions(self.srv, "inference", victim.name)[0]
        self.assertEqual(first["status"], 429)
        waited = dels[0]["time"] - first["time"]
        self.assertGreaterEqual(waited, 0.9, "deleted %.3f s after the first blocked eviction" % waited)
        self.assertEqual(dels[0]["status"], 200)
        self.assertTrue(all(e["status"] == 429 for e in evictions(self.srv)))
        wait_for(lambda: not self.srv.exists(victim.path), 5.0, "the deleted pod to be gone", ctl=ctl)
        hold_for(lambda: len(pod_deletes(self.srv)) == 1, 0.5, "exactly one DELETE", ctl=ctl)
        self.assertTrue(self.srv.exists(pods[1].path))
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------------ node conditions
    def node_condition_setup(self, pattern):
        nc = {"type": "GPUXIDErrors", "status": "True"}
        if pattern:
            nc["deviceIDPattern"] = pattern
        self.cluster.node("gpu-node-17")
        self.cluster.node("gpu-node-18")
        pods = self.deployment("trainer-7d9f8c6b5", "ml", "gpu-node-17", 3)
        owner = pods[0].obj["metadata"]["ownerReferences"][0]
        other = self.cluster.pod("trainer-7d9f8c6b5-n18aa", "gpu-node-18", ns="ml",
                                 rs=("ReplicaSet", owner["name"], owner["uid"]))
        cpu = self.cluster.pod("web-6b8f9c7d5-c1p2u", "gpu-node-17", devices=[],
                               rs=self.cluster.replicaset("web-6b8f9c7d5", "ml"), ns="ml")
        ctl = self.controller(base_policy(signals={"nodeConditions": [nc]}))
        return pods, other, cpu, ctl

    def test_node_condition_without_pattern(self):
        """signals.nodeConditions without deviceIDPattern: every device-holding pod on the node
        with the condition is evicted; pods without devices and pods on other nodes are not."""
        pods, other, cpu, ctl = self.node_condition_setup(None)
        self.cluster.set_node_condition("gpu-node-17", "GPUXIDErrors", "True",
                                        "XID 79 on %s (GPU has fallen off the bus)" % pods[0].devices[0],
                                        "XIDCriticalError")
        wait_evictions(self.srv, 3, ctl=ctl, status=201)
        hold_for(lambda: eviction_count(self.srv) == 3, 1.0, "exactly three evictions", ctl=ctl)
        self.assertEqual(sorted(e["name"] for e in evictions(self.srv)), sorted(p.name for p in pods))
        ctl.wait_metric("evictions_total", 3.0, result="success", signal="NodeCondition")
        self.assertStopsCleanly(ctl)

    def test_node_condition_with_device_pattern(self):
        """signals.nodeConditions with deviceIDPattern: only the pod holding the GPU named in the
        condition's message is evicted."""
        pods, other, cpu, ctl = self.node_condition_setup("GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
        target = pods[2]
        self.cluster.set_node_condition("gpu-node-17", "GPUXIDErrors", "True",
                                        "XID 79 on %s (GPU has fallen off the bus)" % target.devices[0],
                                        "XIDCriticalError")
        ev = wait_evictions(self.srv, 1, ctl=ctl, status=201)
        hold_for(lambda: eviction_count(self.srv) == 1, 1.0, "exactly one eviction", ctl=ctl)
        self.assertEqual(ev[0]["name"], target.name)
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------------ exit codes
    def test_exit_code_signal(self):
        """signals.exitCodes: a device-holding container whose last termination exit code is
        listed, with restartCount >= minRestarts, gets its pod evicted; others do not."""
        self.cluster.node("gpu-node-1")
        pods = self.deployment("trainer-7d9f8c6b5", "ml", "gpu-node-1", 3)
        ctl = self.controller(base_policy(signals={"exitCodes": {"enabled": True, "codes": [139],
                                                                  "minRestarts": 3, "for": "0s"}}))

        def crash(p, code, restarts):
            cur = self.srv.get(p.path)
            cs = cur["status"]["containerStatuses"]
            cs[0]["restartCount"] = restarts
            cs[0]["lastState"] = {"terminated": {"exitCode": code, "reason": "Error",
                                                 "startedAt": "2025-01-01T00:00:00Z",
                                                 "finishedAt": "2025-01-01T00:01:00Z"}}
            cs[0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
            self.srv.patch_status(p.path, {"containerStatuses": cs})

        crash(pods[0], 1, 7)      # not a listed code
        crash(pods[1], 139, 2)    # too few restarts
        crash(pods[2], 139, 3)    # evicted
        ev = wait_evictions(self.srv, 1, ctl=ctl, status=201)
        hold_for(lambda: eviction_count(self.srv) == 1, 1.0, "exactly one eviction", ctl=ctl)
        self.assertEqual(ev[0]["name"], pods[2].name)
        ctl.wait_metric("evictions_total", 1.0, result="success", signal="ExitCode")
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------------ dry run
    def check_dry_run(self, ctl, ns, victim):
        self.cluster.set_device_health(victim, victim.devices[0])
        evs = wait_for(lambda: events_for(self.srv, ns, victim.name), 3.0, "the dry-run Event", ctl=ctl)
        self.assertEqual(len(evs), 1, evs)
        self.assertEqual(evs[0]["type"], "Normal")
        self.assertIn("Would evict", evs[0]["message"])
        self.assertIn(victim.devices[0], evs[0]["message"])
        ctl.wait_metric("evictions_total", 1.0, result="dry_run", signal="PodResourceHealth")
        hold_for(lambda: not evictions(self.srv) and not pod_deletes(self.srv), 0.5, "no eviction", ctl=ctl)
        self.assertIsNone(ctl.metric("evictions_total", result="success", signal="PodResourceHealth"))
        self.assertStopsCleanly(ctl)

    def test_dry_run_policy(self):
        """dryRun: true evicts nothing and emits a Normal Event saying "Would evict"."""
        self.cluster.node("gpu-node-1")
        pods = self.deployment("trainer-7d9f8c6b5", "ml", "gpu-node-1", 2)
        self.check_dry_run(self.controller(base_policy(dryRun=True)), "ml", pods[0])

    def test_dry_run_flag(self):
        """--dry-run forces dry run over a policy that says dryRun: false."""
        self.cluster.node("gpu-node-1")
        pods = self.deployment("trainer-7d9f8c6b5", "ml", "gpu-node-1", 2)
        self.check_dry_run(self.controller(base_policy(dryRun=False), args=["--dry-run"]), "ml", pods[0])

    # ------------------------------------------------------------------ invalid policy
    def test_invalid_policy_exits_2_before_any_request(self):
        """An invalid policy exits with status 2 and a FILE:LINE:COL: FIELD: message, and sends
        no request at all (in particular none to an eviction endpoint)."""
        cases = [
            ("apiVersion: device-descheduler/v1alpha1\nkind: DeviceDeschedulerPolicy\neviction:\n"
             "  limits:\n    maxPerNode: two\n", 5, 17, "eviction.limits.maxPerNode: "),
            ("apiVersion: device-descheduler/v1alpha1\nkind: DeviceDeschedulerPolicy\nsignals:\n"
             "  podResourceHealth:\n    enabeld: true\n", 5, 5, "signals.podResourceHealth.enabeld: unknown field"),
            ("apiVersion: device-descheduler/v1alpha1\nkind: DeviceDeschedulerPolicy\neviction:\n"
             "  deleteAfter: soon\n", 4, 16, "eviction.deleteAfter: "),
        ]
        self.cluster.node("gpu-node-1")
        self.deployment("trainer-7d9f8c6b5", "ml", "gpu-node-1", 1)
        for i, (text, line, col, what) in enumerate(cases):
            with self.subTest(what=what):
                self.srv.clear_requests()
                ctl = self.controller(text, start=False, name="invalid-%d" % i)
                rc = ctl.run_to_exit(timeout=10)
                log = ctl.log()
                self.assertEqual(rc, 2, log)
                self.assertIn("%s:%d:%d: %s" % (ctl.policy_path, line, col, what), log)
                self.assertEqual(self.srv.requests(), [])

    # ------------------------------------------------------------------ limits and breaker
    def storm_cluster(self, n_nodes, per_node, ns="batch"):
        """n_nodes nodes with per_node one-GPU pods each (one ReplicaSet); returns (pod objects,
        {pod name: node})."""
        rs = self.cluster.replicaset("storm-8f7d6c5b4", ns, replicas=n_nodes * per_node)
        nodes = [node_obj("gpu-node-%02d" % i) for i in range(n_nodes)]
        objs, where = [], {}
        for i in range(n_nodes):
            node = "gpu-node-%02d" % i
            for j in range(per_node):
                name = "storm-8f7d6c5b4-%02d%d" % (i, j)
                objs.append(pod_obj(name, node, [gpu_id(node, j)], ns=ns, owner=rs,
                                    labels={"app": "storm-8f7d6c5b4"}))
                where[name] = node
        self.cluster.bulk(nodes + objs)
        return objs, where

    def storm(self, objs):
        """Every device of every pod turns Unhealthy at once (one bulk replace)."""
        bad = []
        for o in objs:
            o = dict(o)
            o["metadata"] = {k: v for k, v in o["metadata"].items() if k in ("name", "namespace", "labels",
                                                                           "ownerReferences", "annotations")}
            st = o["status"]
            for cs in st["containerStatuses"]:
                for a in cs.get("allocatedResourcesStatus") or []:
                    for r in a["resources"]:
                        r["health"] = "Unhealthy"
                        r["message"] = "XID 79: GPU has fallen off the bus"
            bad.append(o)
        t = time.monotonic()
        self.cluster.bulk(bad)
        return t

    def test_limits_hold_under_storm(self):
        """A storm of 200 failing GPUs on 25 nodes: maxPerNode: 1 and maxTotal: 10 allow exactly
        ten evictions, one per node (circuit breaker off)."""
        objs, where = self.storm_cluster(25, 8)
        ctl = self.controller(base_policy(eviction={"limits": {"maxPerNode": 1, "maxTotal": 10, "window": "1m"},
                                                    "circuitBreaker": {"enabled": False}}))
        self.storm(objs)
        wait_evictions(self.srv, 10, timeout=8.0, ctl=ctl, status=201)
        hold_for(lambda: eviction_count(self.srv) == 10, 2.0, "exactly ten evictions", ctl=ctl)
        nodes = [where[e["name"]] for e in evictions(self.srv)]
        self.assertEqual(len(set(nodes)), 10, nodes)
        self.assertEqual(eviction_count(self.srv, 201), 10)
        self.assertStopsCleanly(ctl)

    def test_max_per_node_under_storm(self):
        """maxPerNode: 3 with maxTotal: 0 (unlimited): exactly three evictions on each of 4 nodes."""
        objs, where = self.storm_cluster(4, 8)
        ctl = self.controller(base_policy(eviction={"limits": {"maxPerNode": 3, "maxTotal": 0, "window": "1m"},
                                                    "circuitBreaker": {"enabled": False}}))
        self.storm(objs)
        wait_evictions(self.srv, 12, timeout=8.0, ctl=ctl, status=201)
        hold_for(lambda: eviction_count(self.srv) == 12, 1.5, "exactly twelve evictions", ctl=ctl)
        per_node = {}
        for e in evictions(self.srv):
            per_node[where[e["name"]]] = per_node.get(where[e["name"]], 0) + 1
        self.assertEqual(per_node, {"gpu-node-%02d" % i: 3 for i in range(4)})
        self.assertStopsCleanly(ctl)

    def test_circuit_breaker_holds_under_storm(self):
        """A storm of 200 failing GPUs on all 25 device nodes trips the circuit breaker (default
        maxUnhealthyNodePercent 50): no eviction, a log line, circuit_breaker_open 1."""
        objs, where = self.storm_cluster(25, 8)
        # The downward API of the manifests: the breaker's Warning Event goes on our own pod.
        ctl = self.controller(base_policy(signals={"podResourceHealth": {"for": "2s"}}),
                              env={"POD_NAME": "device-descheduler-abc12", "POD_NAMESPACE": "kube-system",
                                   "POD_UID": "dd-uid-1"})
        self.assertEqual(ctl.metric("circuit_breaker_open"), 0.0)
        t = self.storm(objs)
        ctl.wait_log(r"circuit breaker open: \d+ of 25 device nodes \(\d+%\) are unhealthy", timeout=5.0)
        ctl.wait_metric("circuit_breaker_open", 1.0, timeout=5.0)
        # Hold past the debounce (2 s) with a margin: nothing may be evicted.
        hold_for(lambda: not evictions(self.srv) and not pod_deletes(self.srv),
                 max(0.0, t + 3.5 - time.monotonic()), "no eviction while the breaker is open", ctl=ctl)
        self.assertEqual(ctl.metric("circuit_breaker_open"), 1.0)
        evs = events_for(self.srv, "kube-system", "device-descheduler-abc12")
        self.assertEqual([(e["type"], e["reason"]) for e in evs], [("Warning", "CircuitBreakerOpen")])
        self.assertEqual(evs[0]["involvedObject"]["uid"], "dd-uid-1")
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------------ filters
    def test_filters_leave_pods_alone(self):
        """DaemonSet pods, opted-out pods (device-descheduler.io/evict: "false"), bare pods and
        pods in excluded namespaces are left alone; a Deployment pod beside them is evicted."""
        c = self.cluster
        c.node("gpu-node-1")
        ds = c.replicaset("dcgm-exporter", "gpu-operator", kind="DaemonSet")
        rs = c.replicaset("trainer-7d9f8c6b5", "ml", replicas=2)
        sys_rs = c.replicaset("nvidia-tools-6d5c4b3a2", "kube-system")
        left = [
            c.pod("dcgm-exporter-x7k2p", "gpu-node-1", rs=ds, ns="gpu-operator"),
            c.pod("trainer-7d9f8c6b5-optout", "gpu-node-1", rs=rs, ns="ml",
                  annotations={"device-descheduler.io/evict": "false"}),
            c.pod("scratch-notebook", "gpu-node-1", rs=None, ns="ml"),
            c.pod("nvidia-tools-6d5c4b3a2-q8w4e", "gpu-node-1", rs=sys_rs, ns="kube-system"),
        ]
        control = c.pod("trainer-7d9f8c6b5-x2k4q", "gpu-node-1", rs=rs, ns="ml")
        ctl = self.controller(base_policy(podFilters={"namespaces": {"exclude": ["kube-system"]}}))
        for p in left:
            c.set_device_health(p, p.devices[0])
        c.set_device_health(control, control.devices[0])
        ev = wait_evictions(self.srv, 1, ctl=ctl, status=201)
        hold_for(lambda: eviction_count(self.srv) == 1 and not pod_deletes(self.srv), 1.0,
                 "exactly one eviction", ctl=ctl)
        self.assertEqual((ev[0]["namespace"], ev[0]["name"]), ("ml", control.name))
        for p in left:
            self.assertTrue(self.srv.exists(p.path), p)
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------------ identity
    def test_recreated_pod_evicted_again_never_twice(self):
        """A pod is never evicted twice (further health changes while it terminates change
        nothing), and a pod recreated with the same name and a new UID is evicted again when
        its GPU is unhealthy."""
        c = self.cluster
        c.node("gpu-node-1")
        rs = c.replicaset("worker-0", "ml")
        name = "worker-0-abcde"
        hold = "test.device-descheduler.io/hold"
        p = c.pod(name, "gpu-node-1", gpus=2, rs=rs, ns="ml", finalizers=[hold])
        ctl = self.controller(base_policy())
        c.set_device_health(p, p.devices[0])
        wait_evictions(self.srv, 1, ctl=ctl, status=201)
        wait_for(lambda: self.srv.get(p.path)["metadata"].get("deletionTimestamp"), 3.0, "deletionTimestamp")
        c.set_device_health(p, p.devices[1])          # another device fails while it terminates
        hold_for(lambda: eviction_count(self.srv) == 1, 1.0, "a single eviction of the first pod", ctl=ctl)
        self.srv.patch(p.path, {"metadata": {"finalizers": None}})
        wait_for(lambda: not self.srv.exists(p.path), 5.0, "the first pod to be gone", ctl=ctl)
        p2 = c.pod(name, "gpu-node-1", rs=rs, ns="ml", devices=[gpu_id("gpu-node-1", 5)])
        self.assertNotEqual(p2.uid, p.uid)
        c.set_device_health(p2, p2.devices[0])
        ev = wait_evictions(self.srv, 2, ctl=ctl, status=201)
        self.assertEqual([e["name"] for e in ev], [name, name])
        wait_for(lambda: not self.srv.exists(p2.path), 5.0, "the second pod to be gone", ctl=ctl)
        hold_for(lambda: eviction_count(self.srv) == 2, 0.5, "two evictions in all", ctl=ctl)
        self.assertStopsCleanly(ctl)


tearDownModule = stop_shared_servers

if __name__ == "__main__":
    unittest.main()
