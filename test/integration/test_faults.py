"""The fault matrix: the whole controller process against injected API-server faults.

For every fault the same four invariants are checked (FaultTest.assertInvariants):
  - no crash: the process is alive (or exits 0 when it is asked to stop);
  - no lost eviction: the pod on the bad device is evicted once the fault clears;
  - no duplicate eviction: exactly one successful eviction POST per pod (names are unique
    within a test, so per name is per UID);
  - no eviction of a healthy pod.

The faults of the test API server (/_test/...) are used where they exist; malformed watch
streams and a 100 MB watch line come from FakeApiServer below, a tiny plain-HTTP server in
this file. Run alone:

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_faults -v
"""

import http.server
import json
import os
import queue
import re
import signal
import socket
import socketserver
import threading
import time
import select
import unittest
import urllib.parse
import uuid

from test.integration.scenario import (ApiError, ScenarioTest, base_policy, evictions, hold_for, policy_yaml,
                                       pod_obj, gpu_id, node_obj, stop_shared_servers, wait_evictions,
                                       wait_for, write_atomic, Controller, Pod, Timeout, require_binary)

SA_USER = "system:serviceaccount:kube-system:device-descheduler"
NOT_WATCH = r"^(?!.*\bwatch=)"   # query_regex: a LIST, not a WATCH
SUFFIXES = ["x2k4q", "b7m9z", "q4t8n", "h3w6d", "p9c2v", "k5r7j"]


class QPod(Pod):
    """A Pod whose path is percent-encoded (for non-ASCII names)."""

    @property
    def path(self):
        return urllib.parse.quote(super().path)


def set_health(srv, pod, device, health="Unhealthy", message="XID 79"):
    """Like Cluster.set_device_health, without relying on the request log's name field."""
    st = srv.get(pod.path)["status"]
    for cs in st.get("containerStatuses") or []:
        for a in cs.get("allocatedResourcesStatus") or []:
            for r in a.get("resources") or []:
                if r["resourceID"] == device:
                    r["health"] = health
                    r["message"] = message
    srv.patch_status(pod.path, {"containerStatuses": st["containerStatuses"]})


def ok_evictions(srv, name=None):
    return [e for e in evictions(srv, name=name) if e["status"] == 201]


class FaultTest(ScenarioTest):
    """Helpers shared by the fault scenarios on the test API server."""

    def pods(self, n=3, ns="ml", node="gpu-node-1", rs_name="trainer-7d9f8c6b5"):
        self.cluster.node(node)
        rs = self.cluster.replicaset(rs_name, ns, replicas=n)
        return [self.cluster.pod("%s-%s" % (rs_name, SUFFIXES[i]), node, rs=rs, ns=ns) for i in range(n)]

    def in_flight_eviction(self, name, timeout=3.0, ctl=None):
        """Waits until an eviction POST of `name` has reached the server (logged, maybe unanswered)."""
        return wait_for(lambda: evictions(self.srv, name=name), timeout, "eviction POST of %s" % name, ctl=ctl)

    def assertInvariants(self, ctl, victims, pods, timeout=5.0, hold=0.6, alive=True):
        """Every victim evicted exactly once (201), nobody else evicted, controller alive."""
        for v in victims:
            wait_evictions(self.srv, 1, timeout=timeout, ctl=ctl, name=v.name, status=201)
        names = {v.name for v in victims}

        def fine():
            if alive:
                ctl.check_alive()
            ok = [e["name"] for e in evictions(self.srv) if e["status"] == 201]
            return sorted(ok) == sorted(names) and all(e["name"] in names for e in evictions(self.srv))
        if hold:
            hold_for(fine, hold, "exactly one successful eviction per victim, none of healthy pods", ctl=ctl)
        ok = [e["name"] for e in evictions(self.srv) if e["status"] == 201]
        self.assertEqual(sorted(ok), sorted(names), "successful eviction POSTs")
        wrong = [(e["name"], e["status"]) for e in evictions(self.srv) if e["name"] not in names]
        self.assertEqual(wrong, [], "evictions of healthy pods")
        for p in pods:
            if p.name not in names:
                self.assertTrue(self.srv.exists(p.path), "healthy pod %s is gone" % p.name)


class ServerFaults(FaultTest):

    # ------------------------------------------------------------ restart during an eviction
    def test_apiserver_restart_during_eviction(self):
        """The API server restarts (all connections cut, 600 ms down) while an eviction POST
        is in flight; the eviction is retried and succeeds exactly once."""
        pods = self.pods(3)
        ctl = self.controller(base_policy())
        victim = pods[0]
        self.srv.add_fault(path_regex="/eviction$", method="POST", count=1, delay_ms=1500)
        self.cluster.set_device_health(victim, victim.devices[0])
        self.in_flight_eviction(victim.name, ctl=ctl)
        time.sleep(0.2)
        self.srv.restart(down_ms=600)
        # The delayed request may or may not have been applied before its connection died:
        # either way the pod must end up evicted by exactly one successful POST (or gone
        # after the cut request, then the retry answers 404 and is not repeated).
        wait_for(lambda: not self.srv.exists(victim.path), 8.0, "the victim to be evicted", ctl=ctl)
        ok = ok_evictions(self.srv, victim.name)
        self.assertLessEqual(len(ok), 1, ok)
        time.sleep(0.6)
        ctl.check_alive()
        self.assertLessEqual(len(ok_evictions(self.srv, victim.name)), 1)
        self.assertEqual({e["name"] for e in evictions(self.srv)}, {victim.name})
        # The controller is still working after the restart: a second failure is handled.
        second = pods[1]
        self.cluster.set_device_health(second, second.devices[0])
        wait_evictions(self.srv, 1, timeout=5.0, ctl=ctl, name=second.name, status=201)
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------ dropped watches
    def test_watches_dropped_while_listing(self):
        """At start-up the pods LIST takes 1 s; meanwhile the device fails and every open watch
        is cut. The failure is not lost."""
        pods = self.pods(3)
        self.srv.add_fault(path_regex=r"^/api/v1/pods$", method="GET", query_regex=NOT_WATCH,
                           count=1, delay_ms=1000)
        ctl = self.controller(base_policy(), wait_ready=False)
        wait_for(lambda: self.srv.requests(resource="pods", verb="list"), 5.0, "the pods LIST", ctl=ctl)
        time.sleep(0.2)
        victim = pods[2]
        self.cluster.set_device_health(victim, victim.devices[0])
        self.srv.drop_watches()
        time.sleep(0.3)
        self.srv.drop_watches()
        ctl.wait_ready(timeout=8.0)
        self.srv.drop_watches()
        self.assertInvariants(ctl, [victim], pods, timeout=6.0)
        self.assertStopsCleanly(ctl)

    def test_watches_dropped_while_watching(self):
        """Every watch is cut right after the device fails (and again just before)."""
        pods = self.pods(3)
        ctl = self.controller(base_policy())
        victim = pods[1]
        self.srv.drop_watches()
        self.cluster.set_device_health(victim, victim.devices[0])
        self.srv.drop_watches()
        self.assertInvariants(ctl, [victim], pods, timeout=6.0)
        self.assertStopsCleanly(ctl)

    def test_watches_dropped_during_debounce(self):
        """podResourceHealth for: 2s; the watches are cut twice inside the window. The pod is
        evicted once, not before the window ends and not much after."""
        pods = self.pods(3)
        ctl = self.controller(base_policy(signals={"podResourceHealth": {"for": "2s"}}))
        victim = pods[0]
        patch = self.cluster.set_device_health(victim, victim.devices[0])
        time.sleep(0.5)
        self.srv.drop_watches()
        time.sleep(0.7)
        self.srv.drop_watches()
        self.assertInvariants(ctl, [victim], pods, timeout=6.0)
        lat = ok_evictions(self.srv, victim.name)[0]["time"] - patch["time"]
        # Not inside the window (how soon after it is for `make bench`, not for an assertion).
        self.assertGreaterEqual(lat, 1.9, "evicted %.2f s after the patch, inside the 2 s window" % lat)
        self.assertStopsCleanly(ctl)

    def test_410_during_debounce(self):
        """podResourceHealth for: 2s; inside the window history is compacted (HTTP 410 mode)
        and the watches are cut, so every reflector must relist. The debounce survives the
        relist: one eviction, after the window."""
        pods = self.pods(3)
        ctl = self.controller(base_policy(signals={"podResourceHealth": {"for": "2s"}}))
        victim = pods[1]
        patch = self.cluster.set_device_health(victim, victim.devices[0])
        time.sleep(0.6)
        self.srv.compact(http_410=True, cut_watches="")
        wait_for(lambda: len(self.srv.requests(resource="pods", verb="list")) >= 2, 4.0,
                 "a relist of pods after the 410", ctl=ctl)
        self.assertInvariants(ctl, [victim], pods, timeout=6.0)
        lat = ok_evictions(self.srv, victim.name)[0]["time"] - patch["time"]
        self.assertGreaterEqual(lat, 1.9, "evicted %.2f s after the patch, inside the 2 s window" % lat)
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------ stalled watch
    def test_stalled_watch_while_device_fails(self):
        """--watch-stall-timeout=2s: every watch goes silent (no events, no bookmarks) and the
        device fails meanwhile. The controller notices the stall, re-watches, and once the
        server speaks again the pod is evicted."""
        pods = self.pods(3)
        ctl = self.controller(base_policy(), args=["--watch-stall-timeout=2s"])
        self.srv.stall_watches(True)
        victim = pods[2]
        self.cluster.set_device_health(victim, victim.devices[0])
        ctl.wait_log(r"watch stalled", timeout=5.0)
        self.assertEqual(evictions(self.srv), [])
        self.srv.stall_watches(False)
        self.assertInvariants(ctl, [victim], pods, timeout=4.0)
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------ 429 / 503 bursts
    def _burst_on_eviction(self, status):
        pods = self.pods(3)
        ctl = self.controller(base_policy())
        self.srv.add_fault(path_regex="/eviction$", method="POST", count=2, status=status, retry_after=1)
        victim = pods[0]
        self.cluster.set_device_health(victim, victim.devices[0])
        self.assertInvariants(ctl, [victim], pods, timeout=6.0)
        ev = evictions(self.srv, name=victim.name)
        self.assertEqual([e["status"] for e in ev], [status, status, 201])
        gaps = [b["time"] - a["time"] for a, b in zip(ev, ev[1:])]
        self.assertTrue(all(g >= 0.9 for g in gaps), "Retry-After: 1 not honoured, gaps %s" % gaps)
        self.assertStopsCleanly(ctl)

    def test_429_burst_on_eviction(self):
        """Two 429s with Retry-After: 1 (no DisruptionBudget cause) on the eviction endpoint."""
        self._burst_on_eviction(429)

    def test_503_burst_on_eviction(self):
        """Two 503s with Retry-After: 1 on the eviction endpoint."""
        self._burst_on_eviction(503)

    def test_429_503_burst_on_lists(self):
        """The pods and nodes LISTs answer 429 then 503 (Retry-After: 1) at start-up: the
        controller retries, syncs, and evicts."""
        pods = self.pods(3)
        for rx, st in ((r"^/api/v1/pods$", 429), (r"^/api/v1/pods$", 503), (r"^/api/v1/nodes$", 503)):
            self.srv.add_fault(path_regex=rx, method="GET", query_regex=NOT_WATCH, count=1, status=st,
                               retry_after=1)
        ctl = self.controller(base_policy(), wait_ready=False)
        ctl.wait_ready(timeout=8.0)
        lists = [e["status"] for e in self.srv.requests(resource="pods", verb="list")]
        self.assertEqual(lists[:3], [429, 503, 200], lists)
        victim = pods[1]
        self.cluster.set_device_health(victim, victim.devices[0])
        self.assertInvariants(ctl, [victim], pods)
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------ head-of-line blocking
    def test_slow_relist_does_not_block_eviction(self):
        """The resourceslices relist (forced by compaction) takes 5 s; another pod's eviction
        reaches the server while that relist is still held there."""
        pods = self.pods(3)
        ctl = self.controller(base_policy())
        # The DRA caches start once discovery has answered (readiness does not wait for them):
        # the fault is for their relist, so wait for their first WATCH (not the refused WatchList).
        wait_for(lambda: [e for e in self.srv.requests(resource="resourceslices", verb="watch")
                          if "sendInitialEvents" not in e["query"]], 5.0, "the resourceslices watch", ctl=ctl)
        self.srv.add_fault(path_regex=r"/resourceslices$", method="GET", query_regex=NOT_WATCH, count=1,
                           delay_ms=5000)
        self.srv.compact(cut_watches="resourceslices")
        slow = wait_for(lambda: self.srv.requests(resource="resourceslices", verb="list")[1:], 3.0,
                        "the slow resourceslices relist", ctl=ctl)[0]
        victim = pods[0]
        self.cluster.set_device_health(victim, victim.devices[0])
        ev = wait_evictions(self.srv, 1, timeout=10.0, ctl=ctl, name=victim.name, status=201)[0]
        # Ordering, not speed: the eviction arrived before the held relist could be answered.
        self.assertLess(ev["time"], slow["time"] + 5.0, "the eviction waited for the slow relist")
        self.assertInvariants(ctl, [victim], pods)
        self.assertStopsCleanly(ctl)

    def test_slow_event_post_does_not_block_other_eviction(self):
        """One pod's Event POST takes 5 s; another pod's eviction reaches the server while that
        POST is still held there, and the slow one completes afterwards."""
        pods = self.pods(3)
        ctl = self.controller(base_policy())
        slow, fast = pods[0], pods[1]
        self.srv.add_fault(path_regex=r"/namespaces/ml/events$", method="POST", count=1, delay_ms=5000)
        self.cluster.set_device_health(slow, slow.devices[0])
        held = wait_for(lambda: self.srv.requests(method="POST", resource="events"), 2.0, "the slow Event POST",
                        ctl=ctl)[0]
        self.cluster.set_device_health(fast, fast.devices[0])
        ev = wait_evictions(self.srv, 1, timeout=10.0, ctl=ctl, name=fast.name, status=201)[0]
        # Ordering, not speed: the eviction arrived before the held POST could be answered.
        self.assertLess(ev["time"], held["time"] + 5.0, "the eviction waited for the slow Event POST")
        self.assertInvariants(ctl, [slow, fast], pods, timeout=7.0)
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------ re-check before the write
    def test_reload_excluding_namespace_while_event_in_flight(self):
        """The Event POST takes 3 s; meanwhile a reload excludes the pod's namespace. The
        eviction that would follow the Event is not sent (issue 14 #16): the controller checks
        the policy in force, the pod and the lease again immediately before every write."""
        pods = self.pods(3)
        ctl = self.controller(base_policy())
        victim = pods[0]
        self.srv.add_fault(path_regex=r"/namespaces/ml/events$", method="POST", count=1, delay_ms=3000)
        self.cluster.set_device_health(victim, victim.devices[0])
        wait_for(lambda: self.srv.requests(method="POST", resource="events"), 3.0, "the slow Event POST", ctl=ctl)
        write_atomic(ctl.policy_path, policy_yaml(base_policy(podFilters={"namespaces": {"exclude": ["ml"]}})))
        ctl.signal(signal.SIGHUP)
        ctl.wait_log(r"policy reloaded", timeout=3.0)
        ctl.wait_log(r"not evicting pod ml/%s \(uid [^)]+\) after all: " % re.escape(victim.name), timeout=8.0)
        self.assertEqual(evictions(self.srv), [])
        self.assertTrue(self.srv.exists(victim.path))
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------ token rotation
    def test_token_rotation_via_token_file(self):
        """The kubeconfig names a tokenFile. The server stops accepting the old token and the
        file gets the new one: watches and evictions go on."""
        tok_file = os.path.join(self.workdir, "token")
        with open(tok_file, "w") as f:
            f.write(self.srv.token + "\n")
        kc = os.path.join(self.workdir, "kubeconfig-tokenfile")
        with open(kc, "w") as f:
            f.write("apiVersion: v1\nkind: Config\ncurrent-context: test\n"
                    "clusters:\n- name: test\n  cluster:\n    server: %s\n    certificate-authority: %s\n"
                    "users:\n- name: sa\n  user:\n    tokenFile: %s\n"
                    "contexts:\n- name: test\n  context:\n    cluster: test\n    user: sa\n"
                    % (self.srv.url, self.srv.ca_file, tok_file))
        self.addCleanup(self.srv.set_tokens, {self.srv.token: SA_USER})
        pods = self.pods(3)
        ctl = self.controller(base_policy(), kubeconfig=kc)
        self.cluster.set_device_health(pods[0], pods[0].devices[0])
        wait_evictions(self.srv, 1, ctl=ctl, name=pods[0].name, status=201)
        # Rotate: the old token is refused from now on.
        self.srv.set_tokens({"rotated-token-2": SA_USER})
        write_atomic(tok_file, "rotated-token-2\n")
        self.srv.drop_watches()
        self.cluster.set_device_health(pods[1], pods[1].devices[0])
        self.assertInvariants(ctl, [pods[0], pods[1]], pods, timeout=6.0)
        self.assertEqual({e["user"] for e in ok_evictions(self.srv)}, {SA_USER})
        # Rotate once more, without cutting the watches.
        self.srv.set_tokens({"rotated-token-3": SA_USER})
        write_atomic(tok_file, "rotated-token-3\n")
        self.cluster.set_device_health(pods[2], pods[2].devices[0])
        self.assertInvariants(ctl, pods, pods, timeout=6.0)
        self.assertStopsCleanly(ctl)

    # ------------------------------------------------------------ SIGTERM with evictions in flight
    def test_sigterm_with_eviction_in_flight(self):
        """The eviction POST takes 1 s; SIGTERM arrives while it is in flight. The process
        waits for it, exits 0, and the eviction completed."""
        pods = self.pods(3)
        ctl = self.controller(base_policy())
        victim = pods[0]
        self.srv.add_fault(path_regex="/eviction$", method="POST", count=1, delay_ms=1000)
        self.cluster.set_device_health(victim, victim.devices[0])
        self.in_flight_eviction(victim.name, ctl=ctl)
        t0 = time.monotonic()
        ctl.signal(signal.SIGTERM)
        rc = ctl.proc.wait(10)
        waited = time.monotonic() - t0
        ctl.close()
        self.assertEqual(rc, 0, ctl.log_tail())
        self.assertGreater(waited, 0.5, "exited %.2f s after SIGTERM, before the eviction answered" % waited)
        self.assertEqual([e["status"] for e in evictions(self.srv)], [201])
        # Gone, or terminating (one GET: the pod may go away between two requests).
        try:
            self.assertTrue(self.srv.get(victim.path)["metadata"].get("deletionTimestamp"))
        except ApiError as e:
            self.assertEqual(e.code, 404)

    def test_sigterm_with_eviction_stuck_past_shutdown_timeout(self):
        """The eviction POST hangs for 8 s; SIGTERM with --shutdown-timeout=1s: the process
        gives up on it after about 1 s and still exits 0."""
        pods = self.pods(2)
        ctl = self.controller(base_policy(), args=["--shutdown-timeout=1s"])
        self.srv.add_fault(path_regex="/eviction$", method="POST", count=1, delay_ms=8000)
        self.cluster.set_device_health(pods[0], pods[0].devices[0])
        self.in_flight_eviction(pods[0].name, ctl=ctl)
        t0 = time.monotonic()
        ctl.signal(signal.SIGTERM)
        rc = ctl.proc.wait(10)
        waited = time.monotonic() - t0
        ctl.close()
        self.assertEqual(rc, 0, ctl.log_tail())
        # It gave up rather than waited: the server has not answered the hung POST yet.
        self.assertEqual([e["status"] for e in evictions(self.srv)], [0],
                         "exited %.2f s after SIGTERM, after the hung eviction was answered" % waited)
        self.assertGreater(waited, 0.8)
        self.assertRegex(ctl.log(), r"still in flight")

    # ------------------------------------------------------------ bad policy files
    def bad_policy_changes(self, path):
        return [("garbage", lambda: write_atomic(path, "\xff\xfe{{{ not: [yaml\n\t- ]]: :\n")),
                ("empty", lambda: write_atomic(path, "")),
                ("deleted", lambda: os.unlink(path)),
                ("directory", lambda: (os.unlink(path), os.mkdir(path)))]

    def wait_policy_failures(self, ctl, n, what):
        wait_for(lambda: ctl.metric("policy_reloads_total", result="failure") == float(n), 5.0,
                 "policy_reloads_total{result=failure} == %d after the %s policy file" % (n, what), ctl=ctl)
        errs = [ln for ln in ctl.log().splitlines() if "keeping the previous policy" in ln]
        self.assertEqual(len(errs), n, "one error per bad change (%s)" % what)
        self.assertIn(ctl.policy_path, errs[-1], "the error names the file (%s)" % what)
        self.assertEqual(ctl.probe("/readyz")[0], 200, what)

    def test_policy_replaced_by_garbage_empty_deleted_directory(self):
        """A valid policy file becomes garbage, empty, deleted or a directory (one controller
        each): the controller logs an error naming the file, counts one failure, keeps running,
        and keeps the old policy (it excludes namespace "keep", which a default policy would
        not): the victim is evicted, the pod in "keep" is not."""
        pods = self.pods(3)
        keep = self.pods(1, ns="keep", node="gpu-node-2", rs_name="keep-5c8d7f9b4")
        old = base_policy(podFilters={"namespaces": {"exclude": ["keep"]}})
        for what, _ in self.bad_policy_changes(""):
            with self.subTest(what):
                ctl = self.controller(old, name="controller-%s" % what)
                dict(self.bad_policy_changes(ctl.policy_path))[what]()
                self.wait_policy_failures(ctl, 1, what)
                self.assertIsNone(ctl.metric("policy_reloads_total", result="success"))
                if what != "directory":
                    self.assertStopsCleanly(ctl)
        self.cluster.set_device_health(keep[0], keep[0].devices[0])
        victim = pods[0]
        self.cluster.set_device_health(victim, victim.devices[0])
        self.assertInvariants(ctl, [victim], pods + keep, hold=1.0)
        self.assertStopsCleanly(ctl)

    def test_policy_nul_garbage_then_empty_both_reported(self):
        """Zero-filled file, then an empty file: two failed reloads, two errors."""
        ctl = self.controller(base_policy())
        write_atomic(ctl.policy_path, "\x00" * 4096)
        self.wait_policy_failures(ctl, 1, "zero-filled")
        write_atomic(ctl.policy_path, "")
        self.wait_policy_failures(ctl, 2, "empty")

    def test_policy_broken_fixed_broken_again_reported_twice(self):
        """Empty file, then the old policy back, then empty again: two failed reloads."""
        ctl = self.controller(base_policy())
        with open(ctl.policy_path) as f:
            good = f.read()
        write_atomic(ctl.policy_path, "")
        self.wait_policy_failures(ctl, 1, "empty")
        write_atomic(ctl.policy_path, good)
        time.sleep(0.6)
        write_atomic(ctl.policy_path, "")
        self.wait_policy_failures(ctl, 2, "empty again")

    # ------------------------------------------------------------ non-ASCII names and labels
    def test_non_ascii_names_and_labels(self):
        """Pods with non-ASCII labels and annotations beside a pod with a non-ASCII name; the
        ASCII pod is evicted, the controller keeps running, and the non-ASCII-named pod, when
        its device fails, is evicted through a correctly escaped path."""
        self.cluster.node("gpu-node-1")
        rs = self.cluster.replicaset("trainer", "ml", replicas=3)
        weird = [pod_obj("trainer-ünïcödé-тест-日本", "gpu-node-1", [gpu_id("gpu-node-1", 0)], ns="ml",
                         owner=rs, labels={"app": "trainer", "team": "données"}),
                 pod_obj("trainer-labels", "gpu-node-1", [gpu_id("gpu-node-1", 1)], ns="ml", owner=rs,
                         labels={"app": "trainer", "ключ": "значение", "emoji": "🚀"},
                         annotations={"note": "naïve ☃ \u0000 \ud7ff"})]
        weird = [QPod(self.srv.create(o)) for o in weird]
        plain = Pod(self.srv.create(pod_obj("trainer-plain", "gpu-node-1", [gpu_id("gpu-node-1", 2)], ns="ml",
                                                  owner=rs, labels={"app": "trainer"})))
        ctl = self.controller(base_policy())
        self.cluster.set_device_health(plain, plain.devices[0])
        self.assertInvariants(ctl, [plain], weird + [plain])
        set_health(self.srv, weird[1], weird[1].devices[0])
        self.assertInvariants(ctl, [plain, weird[1]], weird + [plain])
        set_health(self.srv, weird[0], weird[0].devices[0])
        self.assertInvariants(ctl, [plain, weird[1], weird[0]], weird + [plain])
        self.assertStopsCleanly(ctl)


# ================================================================= a fake API server
class FakeApiServer:
    """A tiny plain-HTTP API server for what the test API server cannot send: malformed
    watch lines and a 100 MB line. It serves LIST and WATCH of pods, nodes, resourceclaims
    and resourceslices (pods and one node are kept; claims and slices are empty), accepts
    Event and Eviction POSTs (an eviction deletes the pod), and replays well-formed pod
    events after the watch's resourceVersion. Raw lines go to the open pods watches."""

    LISTS = {"/api/v1/pods": ("v1", "PodList"), "/api/v1/nodes": ("v1", "NodeList"),
             "/apis/resource.k8s.io/v1/resourceclaims": ("resource.k8s.io/v1", "ResourceClaimList"),
             "/apis/resource.k8s.io/v1/resourceslices": ("resource.k8s.io/v1", "ResourceSliceList")}

    def __init__(self, workdir):
        self.lock = threading.Lock()
        self.rv = 100
        self.pods = {}       # name -> obj (namespace ml)
        self.nodes = {}
        self.history = []    # (rv, line) of pod events
        self.watchers = []   # (path, queue)
        self.log = []        # (time, method, path, query, status)
        self.evicted = []    # names, 201 answers
        self.written = {}    # id(queue) -> bytes of raw streams written
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                fake._get(self)

            def do_POST(self):
                fake._post(self)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.kubeconfig = os.path.join(workdir, "kubeconfig-fake")
        with open(self.kubeconfig, "w") as f:
            f.write("apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
                    "clusters:\n- name: fake\n  cluster:\n    server: %s\n"
                    "users:\n- name: sa\n  user:\n    token: fake-token\n"
                    "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: sa\n" % self.url)

    def stop(self):
        with self.lock:
            for _, q in self.watchers:
                q.put(None)
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- state
    def _next(self, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        return self.rv

    def add_node(self, obj):
        with self.lock:
            obj["metadata"]["uid"] = "node-uid-" + obj["metadata"]["name"]
            self._next(obj)
            self.nodes[obj["metadata"]["name"]] = obj

    def put_pod(self, obj, etype=None):
        """Creates or replaces a pod; sends ADDED/MODIFIED to the pods watches."""
        with self.lock:
            md = obj["metadata"]
            md.setdefault("uid", str(uuid.uuid4()))
            etype = etype or ("MODIFIED" if md["name"] in self.pods else "ADDED")
            rv = self._next(obj)
            self.pods[md["name"]] = obj
            self._event(rv, etype, obj)

    def _event(self, rv, etype, obj):
        line = json.dumps({"type": etype, "object": obj}, ensure_ascii=False).encode() + b"\n"
        self.history.append((rv, line))
        for path, q in self.watchers:
            if path == "/api/v1/pods":
                q.put(line)

    def set_health(self, name, health="Unhealthy"):
        with self.lock:
            obj = json.loads(json.dumps(self.pods[name]))
        for cs in obj["status"]["containerStatuses"]:
            for a in cs.get("allocatedResourcesStatus") or []:
                for r in a["resources"]:
                    r["health"] = health
                    r["message"] = "XID 79"
        self.put_pod(obj)

    def send_raw(self, item):
        """bytes (one or more lines) or a callable(write) to every open pods watch."""
        with self.lock:
            qs = [q for path, q in self.watchers if path == "/api/v1/pods"]
        for q in qs:
            q.put(item)
        return len(qs)

    def pod_watches(self):
        with self.lock:
            return len([1 for path, _ in self.watchers if path == "/api/v1/pods"])

    def watch_requests(self):
        return [e for e in self.log if e[2] == "/api/v1/pods" and "watch=" in e[3]]

    # ---- HTTP
    def _send(self, h, code, body):
        data = json.dumps(body).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _status(self, h, code, reason, msg):
        self._send(h, code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success" if code < 300 else "Failure",
                             "message": msg, "reason": reason, "code": code})

    def _get(self, h):
        path, _, query = h.path.partition("?")
        q = urllib.parse.parse_qs(query)
        with self.lock:
            self.log.append((time.monotonic(), "GET", path, query, 200))
        if path not in self.LISTS:
            return self._status(h, 404, "NotFound", "not found")
        if "sendInitialEvents" in q:  # as a server without WatchList
            return self._status(h, 422, "Invalid", "sendInitialEvents is forbidden for watch unless the WatchList "
                                "feature gate is enabled")
        if q.get("watch", [""])[0] not in ("1", "true"):
            with self.lock:
                items = list(self.pods.values()) if path == "/api/v1/pods" else \
                    list(self.nodes.values()) if path == "/api/v1/nodes" else []
                body = {"apiVersion": self.LISTS[path][0], "kind": self.LISTS[path][1],
                        "metadata": {"resourceVersion": str(self.rv)}, "items": items}
            return self._send(h, 200, body)
        since = int(q.get("resourceVersion", ["0"])[0] or 0)
        wq = queue.Queue()
        with self.lock:
            if path == "/api/v1/pods":
                for rv, line in self.history:
                    if rv > since:
                        wq.put(line)
            self.watchers.append((path, wq))
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def chunk(b):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            self.written[id(wq)] = self.written.get(id(wq), 0) + len(b)
        try:
            h.wfile.flush()
            while True:
                try:
                    item = wq.get(timeout=0.05)
                except queue.Empty:
                    # Notice a client that went away, so that lines go to live watches only.
                    r, _, _ = select.select([h.connection], [], [], 0)
                    if r and not h.connection.recv(1, socket.MSG_PEEK):
                        break
                    continue
                if item is None:
                    h.wfile.write(b"0\r\n\r\n")
                    break
                if callable(item):
                    item(chunk)
                else:
                    chunk(item)
                h.wfile.flush()
        except OSError:
            pass
        finally:
            with self.lock:
                self.watchers = [w for w in self.watchers if w[1] is not wq]
            h.close_connection = True

    def _post(self, h):
        path, _, query = h.path.partition("?")
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        m = re.match(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/eviction$", path)
        if m:
            name = urllib.parse.unquote(m.group(2))
            with self.lock:
                obj = self.pods.pop(name, None)
                uid = (json.loads(body or b"{}").get("deleteOptions") or {}).get("preconditions", {}).get("uid")
                if obj is None or (uid and uid != obj["metadata"]["uid"]):
                    if obj is not None:
                        self.pods[name] = obj
                    self.log.append((time.monotonic(), "POST", path, query, 404 if obj is None else 409))
                    code = 404 if obj is None else 409
                else:
                    self.log.append((time.monotonic(), "POST", path, query, 201))
                    self.evicted.append(name)
                    self._next(obj)
                    self._event(self.rv, "DELETED", obj)
                    code = 201
            if code == 201:
                return self._status(h, 201, "", "")
            return self._status(h, code, "NotFound" if code == 404 else "Conflict", "pods \"%s\" not found" % name)
        with self.lock:
            self.log.append((time.monotonic(), "POST", path, query, 201))
        if re.match(r"^/api/v1/namespaces/[^/]+/events$", path):
            h_body = json.loads(body or b"{}")
            return self._send(h, 201, h_body)
        return self._status(h, 404, "NotFound", "not found")


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


class FakeServerFaults(unittest.TestCase):
    """Malformed watch streams from FakeApiServer."""

    def setUp(self):
        require_binary()
        import tempfile
        self.workdir = tempfile.mkdtemp(prefix="dd-faults-fake-")
        self.fake = FakeApiServer(self.workdir)
        self.addCleanup(self.fake.stop)
        self.fake.add_node(node_obj("gpu-node-1"))
        rs = ("ReplicaSet", "trainer-7d9f8c6b5", "rs-uid-1")
        self.names = ["trainer-7d9f8c6b5-%s" % s for s in SUFFIXES[:3]]
        for i, n in enumerate(self.names):
            self.fake.put_pod(pod_obj(n, "gpu-node-1", [gpu_id("gpu-node-1", i)], ns="ml", owner=rs,
                                      labels={"app": "trainer-7d9f8c6b5"}))
        self.ctl = Controller(self.fake, self.workdir, policy_yaml(base_policy()), kubeconfig=self.fake.kubeconfig,
                              verbosity=2)
        self.addCleanup(self.ctl.kill)
        self.ctl.start()
        self.ctl.wait_ready()
        wait_for(self.fake.pod_watches, 3.0, "a pods watch", ctl=self.ctl)

    def assertEvictsAfterFault(self, victim, healthy):
        """The controller is alive and still evicts victim (exactly once), and nobody else."""
        self.ctl.check_alive()
        self.fake.set_health(victim)
        wait_for(lambda: victim in self.fake.evicted, 6.0, "eviction of %s" % victim, ctl=self.ctl)
        hold_for(lambda: self.fake.evicted.count(victim) == 1 and not set(healthy) & set(self.fake.evicted)
                 and self.ctl.proc.poll() is None, 0.5, "exactly one eviction of %s" % victim, ctl=self.ctl)

    def test_watch_line_of_100_mb(self):
        """A 100 MB watch line: the controller's peak RSS stays under 100 MB, it logs a bounded
        error, re-watches, and still evicts."""
        hwm0 = vm_hwm_kb(self.ctl.pid)
        watches0 = len(self.fake.watch_requests())
        total = 100 * 1024 * 1024

        def huge(chunk):
            chunk(b'{"type":"MODIFIED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"')
            block = b"a" * (1024 * 1024)
            sent = 0
            while sent < total:
                chunk(block)
                sent += len(block)
            chunk(b'","namespace":"ml"}}}\n')
        self.assertEqual(self.fake.send_raw(huge), 1)
        wait_for(lambda: len(self.fake.watch_requests()) > watches0, 20.0, "a re-watch after the huge line",
                 interval=0.1, ctl=self.ctl)
        hwm = vm_hwm_kb(self.ctl.pid)
        if os.environ.get("DD_VERBOSE"):
            print("VmHWM %d kB before, %d kB after; %d bytes written" % (hwm0, hwm, sum(self.fake.written.values())))
        self.assertLess(hwm, 100 * 1024, "VmHWM %d kB (was %d kB before the line)" % (hwm, hwm0))
        long_lines = [ln[:200] for ln in self.ctl.log().splitlines() if len(ln) > 4096]
        self.assertEqual(long_lines, [], "unbounded log lines")
        self.assertRegex(self.ctl.log(), r"(?i)(too long|too large|exceeds|longer than)")
        self.assertEvictsAfterFault(self.names[0], self.names[1:])
        self.assertEqual(self.ctl.stop(), 0)

    def test_decode_error_logged_on_one_line(self):
        """A malformed watch line is logged as one well-formed klog line."""
        self.fake.send_raw(b'{"type":"MODIFIED","object":{"metadata":{"name":"tr\n')
        self.ctl.wait_log(r"reflector pods: watch ended", timeout=3.0)
        time.sleep(0.1)
        bad = [ln for ln in self.ctl.log().splitlines() if ln and not re.match(r"^[IWEF]\d{4} ", ln)]
        self.assertEqual(bad, [], "log lines without a klog header")

    def sick_pod(self, **md):
        p = pod_obj("x", "gpu-node-1", [gpu_id("gpu-node-1", 6)], ns="ml",
                    owner=("ReplicaSet", "trainer-7d9f8c6b5", "rs-uid-1"), health={gpu_id("gpu-node-1", 6): ("Unhealthy", "XID 79")})
        p["metadata"] = dict({"labels": p["metadata"]["labels"], "ownerReferences": p["metadata"]["ownerReferences"],
                              "resourceVersion": "150"}, **md)
        return json.dumps({"type": "ADDED", "object": p}).encode() + b"\n"

    def test_nameless_pod_is_not_evicted(self):
        """Unhealthy pods whose name, namespace and uid are missing or of the wrong type are
        ignored: no request with an empty path segment."""
        for line, proof in zip((self.sick_pod(), self.sick_pod(name=["x"], namespace=7, uid=None)), self.names):
            wait_for(self.fake.pod_watches, 5.0, "a pods watch", ctl=self.ctl)
            self.fake.send_raw(line)
            # A well-formed failure on the same stream, after the line: once that pod is
            # evicted, the controller has read and acted on the line before it.
            self.fake.set_health(proof)
            wait_for(lambda: proof in self.fake.evicted, 6.0, "eviction of %s" % proof, ctl=self.ctl)
        self.ctl.check_alive()
        posts = [e[2] for e in self.fake.log if e[1] == "POST"]
        self.assertEqual([p for p in posts if "//" in p or "namespaces//" in p], [], posts)

    def test_malformed_watch_streams(self):
        """Malformed JSON, an unknown event type, objects missing fields, wrong types, non-ASCII
        names and labels, and an ERROR event that is not a Status: the controller keeps running
        and still evicts a pod whose GPU then fails."""
        base = pod_obj("x", "gpu-node-1", [gpu_id("gpu-node-1", 7)], ns="ml",
                       owner=("ReplicaSet", "trainer-7d9f8c6b5", "rs-uid-1"))
        wrong = json.loads(json.dumps(base))
        wrong["metadata"].update(name=12345, labels=["a"], resourceVersion=7, uid={"x": 1})
        wrong["spec"]["containers"] = "trainer"
        wrong["status"]["containerStatuses"][0]["allocatedResourcesStatus"] = [{"name": 5, "resources": "GPU"}]
        wrong2 = json.loads(json.dumps(base))
        wrong2["metadata"]["name"] = "wrong-types-2"
        wrong2["status"]["containerStatuses"] = {"trainer": True}
        wrong2["spec"]["nodeName"] = ["gpu-node-1"]
        cases = [
            ("malformed JSON", b'{"type":"MODIFIED","object":{"metadata":{"name":"tr\n'),
            ("truncated then garbage", b'{"type":"ADDED","obj\x00\xff\xfe}}}]]\n'),
            ("not an object", b'[1,2,3]\n"str"\nnull\n'),
            ("unknown event type", b'{"type":"RENAMED","object":' + json.dumps(base).encode() + b'}\n'),
            ("missing type", b'{"object":' + json.dumps(base).encode() + b'}\n'),
            ("missing object", b'{"type":"MODIFIED"}\n'),
            ("missing metadata", b'{"type":"ADDED","object":{"kind":"Pod","spec":{},"status":{}}}\n'),
            ("missing name and resourceVersion", b'{"type":"MODIFIED","object":{"kind":"Pod","metadata":{}}}\n'),
            ("deleted unknown pod", b'{"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"ghost",'
                                    b'"namespace":"ml","resourceVersion":"1"}}}\n'),
            ("wrong types", json.dumps({"type": "MODIFIED", "object": wrong}).encode() + b"\n"),
            ("wrong types 2", json.dumps({"type": "ADDED", "object": wrong2}).encode() + b"\n"),
            ("ERROR not a Status", b'{"type":"ERROR","object":{"kind":"Pod","code":"x"}}\n'),
            ("invalid UTF-8 and escapes", b'{"type":"MODIFIED","object":{"metadata":{"name":"\xc3\x28\\ud800\\u0000"}}}\n'),
            ("deep nesting", b'{"type":"MODIFIED","object":' + b'[' * 100000 + b']' * 100000 + b'}\n'),
            ("huge number", b'{"type":"MODIFIED","object":{"metadata":{"name":"n","resourceVersion":'
                            b'1' + b'0' * 400 + b'}}}\n'),
        ]
        ended = re.compile(r"reflector pods: watch ended")
        outcome = {}
        for what, line in cases:
            wait_for(self.fake.pod_watches, 8.0, "a pods watch before %r" % what, ctl=self.ctl)
            # A well-formed event first: a watch that delivered events resets the re-watch backoff.
            with self.fake.lock:
                filler = json.loads(json.dumps(self.fake.pods[self.names[2]]))
            filler["metadata"].setdefault("annotations", {})["case"] = what
            self.fake.put_pod(filler)
            time.sleep(0.05)
            n = len(ended.findall(self.ctl.log()))
            self.assertEqual(self.fake.send_raw(line), 1, what)
            time.sleep(0.3)
            self.ctl.check_alive()
            outcome[what] = "re-watch" if len(ended.findall(self.ctl.log())) > n else "skipped"
        if os.environ.get("DD_VERBOSE"):
            print(outcome)
        # Each bad line either was skipped or ended the watch (then re-watched): both are fine.
        # The watch errors are logged bounded (one line each, no unbounded echo of the input).
        self.assertEqual([ln[:100] for ln in self.ctl.log().splitlines() if len(ln) > 4096], [], outcome)
        # Non-ASCII names and labels as well-formed events (kept in the replay history).
        uni = json.loads(json.dumps(base))
        uni["metadata"].update(name="trainer-ünïcödé-тест-日本",
                               labels={"app": "trainer-7d9f8c6b5", "ключ": "значение", "emoji": "🚀"})
        self.fake.put_pod(uni)
        time.sleep(0.3)
        self.assertEvictsAfterFault(self.names[1], [self.names[0], self.names[2]])
        self.assertEvictsAfterFault(uni["metadata"]["name"], [self.names[0], self.names[2]])
        posts = [e[2] for e in self.fake.log if e[1] == "POST" and e[2].endswith("/eviction")]
        self.assertEqual(len(posts), 2, "eviction POSTs: %s" % posts)
        self.assertEqual(self.ctl.stop(), 0)


tearDownModule = stop_shared_servers

if __name__ == "__main__":
    unittest.main()
