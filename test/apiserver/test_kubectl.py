"""Fidelity tests of the test API server, driven mostly by real kubectl.

Run: python3 -m unittest discover -s test/apiserver -p 'test_*.py'   (or run this file)
"""

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ApiError, ApiServer, WatchDropped, path_for

KUBECTL_DIR = os.path.dirname(os.path.realpath(shutil.which("kubectl") or "/usr/bin/kubectl"))


def node(name, gpus=4, ready=True):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"capacity": {"cpu": "8", "nvidia.com/gpu": str(gpus)},
                       "allocatable": {"cpu": "8", "nvidia.com/gpu": str(gpus)},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "nodeInfo": {"kubeletVersion": "v1.34.0"}}}


def pod(name, ns="default", node_name="n1", labels=None, running=True, owner=True):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "web"}},
         "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "busybox"}]},
         "status": {"phase": "Running" if running else "Pending",
                    "conditions": [{"type": "Ready", "status": "True" if running else "False"}],
                    "containerStatuses": [{"name": "c", "ready": running, "restartCount": 0, "image": "busybox",
                                           "imageID": "", "state": {"running": {}}}]}}
    if owner:
        p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-rs",
                                             "uid": "11111111-2222-3333-4444-555555555555", "controller": True}]
    return p


def pdb(name, ns="default", min_available=None, max_unavailable=None, labels=None):
    spec = {"selector": {"matchLabels": labels or {"app": "web"}}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": ns}, "spec": spec}


class KubectlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="apiserver-test-")
        cls.srv = ApiServer.start(cls.tmp, pod_termination_ms=100, bookmark_interval_ms=200)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.srv.reset()

    def k(self, *args, **kw):
        return self.srv.kubectl(*args, **kw)

    def write(self, name, obj):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            json.dump(obj, f)
        return p

    # ---------------------------------------------------------------- get
    def test_get_json(self):
        self.srv.create(node("n1"))
        self.srv.create(pod("p1"))
        out = json.loads(self.k("get", "nodes", "-o", "json").stdout)
        self.assertEqual(out["kind"], "List")
        self.assertEqual([i["metadata"]["name"] for i in out["items"]], ["n1"])
        self.assertEqual(out["items"][0]["kind"], "Node")
        self.assertEqual(out["items"][0]["status"]["allocatable"]["nvidia.com/gpu"], "4")
        out = json.loads(self.k("get", "pods", "-n", "default", "-o", "json").stdout)
        self.assertEqual([i["metadata"]["name"] for i in out["items"]], ["p1"])
        self.assertEqual(out["items"][0]["spec"]["nodeName"], "n1")
        self.assertEqual(out["items"][0]["status"]["phase"], "Running")
        one = json.loads(self.k("get", "pod", "p1", "-o", "json").stdout)
        self.assertEqual(one["metadata"]["uid"], self.srv.get(path_for(one))["metadata"]["uid"])

    def test_get_table(self):
        self.srv.create(node("n1"))
        self.srv.create(pod("p1"))
        lines = self.k("get", "nodes").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "STATUS", "ROLES", "AGE", "VERSION"])
        row = lines[1].split()
        self.assertEqual((row[0], row[1], row[2], row[4]), ("n1", "Ready", "<none>", "v1.34.0"))
        lines = self.k("get", "pods").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"])
        self.assertEqual(lines[1].split()[:4], ["p1", "1/1", "Running", "0"])
        self.assertEqual(len(lines), 2)
        self.assertEqual(self.k("get", "pods", "-o", "name").stdout, "pod/p1\n")

    def test_get_pods_watch(self):
        proc = subprocess.Popen([shutil.which("kubectl"), "--kubeconfig", self.srv.kubeconfig_admin,
                                 "--cache-dir", os.path.join(self.tmp, "kubectl-cache"), "get", "pods", "-w"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        try:
            deadline = time.time() + 15
            while time.time() < deadline:  # wait until kubectl has its watch open
                if self.srv.requests(verb="watch", resource="pods"):
                    break
                time.sleep(0.05)
            self.assertTrue(self.srv.requests(verb="watch", resource="pods"))
            self.srv.create(pod("watched"))
            got = threading.Event()

            def reader():
                for line in proc.stdout:
                    lines.append(line)
                    if line.startswith("watched"):
                        got.set()
                        return
            threading.Thread(target=reader, daemon=True).start()
            self.assertTrue(got.wait(10), "kubectl -w printed %r" % lines)
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(lines[-1].split()[:3], ["watched", "1/1", "Running"])

    # ---------------------------------------------------------------- create / apply / patch
    def test_create_and_apply(self):
        p = pod("made", owner=False)
        del p["status"]
        f = self.write("pod.json", p)
        self.assertEqual(self.k("create", "-f", f).stdout.strip(), "pod/made created")
        r = self.k("create", "-f", f, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('pods "made" already exists', r.stderr)
        b = self.write("pdb.json", pdb("budget", min_available=1))
        self.assertEqual(self.k("apply", "-f", b).stdout.strip(), "poddisruptionbudget.policy/budget created")
        got = self.srv.get(path_for(kind="PodDisruptionBudget", namespace="default", name="budget"))
        self.assertEqual(got["spec"]["minAvailable"], 1)
        self.assertEqual(got["status"]["expectedPods"], 1)
        self.assertEqual(got["status"]["currentHealthy"], 0)  # pod is Pending
        b = self.write("pdb.json", pdb("budget", max_unavailable="50%"))
        self.assertEqual(self.k("apply", "-f", b).stdout.strip(), "poddisruptionbudget.policy/budget configured")
        got = self.srv.get(path_for(kind="PodDisruptionBudget", namespace="default", name="budget"))
        self.assertNotIn("minAvailable", got["spec"])
        self.assertEqual(got["spec"]["maxUnavailable"], "50%")
        self.assertEqual(got["metadata"]["generation"], 2)
        # The PDB selector is patchStrategy "replace", so kubectl always sends it (and says
        # "configured", as against a real server); the server must see it as a no-op write.
        self.k("apply", "-f", b)
        again = self.srv.get(path_for(kind="PodDisruptionBudget", namespace="default", name="budget"))
        self.assertEqual(again["metadata"]["resourceVersion"], got["metadata"]["resourceVersion"])
        p["metadata"]["labels"] = {"app": "web", "tier": "x"}
        f = self.write("pod.json", p)
        self.assertEqual(self.k("apply", "-f", f).stdout.strip(), "pod/made configured")
        self.assertEqual(self.srv.get("/api/v1/namespaces/default/pods/made")["metadata"]["labels"], {"app": "web", "tier": "x"})
        self.assertEqual(self.k("apply", "-f", f).stdout.strip(), "pod/made unchanged")
        lines = self.k("get", "pdb").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"])
        self.assertEqual(lines[1].split()[:4], ["budget", "N/A", "50%", "0"])

    def test_patch_status_subresource(self):
        p = pod("gpu")  # the real server refuses allocatedResourcesStatus for a resource not requested
        p["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
        self.srv.create(p)
        status = {"status": {"containerStatuses": [{"name": "c", "ready": True, "restartCount": 3, "image": "busybox", "imageID": "",
                                                    "allocatedResourcesStatus": [{"name": "nvidia.com/gpu", "resources": [
                                                        {"resourceID": "GPU-0", "health": "Unhealthy", "message": "XID 79"}]}]}]}}
        r = self.k("patch", "pod", "gpu", "--subresource=status", "--type=merge", "-p", json.dumps(status))
        self.assertEqual(r.stdout.strip(), "pod/gpu patched")
        got = self.srv.get("/api/v1/namespaces/default/pods/gpu")
        ars = got["status"]["containerStatuses"][0]["allocatedResourcesStatus"]
        self.assertEqual(ars, [{"name": "nvidia.com/gpu", "resources": [{"resourceID": "GPU-0", "health": "Unhealthy", "message": "XID 79"}]}])
        self.assertEqual(got["status"]["phase"], "Running")
        out = self.k("get", "pod", "gpu", "-o", "jsonpath={.status.containerStatuses[0].allocatedResourcesStatus[0].resources[0].health}")
        self.assertEqual(out.stdout, "Unhealthy")
        # The main resource ignores status; the status subresource ignores everything else.
        r = self.k("patch", "pod", "gpu", "--type=merge", "-p", '{"metadata":{"labels":{"x":"y"}},"status":{"phase":"Failed"}}')
        got = self.srv.get("/api/v1/namespaces/default/pods/gpu")
        self.assertEqual((got["metadata"]["labels"]["x"], got["status"]["phase"]), ("y", "Running"))

    # ---------------------------------------------------------------- drain and PDB
    def test_drain_blocked_by_pdb_then_allowed(self):
        self.srv.create(node("n1"))
        self.srv.create(pod("w1"))
        self.srv.create(pdb("budget", min_available=1))
        self.srv.clear_requests()
        r = self.k("drain", "n1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=2s", check=False, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Cannot evict pod as it would violate the pod's disruption budget.", r.stderr)
        self.assertTrue(self.srv.exists("/api/v1/namespaces/default/pods/w1"))
        blocked = self.srv.requests(verb="create", subresource="eviction", status=429)
        self.assertGreaterEqual(len(blocked), 1)
        self.assertEqual(blocked[0]["path"], "/api/v1/namespaces/default/pods/w1/eviction")
        self.assertIs(self.srv.get("/api/v1/nodes/n1")["spec"]["unschedulable"], True)
        with self.assertRaises(ApiError) as cm:
            self.srv.evict("default", "w1")
        self.assertEqual(cm.exception.code, 429)
        self.assertEqual(cm.exception.status["details"]["causes"],
                         [{"reason": "DisruptionBudget", "message": "The disruption budget budget needs 1 healthy pods and has 1 currently"}])
        self.srv.patch(path_for(kind="PodDisruptionBudget", namespace="default", name="budget"), {"spec": {"minAvailable": 0}})
        self.assertEqual(self.srv.get(path_for(kind="PodDisruptionBudget", namespace="default", name="budget"))["status"]["disruptionsAllowed"], 1)
        r = self.k("drain", "n1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=20s", check=False, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("pod/w1 evicted", r.stdout)
        self.assertFalse(self.srv.exists("/api/v1/namespaces/default/pods/w1"))
        self.assertEqual(len(self.srv.requests(verb="create", subresource="eviction", status=201)), 1)

    def test_eviction_graceful_and_events(self):
        self.srv.create(pod("e1", labels={"app": "solo"}))
        rv = self.srv.list("/api/v1/namespaces/default/pods")["metadata"]["resourceVersion"]
        st = self.srv.evict("default", "e1")
        self.assertEqual((st["kind"], st["status"]), ("Status", "Success"))
        events = []
        for ev in self.srv.watch("/api/v1/namespaces/default/pods", resourceVersion=rv, timeoutSeconds="2"):
            events.append(ev)
            if ev["type"] == "DELETED":
                break
        self.assertEqual([e["type"] for e in events], ["MODIFIED", "MODIFIED", "DELETED"])
        cond = [c for c in events[0]["object"]["status"]["conditions"] if c["type"] == "DisruptionTarget"][0]
        self.assertEqual((cond["status"], cond["reason"]), ("True", "EvictionByEvictionAPI"))
        self.assertEqual(events[1]["object"]["metadata"]["deletionGracePeriodSeconds"], 30)
        with self.assertRaises(ApiError) as cm:
            self.srv.evict("default", "e1")
        self.assertEqual((cm.exception.code, cm.exception.status["message"]), (404, 'pods "e1" not found'))

    # ---------------------------------------------------------------- auth and kubeconfigs
    def test_kubeconfigs(self):
        self.srv.create(pod("k1"))
        for kc in (self.srv.kubeconfig, self.srv.kubeconfig_cert, self.srv.kubeconfig_admin):
            r = self.k("get", "pods", "-o", "name", kubeconfig=kc)
            self.assertEqual(r.stdout, "pod/k1\n", kc)
        cfg = json.loads(self.k("config", "view", "-o", "json", kubeconfig=self.srv.kubeconfig).stdout)
        self.assertEqual(cfg["current-context"], "test")
        self.assertEqual(cfg["clusters"][0]["cluster"]["server"], self.srv.url)
        # kubectl config stores the CA as a path (relative to the kubeconfig's directory), not as data.
        ca = cfg["clusters"][0]["cluster"]["certificate-authority"]
        self.assertNotIn("certificate-authority-data", cfg["clusters"][0]["cluster"])
        self.assertEqual(os.path.realpath(os.path.join(self.srv.dir, ca)), os.path.realpath(self.srv.ca_file))
        self.assertEqual(cfg["users"][0]["user"]["token"], "REDACTED")
        users = [e["user"] for e in self.srv.requests(verb="list", resource="pods")]
        self.assertEqual(users, ["system:serviceaccount:kube-system:device-descheduler", "client-cert-user", "admin"])

    def test_unauthorized(self):
        with self.assertRaises(ApiError) as cm:
            self.srv.request("GET", "/api/v1/pods", token="not-a-token")
        self.assertEqual(cm.exception.code, 401)
        self.assertEqual(cm.exception.status, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        with self.assertRaises(ApiError) as cm:
            self.srv.request("GET", "/api/v1/pods", token=None)
        self.assertEqual(cm.exception.code, 401)
        self.assertEqual([(e["user"], e["status"]) for e in self.srv.requests(path="/api/v1/pods")],
                         [("", 401), ("", 401)])
        r = self.k("get", "pods", "--token", "bad", kubeconfig=self.srv.kubeconfig, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("error: You must be logged in to the server", r.stderr)
        self.srv.set_tokens({"rotated": "someone"})
        self.assertEqual(self.srv.request("GET", "/api/v1/namespaces/default/pods", token="rotated")["items"], [])
        with self.assertRaises(ApiError):
            self.srv.request("GET", "/api/v1/pods", token="sa")
        ctx = ssl.create_default_context(cafile=self.srv.wrong_ca_file)
        with self.assertRaises(urllib.error.URLError):
            urllib.request.urlopen(self.srv.url + "/healthz", context=ctx, timeout=5)

    # ---------------------------------------------------------------- watch semantics
    def test_compact_cut_watches(self):
        """compact(cut_watches=...) makes every resourceVersion handed out so far too old and
        cuts the matching open watches, in one step (no bookmark can carry the new floor to a
        watch before it is cut)."""
        self.srv.create(pod("cw1"))
        cur = self.srv.list("/api/v1/pods")["metadata"]["resourceVersion"]
        events = self.srv.watch("/api/v1/pods", resourceVersion=cur, allowWatchBookmarks="true",
                                timeoutSeconds="30")
        # The first bookmark: the watch is open (and holds cur, the newest resourceVersion).
        self.assertEqual(next(events), {"type": "BOOKMARK", "object": {
            "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": cur}}})
        res = self.srv.compact(http_410=True, cut_watches="")
        with self.assertRaises(WatchDropped):
            next(events)
        self.assertEqual(res["dropped"], 1)
        self.assertEqual(int(res["compactedTo"]), int(cur) + 1)
        # cur was the newest resourceVersion any client could hold: it is now too old.
        with self.assertRaises(ApiError) as cm:
            list(self.srv.watch("/api/v1/pods", resourceVersion=cur))
        self.assertEqual((cm.exception.code, cm.exception.status["reason"]), (410, "Expired"))
        # A list starts over from the floor, and its resourceVersion can be watched.
        rv = self.srv.list("/api/v1/pods")["metadata"]["resourceVersion"]
        self.assertEqual(rv, res["compactedTo"])
        events = list(self.srv.watch("/api/v1/pods", resourceVersion=rv, timeoutSeconds="1"))
        self.assertEqual(events, [])

    def test_watch_410_after_compaction(self):
        self.srv.create(pod("c1"))
        old = self.srv.list("/api/v1/pods")["metadata"]["resourceVersion"]
        self.srv.patch("/api/v1/namespaces/default/pods/c1", {"metadata": {"labels": {"v": "2"}}})
        cur = self.srv.list("/api/v1/pods")["metadata"]["resourceVersion"]
        # Before compaction the watch replays the change.
        ev = next(self.srv.watch("/api/v1/pods", resourceVersion=old, timeoutSeconds="1"))
        self.assertEqual((ev["type"], ev["object"]["metadata"]["resourceVersion"]), ("MODIFIED", cur))
        self.srv.compact()
        events = list(self.srv.watch("/api/v1/pods", resourceVersion=old, timeoutSeconds="5"))
        self.assertEqual(events, [{"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: %s (%s)" % (old, cur), "reason": "Expired", "code": 410}}])
        self.srv.compact(http_410=True)
        with self.assertRaises(ApiError) as cm:
            list(self.srv.watch("/api/v1/pods", resourceVersion=old))
        self.assertEqual((cm.exception.code, cm.exception.status["reason"]), (410, "Expired"))
        # A watch from the current RV is fine, and bookmarks carry only the resourceVersion.
        events = list(self.srv.watch("/api/v1/pods", resourceVersion=cur, allowWatchBookmarks="true", timeoutSeconds="1"))
        self.assertGreaterEqual(len(events), 1)
        self.assertEqual(events[0], {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": cur}}})

    def test_watch_selector_and_initial_events(self):
        self.srv.create(pod("a", labels={"app": "x"}))
        self.srv.create(pod("b", labels={"app": "y"}))
        it = self.srv.watch("/api/v1/namespaces/default/pods", resourceVersion="0", labelSelector="app in (x)", timeoutSeconds="2")
        ev = next(it)
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "a"))
        self.srv.patch("/api/v1/namespaces/default/pods/a", {"metadata": {"labels": {"app": "z"}}})
        ev = next(it)
        self.assertEqual((ev["type"], ev["object"]["metadata"]["labels"]), ("DELETED", {"app": "z"}))
        it.close()

    # ---------------------------------------------------------------- pagination
    def test_continue_pagination_exactly_once(self):
        items = [pod("p%04d" % i, ns="ns%d" % (i % 3)) for i in range(250)]
        t0 = time.time()
        self.assertEqual(self.srv.create_objects(items)["count"], 250)
        self.assertLess(time.time() - t0, 2)
        first = self.srv.list("/api/v1/pods", limit=100)
        self.assertEqual(len(first["items"]), 100)
        self.assertEqual(first["metadata"]["remainingItemCount"], 150)
        names = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in first["items"]]
        # Changes between pages must not show up: the list is a snapshot at its resourceVersion.
        self.srv.delete("/api/v1/namespaces/ns2/pods/p0248", grace_period=0)
        self.srv.create(pod("zz-new", ns="ns2"))
        cont = first["metadata"]["continue"]
        pages = 1
        while cont:
            page = self.srv.list("/api/v1/pods", limit=100, continue_=cont)
            self.assertEqual(page["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"])
            names += [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in page["items"]]
            cont = page["metadata"].get("continue")
            pages += 1
        self.assertEqual(pages, 3)
        self.assertEqual(len(names), 250)
        self.assertEqual(names, sorted(names))
        self.assertEqual(sorted(n for _, n in names), ["p%04d" % i for i in range(250)])
        # Expired continue token.
        self.srv.compact()
        with self.assertRaises(ApiError) as cm:
            self.srv.list("/api/v1/pods", limit=100, continue_=first["metadata"]["continue"])
        self.assertEqual((cm.exception.code, cm.exception.status["reason"]), (410, "Expired"))
        # kubectl pages through with --chunk-size.
        out = self.k("get", "pods", "-A", "-o", "name", "--chunk-size=40").stdout.split()
        self.assertEqual(len(out), 250)

    def test_crud_semantics(self):
        p = self.srv.create(pod("c1"))
        self.assertEqual((p["metadata"]["generation"], p["apiVersion"], p["kind"]), (1, "v1", "Pod"))
        stale = dict(p)
        upd = self.srv.patch(path_for(p), [{"op": "add", "path": "/metadata/labels/k", "value": "v"},
                                           {"op": "test", "path": "/spec/nodeName", "value": "n1"},
                                           {"op": "copy", "from": "/metadata/labels/k", "path": "/metadata/labels/k2"},
                                           {"op": "remove", "path": "/metadata/labels/app"}], type="json")
        self.assertEqual(upd["metadata"]["labels"], {"k": "v", "k2": "v"})
        self.assertEqual(int(upd["metadata"]["resourceVersion"]), int(p["metadata"]["resourceVersion"]) + 1)
        with self.assertRaises(ApiError) as cm:
            self.srv.update(stale)
        self.assertEqual((cm.exception.code, cm.exception.status["message"]),
                         (409, 'Operation cannot be fulfilled on pods "c1": the object has been modified; '
                               'please apply your changes to the latest version and try again'))
        with self.assertRaises(ApiError) as cm:
            self.srv.create(pod("c1"))
        self.assertEqual((cm.exception.code, cm.exception.reason), (409, "AlreadyExists"))
        with self.assertRaises(ApiError) as cm:
            self.srv.create(pod("c1", ns="nope"))
        self.assertEqual((cm.exception.code, cm.exception.status["message"]), (404, 'namespaces "nope" not found'))
        with self.assertRaises(ApiError) as cm:
            self.srv.delete(path_for(p), preconditions={"uid": "other"})
        self.assertEqual(cm.exception.status["message"],
                         'Operation cannot be fulfilled on pods "c1": Precondition failed: UID in precondition: other, UID in object meta: %s'
                         % p["metadata"]["uid"])
        gen = self.srv.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "cm-", "namespace": "default"}})
        self.assertRegex(gen["metadata"]["name"], r"^cm-[a-z0-9]{5}$")
        # A bound pod with a grace period terminates first, then disappears.
        d = self.srv.delete(path_for(p))
        self.assertEqual(d["metadata"]["deletionGracePeriodSeconds"], 30)
        self.assertTrue(self.srv.exists(path_for(p)))
        time.sleep(0.4)
        self.assertFalse(self.srv.exists(path_for(p)))
        self.assertEqual(self.srv.list("/api/v1/pods", fieldSelector="spec.nodeName=n1")["items"], [])
        with self.assertRaises(ApiError) as cm:
            self.srv.list("/api/v1/pods", fieldSelector="spec.bogus=1")
        self.assertEqual((cm.exception.code, cm.exception.status["message"]), (400, "field label not supported: spec.bogus"))

    # ---------------------------------------------------------------- faults
    def test_fault_injection(self):
        self.srv.add_fault(method="GET", path_regex="/pods$", count=1, status=503, retry_after=2)
        with self.assertRaises(ApiError) as cm:
            self.srv.list("/api/v1/pods")
        self.assertEqual((cm.exception.code, cm.exception.headers.get("Retry-After")), (503, "2"))
        self.assertEqual(cm.exception.status["reason"], "ServiceUnavailable")
        self.assertEqual(self.srv.list("/api/v1/pods")["items"], [])
        log = self.srv.requests(resource="pods")
        self.assertEqual([(e["verb"], e["status"]) for e in log], [("list", 503), ("list", 200)])

    def test_drop_stall_restart(self):
        rv = self.srv.list("/api/v1/pods")["metadata"]["resourceVersion"]
        out = []

        def watch():
            try:
                for ev in self.srv.watch("/api/v1/pods", resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="20"):
                    out.append(ev["type"])
                out.append("end")
            except WatchDropped:
                out.append("dropped")
        t = threading.Thread(target=watch)
        t.start()
        self._wait_watches(1)
        self.srv.stall_watches(True)
        time.sleep(0.5)
        self.srv.create(pod("s1"))
        time.sleep(0.5)
        self.assertEqual(out, [])  # stalled: neither the event nor bookmarks arrive
        self.srv.stall_watches(False)
        deadline = time.time() + 5
        while "ADDED" not in out and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(out[0], "ADDED")
        self.assertEqual(self.srv.drop_watches(path_regex="/pods$")["dropped"], 1)
        t.join(5)
        self.assertEqual(out[-1], "dropped")
        t = threading.Thread(target=watch)
        out.clear()
        t.start()
        self._wait_watches(1)
        port = self.srv.port
        self.srv.restart(down_ms=200)
        t.join(5)
        self.assertEqual(out[-1], "dropped")
        self.assertEqual(self.srv.port, port)
        self.assertEqual(self.srv.get("/api/v1/namespaces/default/pods/s1")["metadata"]["name"], "s1")

    def _wait_watches(self, n):
        deadline = time.time() + 5
        while self.srv.state()["watches"] < n and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.srv.state()["watches"], n)

    # ---------------------------------------------------------------- versions
    def test_kubectl_versions(self):
        self.srv.create(pod("v"))
        for minor in range(27, 34):
            exe = os.path.join(KUBECTL_DIR, "kubectl.1.%d" % minor)
            if not os.path.exists(exe):
                continue
            p = pod("ver%d" % minor, owner=False)
            f = self.write("ver.json", p)
            r = self.k("apply", "-f", f, binary=exe)
            self.assertEqual(r.stdout.strip(), "pod/ver%d created" % minor, exe)
            r = self.k("get", "pods", "-o", "name", "-l", "app=web", binary=exe)
            self.assertIn("pod/ver%d\n" % minor, r.stdout)


class SimulateTest(unittest.TestCase):
    def test_replicaset_pods_get_healthy_gpus(self):
        tmp = tempfile.mkdtemp(prefix="apiserver-sim-")
        srv = ApiServer.start(tmp, simulate=True)
        try:
            n0 = node("gpu-0", gpus=4)
            n0["metadata"]["annotations"] = {"test.device-descheduler.io/unhealthy-devices": "GPU-gpu-0-0,GPU-gpu-0-1"}
            srv.create(n0)
            srv.create(node("gpu-1", gpus=2))
            srv.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "trainer", "namespace": "default"},
                        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "trainer"}},
                                 "template": {"metadata": {"labels": {"app": "trainer"}}, "spec": {"containers": [
                                     {"name": "t", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]}}}})
            deadline = time.time() + 5
            while time.time() < deadline:
                rs = srv.get("/apis/apps/v1/namespaces/default/replicasets/trainer")
                if rs.get("status", {}).get("readyReplicas") == 2:
                    break
                time.sleep(0.05)
            self.assertEqual(rs["status"]["readyReplicas"], 2)
            got = {}
            for p in srv.list("/api/v1/namespaces/default/pods")["items"]:
                self.assertTrue(p["metadata"]["name"].startswith("trainer-"))
                self.assertEqual(p["metadata"]["ownerReferences"][0]["uid"], rs["metadata"]["uid"])
                ids = [r["resourceID"] for r in p["status"]["containerStatuses"][0]["allocatedResourcesStatus"][0]["resources"]]
                got[p["spec"]["nodeName"]] = ids
            self.assertEqual(got, {"gpu-0": ["GPU-gpu-0-2", "GPU-gpu-0-3"], "gpu-1": ["GPU-gpu-1-0", "GPU-gpu-1-1"]})
        finally:
            srv.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class RbacTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="apiserver-rbac-")
        cls.srv = ApiServer.start(cls.tmp, enforce_rbac=True)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_rbac(self):
        srv = self.srv
        srv.create(pod("r1"))
        manifest = {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"},
             "rules": [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "reader"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
             "subjects": [{"kind": "ServiceAccount", "name": "device-descheduler", "namespace": "kube-system"}]}]}
        p = os.path.join(self.tmp, "rbac.json")
        with open(p, "w") as f:
            json.dump(manifest, f)
        srv.kubectl("apply", "-f", p)
        r = srv.kubectl("get", "pods", "-o", "name", kubeconfig=srv.kubeconfig)
        self.assertEqual(r.stdout, "pod/r1\n")
        with self.assertRaises(ApiError) as cm:
            srv.evict("default", "r1", token="sa")
        self.assertEqual(cm.exception.code, 403)
        self.assertEqual(cm.exception.status["message"],
                         'pods "r1" is forbidden: User "system:serviceaccount:kube-system:device-descheduler" '
                         'cannot create resource "pods/eviction" in API group "" in the namespace "default"')
        with self.assertRaises(ApiError) as cm:
            srv.list("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", token="sa")
        self.assertEqual(cm.exception.status["message"],
                         'leases.coordination.k8s.io is forbidden: User "system:serviceaccount:kube-system:device-descheduler" '
                         'cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system"')
        sa = "system:serviceaccount:kube-system:device-descheduler"
        r = srv.kubectl("auth", "can-i", "create", "pods", "--subresource=eviction", "-n", "default", "--as", sa, check=False)
        self.assertEqual((r.returncode, r.stdout.strip()), (1, "no"))
        srv.kubectl("apply", "-f", self._write("evict.json", {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "evict", "namespace": "default"},
             "rules": [{"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "evict", "namespace": "default"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "evict"},
             "subjects": [{"kind": "ServiceAccount", "name": "device-descheduler", "namespace": "kube-system"}]}]}))
        r = srv.kubectl("auth", "can-i", "create", "pods", "--subresource=eviction", "-n", "default", "--as", sa, check=False)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "yes"))
        r = srv.kubectl("auth", "can-i", "create", "pods", "--subresource=eviction", "-n", "kube-system", "--as", sa, check=False)
        self.assertEqual(r.stdout.strip(), "no")
        self.assertEqual(srv.evict("default", "r1", token="sa")["status"], "Success")
        r = srv.kubectl("auth", "whoami", "-o", "json", kubeconfig=srv.kubeconfig)
        self.assertEqual(json.loads(r.stdout)["status"]["userInfo"]["username"], sa)

    def _write(self, name, obj):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            json.dump(obj, f)
        return p


if __name__ == "__main__":
    unittest.main()
