"""Integration scenarios for how health signals are read and what an eviction's answer means
(issue 14 #2, #4, #5, #7, #12), against the test API server. Each test failed on the code
before its fix. Run alone:

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_signals -v
"""

import unittest

from test.integration.scenario import (Pod, ScenarioTest, base_policy, evictions, hold_for, stop_shared_servers,
                                       wait_evictions, wait_for)


def names(prefix, n):
    return ["%s-%02d" % (prefix, i) for i in range(n)]


class SignalScenarios(ScenarioTest):

    def pods_on(self, node, devices, rs_name="trainer-7d9f8c6b5", ns="ml"):
        """One Deployment pod per device (devices are the resourceIDs) on node."""
        rs = self.cluster.replicaset(rs_name, ns, replicas=len(devices))
        return [self.cluster.pod(n, node, rs=rs, ns=ns, devices=[d])
                for n, d in zip(names(rs_name, len(devices)), devices)]

    def crash_loop(self, pod, code=79, restarts=3, container=0):
        """The container crash-loops: waiting in CrashLoopBackOff after exiting with `code`."""
        cur = self.srv.get(pod.path)
        cs = cur["status"]["containerStatuses"]
        cs[container]["restartCount"] = restarts
        cs[container]["ready"] = False
        cs[container]["lastState"] = {"terminated": {"exitCode": code, "reason": "Error",
                                                     "startedAt": "2025-01-01T00:00:00Z",
                                                     "finishedAt": "2025-01-01T00:01:00Z"}}
        cs[container]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
        self.srv.patch_status(pod.path, {"containerStatuses": cs})

    def running_ready(self, pod, container=0):
        cur = self.srv.get(pod.path)
        cs = cur["status"]["containerStatuses"]
        cs[container]["ready"] = True
        cs[container]["state"] = {"running": {"startedAt": "2025-01-01T00:02:00Z"}}
        self.srv.patch_status(pod.path, {"containerStatuses": cs})

    # ------------------------------------------------------------------ deviceIDPattern
    def test_device_id_pattern_matches_whole_ids(self):
        """#2: a condition message naming nvidia1 evicts the pod on nvidia1 only, not the pods
        on nvidia10 to nvidia15 (before: 7 evictions)."""
        self.cluster.node("gpu-node-1", gpus=16)
        pods = self.pods_on("gpu-node-1", ["nvidia%d" % i for i in range(16)])
        ctl = self.controller(base_policy(signals={"nodeConditions": [
            {"type": "GPUXIDErrors", "status": "True", "deviceIDPattern": "nvidia[0-9]+"}]}))
        self.cluster.set_node_condition("gpu-node-1", "GPUXIDErrors", "True", "XID 79 on nvidia1",
                                        "XIDCriticalError")
        ev = wait_evictions(self.srv, 1, ctl=ctl, status=201)
        self.assertEqual(ev[0]["name"], pods[1].name)
        hold_for(lambda: len(evictions(self.srv)) == 1, 1.5, "exactly one eviction", ctl=ctl)
        self.assertStopsCleanly(ctl)

    def test_device_id_pattern_without_id_means_the_node(self):
        """#5: a message in which the pattern finds no device ID counts for the whole node (for
        the listed resources): every GPU pod there is evicted (before: none)."""
        self.cluster.node("gpu-node-1", gpus=4)
        self.cluster.node("gpu-node-2", gpus=4)
        pods = self.pods_on("gpu-node-1", ["nvidia%d" % i for i in range(3)])
        other = self.pods_on("gpu-node-2", ["nvidia0"], rs_name="serve-5c8d7f9b4")
        ctl = self.controller(base_policy(signals={"nodeConditions": [
            {"type": "GPUXIDErrors", "status": "True", "resources": ["nvidia.com/gpu"],
             "deviceIDPattern": "nvidia[0-9]+"}]}))
        self.cluster.set_node_condition("gpu-node-1", "GPUXIDErrors", "True", "a GPU has fallen off the bus",
                                        "XIDCriticalError")
        wait_evictions(self.srv, 3, ctl=ctl, status=201)
        hold_for(lambda: len(evictions(self.srv)) == 3, 1.0, "exactly three evictions", ctl=ctl)
        self.assertEqual(sorted(e["name"] for e in evictions(self.srv)), sorted(p.name for p in pods))
        self.assertTrue(self.srv.exists(other[0].path))
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------------ 409
    def test_conflict_is_retried_while_the_pod_is_cached(self):
        """#4: the eviction subresource answers 409 for a conflicting PodDisruptionBudget update;
        the same pod, still there and still unhealthy, is retried with backoff and evicted
        (before: never tried again)."""
        self.cluster.node("gpu-node-1")
        pods = self.pods_on("gpu-node-1", ["GPU-aaaa0001", "GPU-aaaa0002"])
        self.srv.add_fault(r"/pods/%s/eviction$" % pods[0].name, method="POST", count=1, status=409,
                           message="Operation cannot be fulfilled on poddisruptionbudgets.policy \"serve\": "
                                   "the object has been modified; please apply your changes to the latest "
                                   "version and try again")
        ctl = self.controller(base_policy())
        self.cluster.set_device_health(pods[0], pods[0].devices[0])
        ok = wait_evictions(self.srv, 1, timeout=6.0, ctl=ctl, status=201)
        self.assertEqual(ok[0]["name"], pods[0].name)
        tries = evictions(self.srv, "ml", pods[0].name)
        self.assertEqual([e["status"] for e in tries], [409, 201])
        ctl.wait_metric("evictions_total", 1.0, result="conflict", signal="PodResourceHealth")
        ctl.wait_metric("evictions_total", 1.0, result="success", signal="PodResourceHealth")
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------------ exit codes
    def test_exit_code_signal_clears_when_running_and_ready(self):
        """#12: a container Running and Ready again before `for` ends is not evicted; when it
        crash-loops again the debounce starts over and then evicts it (before: evicted at +for
        although it had recovered)."""
        self.cluster.node("gpu-node-1")
        pod = self.pods_on("gpu-node-1", ["GPU-bbbb0001"])[0]
        ctl = self.controller(base_policy(signals={"exitCodes": {"enabled": True, "codes": [79],
                                                                  "minRestarts": 3, "for": "2s"}}))
        self.crash_loop(pod, restarts=3)
        ctl.wait_metric("pods_bound_to_unhealthy_devices", 1.0)
        self.running_ready(pod)
        ctl.wait_metric("pods_bound_to_unhealthy_devices", 0.0)
        hold_for(lambda: not evictions(self.srv), 3.0, "no eviction of a recovered container", ctl=ctl)
        self.crash_loop(pod, restarts=4)
        ev = wait_evictions(self.srv, 1, timeout=6.0, ctl=ctl, status=201)
        self.assertEqual(ev[0]["name"], pod.name)
        self.assertStopsCleanly(ctl)

    def test_exit_code_signal_covers_dra_claims(self):
        """#7: the same code-79 crash loop evicts a pod whose container holds a DRA claim
        (resources.claims), as it does a device-plugin pod (before: the DRA pod was left)."""
        self.cluster.node("gpu-node-1")
        rs = self.cluster.replicaset("dra-trainer-6f7d8c9b5", "ml", replicas=1)
        obj = self.cluster.pod_obj("dra-trainer-6f7d8c9b5-x2k4q", "gpu-node-1", gpus=0, rs=rs, ns="ml")
        obj["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}]
        obj["spec"]["containers"][0]["resources"]["claims"] = [{"name": "gpu"}]
        obj["status"]["resourceClaimStatuses"] = [{"name": "gpu",
                                                   "resourceClaimName": "dra-trainer-6f7d8c9b5-x2k4q-gpu-7k2mq"}]
        pod = Pod(self.srv.create(obj))
        ctl = self.controller(base_policy(signals={"exitCodes": {"enabled": True, "codes": [79],
                                                                  "minRestarts": 3}}))
        self.crash_loop(pod, restarts=3)
        ev = wait_evictions(self.srv, 1, ctl=ctl, status=201)
        self.assertEqual(ev[0]["name"], pod.name)
        ctl.wait_metric("evictions_total", 1.0, result="success", signal="ExitCode")
        self.assertStopsCleanly(ctl)


tearDownModule = stop_shared_servers

if __name__ == "__main__":
    unittest.main()
