"""The real control plane for the scenarios: test/cluster's launcher (etcd, kube-apiserver,
kube-scheduler, kube-controller-manager built from the upstream modules), a stand-in kubelet,
and the manifests' ServiceAccount as the controller's identity.

    rc = shared_cluster()                 # one per test run: RealCluster, an ApiServer
    rc.create({...}); rc.get(path)        # every harness.ApiServer helper works
    rc.requests(verb="create", subresource="eviction")   # from the API server's audit log
    kl = Kubelet(rc, "ns", devices_per_node=4).start()   # runs bound pods, finishes deletions

The launcher binary comes from DD_KUBE_CLUSTER, else test/cluster/build.sh (which builds it
once and caches it). RealCluster.requests() reads the audit log, so the scenarios of
test/integration (scenario.evictions, wait_evictions, ...) work unchanged against it.
"""

import atexit
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from test.integration import scenario as sc  # noqa: E402
from test.integration.scenario import ApiError, ApiServer, wait_for  # noqa: E402

BUILD = os.path.join(ROOT, "test", "cluster", "build.sh")
SA_NS, SA_NAME = "kube-system", "device-descheduler"
SA_USER = "system:serviceaccount:%s:%s" % (SA_NS, SA_NAME)
GPU = sc.GPU

_METHOD = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE",
           "deletecollection": "DELETE", "get": "GET", "list": "GET", "watch": "GET"}


def launcher():
    """Path of the kube-cluster binary (DD_KUBE_CLUSTER, else built or found by build.sh)."""
    b = os.environ.get("DD_KUBE_CLUSTER")
    if b:
        if not os.access(b, os.X_OK):
            raise AssertionError("DD_KUBE_CLUSTER=%s is not an executable file" % b)
        return b
    r = subprocess.run([BUILD], stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise AssertionError("test/cluster/build.sh failed (exit %d)" % r.returncode)
    return r.stdout.strip().splitlines()[-1]


class RealCluster(ApiServer):
    """A running kube-cluster. Attributes as harness.ApiServer: url, dir, admin_token, ca_file,
    kubeconfig_admin; kubeconfig is the manifests' ServiceAccount (after install_manifests)."""

    def start(self, binary=None, args=(), timeout=300):
        binary = self.binary = binary or launcher()
        self.tmp = tempfile.mkdtemp(prefix="dd-realcluster-")
        self.log_path = os.path.join(self.tmp, "kube-cluster.log")
        self._log = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([binary, "up"] + list(args), stdout=subprocess.PIPE,
                                     stderr=self._log, stdin=subprocess.DEVNULL)
        line = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(b"READY ") or not line:
                break
        if not line.startswith(b"READY "):
            self.stop()
            raise RuntimeError("kube-cluster did not start:\n" + open(self.log_path, errors="replace").read()[-3000:])
        self.start_seconds = time.monotonic() - t0
        f = dict(kv.split("=", 1) for kv in line.decode().split()[1:])
        self.url, self.dir = f["url"], f["dir"]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.plain = False
        with open(os.path.join(self.dir, "admin-token")) as fh:
            self.admin_token = self.token = fh.read().strip()
        self.ca_file = os.path.join(self.dir, "pki", "ca.crt")
        self.kubeconfig_admin = self.kubeconfig = os.path.join(self.dir, "kubeconfig-admin")
        self.kubeconfig_cert = os.path.join(self.dir, "kubeconfig-cert")
        self._ctx = ssl.create_default_context(cafile=self.ca_file)
        self._audit_off = 0
        self._audit = []
        self._audit_lock = threading.Lock()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
        if getattr(self, "tmp", None) and not os.environ.get("DD_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # Kinds the test API server does not serve (harness.path_for knows only those it does).
    EXTRA = {("resource.k8s.io/v1", "DeviceClass"): ("deviceclasses", False),
             ("resource.k8s.io/v1", "ResourceClaimTemplate"): ("resourceclaimtemplates", True),
             ("resource.k8s.io/v1", "DeviceTaintRule"): ("devicetaintrules", False)}

    def _path(self, obj, collection=False, subresource=None):
        key = (obj.get("apiVersion"), obj.get("kind"))
        md = obj.get("metadata", {})
        if key not in self.EXTRA:
            if collection:
                return sc.path_for(kind=obj["kind"], api_version=obj.get("apiVersion"), namespace=md.get("namespace"))
            return sc.path_for(obj, subresource=subresource)
        plural, namespaced = self.EXTRA[key]
        p = "/apis/" + key[0]
        if namespaced:
            p += "/namespaces/" + (md.get("namespace") or "default")
        p += "/" + plural
        if not collection:
            p += "/" + md["name"] + ("/" + subresource if subresource else "")
        return p

    def create(self, obj, token="admin"):
        return self.request("POST", self._path(obj, collection=True), obj, token=token)

    def update(self, obj, subresource=None, token="admin"):
        return self.request("PUT", self._path(obj, subresource=subresource), obj, token=token)

    def reset(self):
        """Nothing to reset: each test works in its own namespace and on its own nodes."""

    def log_file(self, component):
        return os.path.join(self.dir, "logs", component + ".log")

    # ------------------------------------------------------------------ the audit log
    def audit(self):
        """Every completed request so far (audit events at level Metadata), oldest first."""
        with self._audit_lock:
            with open(self.log_file("audit"), "rb") as f:
                f.seek(self._audit_off)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self._audit_off += end
            for ln in data[:end].splitlines():
                if ln.strip():
                    ev = json.loads(ln)
                    if ev.get("stage") in ("ResponseComplete", "Panic"):
                        self._audit.append(ev)
            return list(self._audit)

    def requests(self, **match):
        """The audit log in the test API server's request-log shape: seq, time (epoch s), user,
        verb, method, path, query, resource, subresource, namespace, name, status, reason,
        message, causes, userAgent; keyword arguments filter by equality."""
        out = []
        for i, ev in enumerate(self.audit()):
            ref = ev.get("objectRef") or {}
            st = ev.get("responseStatus") or {}
            u = urllib.parse.urlsplit(ev.get("requestURI", ""))
            e = {"seq": i, "time": _epoch(ev.get("requestReceivedTimestamp")),
                 "user": (ev.get("user") or {}).get("username"), "verb": ev.get("verb"),
                 "method": _METHOD.get(ev.get("verb"), ev.get("verb", "").upper()),
                 "path": u.path, "query": u.query, "resource": ref.get("resource", ""),
                 "subresource": ref.get("subresource", ""), "namespace": ref.get("namespace", ""),
                 "name": ref.get("name", ""), "status": st.get("code"), "reason": st.get("reason"),
                 "message": st.get("message"), "causes": ((st.get("details") or {}).get("causes") or []),
                 "userAgent": ev.get("userAgent", ""), "watch": ev.get("verb") == "watch"}
            if all(e.get(k) == v for k, v in match.items()):
                out.append(e)
        return out

    # ------------------------------------------------------------------ identities
    def token_request(self, ns, sa, seconds=3600):
        """A token of ServiceAccount ns/sa from the TokenRequest API (what a projected volume holds)."""
        r = self.request("POST", "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (ns, sa),
                         {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                          "spec": {"expirationSeconds": seconds}})
        return r["status"]["token"]

    def write_kubeconfig(self, path, token):
        with open(path, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n"
                    "    server: %s\n    certificate-authority: %s\nusers:\n- name: u\n  user:\n"
                    "    token: %s\ncontexts:\n- name: real\n  context: {cluster: real, user: u}\n"
                    "current-context: real\n" % (self.url, self.ca_file, token))
        os.chmod(path, 0o600)
        return path

    def install_manifests(self):
        """kubectl apply -k manifests/ with the Deployment at 0 replicas (no image, no kubelet:
        the tests run the controller themselves), then a kubeconfig with a TokenRequest token of
        the manifests' ServiceAccount; it becomes self.kubeconfig."""
        r = self.kubectl("kustomize", os.path.join(ROOT, "manifests"))
        rendered = r.stdout.replace("\n  replicas: 2\n", "\n  replicas: 0\n")
        if "\n  replicas: 0\n" not in rendered:
            raise AssertionError("the rendered Deployment has no `replicas: 2` to scale to 0")
        path = os.path.join(self.tmp, "manifests.yaml")
        with open(path, "w") as f:
            f.write(rendered)
        self.kubectl("apply", "-k", os.path.join(ROOT, "manifests"), "--dry-run=server")
        self.kubectl("apply", "-f", path)
        self.sa_token = self.token_request(SA_NS, SA_NAME)
        self.kubeconfig = self.write_kubeconfig(os.path.join(self.tmp, "kubeconfig-sa"), self.sa_token)
        self.manifests = path
        return self

    def kubectl(self, *args, kubeconfig=None, timeout=120, check=True, input=None):
        r = subprocess.run([shutil.which("kubectl") or "kubectl", "--kubeconfig", kubeconfig or self.kubeconfig_admin,
                            "--cache-dir", os.path.join(self.tmp, "kubectl-cache")] + list(args),
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError("kubectl %s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r


def _epoch(ts):
    if not ts:
        return None
    # 2026-12-03T07:49:21.123456Z
    main, _, frac = ts.rstrip("Z").partition(".")
    t = time.mktime(time.strptime(main, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return t + (float("0." + frac) if frac else 0.0)


# --------------------------------------------------------------------------- one per run

_SHARED = []


def shared_cluster():
    """The run's cluster, started (and the manifests installed) on first use."""
    if _SHARED and _SHARED[0].proc.poll() is None:
        return _SHARED[0]
    if _SHARED:
        raise AssertionError("kube-cluster exited (status %s):\n%s" % (
            _SHARED[0].proc.returncode, open(_SHARED[0].log_path, errors="replace").read()[-3000:]))
    rc = RealCluster().start()
    _SHARED.append(rc)
    print("\nkube-cluster: control plane ready in %.1f s at %s" % (rc.start_seconds, rc.url), file=sys.stderr)
    rc.install_manifests()
    return rc


def stop_shared_cluster():
    for rc in _SHARED:
        rc.stop()
    _SHARED.clear()


atexit.register(stop_shared_cluster)


# --------------------------------------------------------------------------- the kubelet

class Kubelet:
    """Plays the kubelet for the pods of one namespace: a pod the scheduler bound to one of
    `nodes` gets device IDs of its node (one per nvidia.com/gpu it requests) and a Running
    status with allocatedResourcesStatus, written through pods/status; a pod being deleted is
    removed with grace period 0 once it has a deletionTimestamp (the containers "stopped").
    DRA pods get no allocatedResourcesStatus: their devices are in their claims."""

    def __init__(self, rc, ns, nodes, interval=0.1):
        self.rc, self.ns, self.nodes = rc, ns, set(nodes)
        self.interval = interval
        self.devices = {}        # pod uid -> [device IDs]
        self.free = {}           # node -> [free device IDs]
        self.errors = []
        self._stop = threading.Event()
        self._thread = None

    def add_node(self, node, gpus):
        self.nodes.add(node)
        self.free[node] = [sc.gpu_id(node, i) for i in range(gpus)]

    def start(self):
        self._thread = threading.Thread(target=self._run, name="kubelet-" + self.ns, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        if self.errors:
            raise AssertionError("the stand-in kubelet failed: %s" % self.errors[:3])

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as e:  # keep going, report at stop()
                self.errors.append(repr(e))
            self._stop.wait(self.interval)

    def sync(self):
        pods = self.rc.list("/api/v1/namespaces/%s/pods" % self.ns)["items"]
        live = set()
        for p in pods:
            md, spec = p["metadata"], p["spec"]
            live.add(md["uid"])
            if spec.get("nodeName") not in self.nodes:
                continue
            if md.get("deletionTimestamp"):
                self._release(md["uid"], spec["nodeName"])
                try:
                    self.rc.delete("/api/v1/namespaces/%s/pods/%s" % (self.ns, md["name"]), grace_period=0,
                                   preconditions={"uid": md["uid"]})
                except ApiError as e:
                    if e.code not in (404, 409):
                        raise
                continue
            if p["status"].get("phase") != "Running":
                self._run_pod(p)
        for uid in list(self.devices):
            if uid not in live:
                self.devices.pop(uid)

    def _release(self, uid, node):
        for d in self.devices.pop(uid, []):
            self.free.setdefault(node, []).append(d)

    def _run_pod(self, p):
        md, spec = p["metadata"], p["spec"]
        node = spec["nodeName"]
        statuses = []
        devs = []
        for c in spec["containers"]:
            n = int((c.get("resources", {}).get("limits") or {}).get(GPU, 0))
            mine = []
            for _ in range(n):
                if not self.free.get(node):
                    raise AssertionError("node %s has no free GPU for %s" % (node, md["name"]))
                mine.append(self.free[node].pop(0))
            devs += mine
            cs = {"name": c["name"], "ready": True, "restartCount": 0, "started": True,
                  "image": c["image"], "imageID": "docker.io/library/busybox@sha256:" + "0" * 64,
                  "containerID": "containerd://" + md["uid"].replace("-", "") + c["name"],
                  "state": {"running": {"startedAt": _now()}}}
            if mine:
                cs["allocatedResourcesStatus"] = [{"name": GPU, "resources": [
                    {"resourceID": d, "health": "Healthy"} for d in mine]}]
            statuses.append(cs)
        self.devices[md["uid"]] = devs
        now = _now()
        status = {"phase": "Running", "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
                  "podIP": "10.1.0.%d" % (len(self.devices) % 250 + 2), "startTime": now,
                  "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                                 for t in ("PodReadyToStartContainers", "Initialized", "ContainersReady",
                                           "Ready", "PodScheduled")],
                  "containerStatuses": statuses}
        try:
            self.rc.patch_status("/api/v1/namespaces/%s/pods/%s" % (self.ns, md["name"]), status,
                                 type="strategic")
        except ApiError as e:
            self._release(md["uid"], node)
            if e.code not in (404, 409):
                raise

    def set_health(self, pod_name, device, health="Unhealthy", message="XID 79: GPU has fallen off the bus"):
        """Sets one device's health in the pod's allocatedResourcesStatus via pods/status."""
        path = "/api/v1/namespaces/%s/pods/%s" % (self.ns, pod_name)
        cur = self.rc.get(path)
        found = False
        for cs in cur["status"].get("containerStatuses") or []:
            for a in cs.get("allocatedResourcesStatus") or []:
                for r in a.get("resources") or []:
                    if r["resourceID"] == device:
                        r["health"] = health
                        if health != "Healthy" and message:
                            r["message"] = message
                        else:
                            r.pop("message", None)
                        found = True
        if not found:
            raise AssertionError("pod %s holds no device %s" % (pod_name, device))
        return self.rc.patch_status(path, {"containerStatuses": cur["status"]["containerStatuses"]})


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------- test base

class RealClusterTest(unittest.TestCase):
    """A namespace and label of its own for each test, nodes labelled with it (pods select
    them, so the scheduler never mixes tests), the stand-in kubelet, controllers that run with
    the manifests' ServiceAccount token, and after each test: no 403 and no 4xx other than the
    expected ones for that ServiceAccount during the test (a 5xx is the server's, e.g. "context
    canceled" for a request of a controller the test killed)."""

    allowed_sa_codes = (429, 404, 409)   # blocked eviction, gone pod, conflicts are normal answers

    @classmethod
    def setUpClass(cls):
        sc.require_binary()
        cls.rc = shared_cluster()

    def setUp(self):
        self.ns = ("t-" + self._testMethodName.replace("_", "-"))[:50].rstrip("-") + "-%d" % (int(time.time() * 1000) % 100000)
        self.rc.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}})
        self.addCleanup(self._delete_ns)
        self.workdir = tempfile.mkdtemp(prefix=self._testMethodName + "-", dir=self.rc.tmp)
        self.kubelet = Kubelet(self.rc, self.ns, [])
        self.nodes = []
        self.controllers = []
        self.audit_start = len(self.rc.audit())
        self.addCleanup(self._check_sa_answers)
        self.addCleanup(self._stop_all)
        # The service-account admission plugin needs the namespace's `default` ServiceAccount,
        # which kube-controller-manager's serviceaccount controller creates.
        wait_for(lambda: self._exists("/api/v1/namespaces/%s/serviceaccounts/default" % self.ns), 30,
                 "ServiceAccount %s/default" % self.ns)

    def _exists(self, path):
        return self.rc.exists(path)

    def _delete_ns(self):
        # The controller's fences outlive its pods: lift them, so that the next test starts clean
        # (a DeviceTaintRule left behind would count toward the next controller's quarantine cap).
        rules = "/apis/resource.k8s.io/v1/devicetaintrules"
        for r in self.rc.list(rules, labelSelector="app.kubernetes.io/managed-by=device-descheduler")["items"]:
            try:
                self.rc.delete(rules + "/" + r["metadata"]["name"])
            except ApiError:
                pass
        for n in self.nodes:
            try:
                self.rc.delete("/api/v1/nodes/" + n)
            except ApiError:
                pass
        try:
            self.rc.delete("/api/v1/namespaces/" + self.ns)
        except ApiError:
            pass

    def _stop_all(self):
        for c in self.controllers:
            c.kill()
        self.kubelet.stop()

    def _check_sa_answers(self):
        bad = [e for e in self.rc.requests(user=SA_USER) if e["seq"] >= self.audit_start
               and e["status"] and 400 <= e["status"] < 500 and e["status"] not in self.allowed_sa_codes]
        if bad and not getattr(self, "expect_sa_errors", False):
            self.fail("the controller's ServiceAccount got error answers: %s" % [
                (e["verb"], e["path"], e["status"], e["message"]) for e in bad[:5]])

    # ---- cluster objects
    def node(self, name=None, gpus=4):
        name = name or "%s-n%d" % (self.ns, len(self.nodes) + 1)
        obj = sc.node_obj(name, gpus=gpus, labels={"dd-test": self.ns})
        self.rc.create(obj)
        self.nodes.append(name)
        self.kubelet.add_node(name, gpus)
        return name

    def replicaset(self, name, replicas, gpus=1, claims=None, pod_spec=None):
        """A ReplicaSet of `replicas` pods, each requesting `gpus` nvidia.com/gpu (or DRA
        `claims`: pod-level resourceClaims, the container using each), pinned to this test's nodes."""
        c = {"name": "trainer", "image": "registry.example/ml/trainer:1.4",
             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}}
        if gpus and not claims:
            c["resources"]["requests"][GPU] = str(gpus)
            c["resources"]["limits"][GPU] = str(gpus)
        spec = {"containers": [c], "nodeSelector": {"dd-test": self.ns},
                "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
                "terminationGracePeriodSeconds": 30}
        if claims:
            spec["resourceClaims"] = claims
            c["resources"]["claims"] = [{"name": cl["name"]} for cl in claims]
        spec.update(pod_spec or {})
        obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": name, "namespace": self.ns, "labels": {"app": name}},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}
        return self.rc.create(obj)

    def pods(self, app=None, running=None):
        items = self.rc.list("/api/v1/namespaces/%s/pods" % self.ns,
                             labelSelector="app=%s" % app if app else None)["items"]
        if running is not None:
            items = [p for p in items if (p["status"].get("phase") == "Running"
                                          and not p["metadata"].get("deletionTimestamp")) == running]
        return items

    def wait_running(self, app, n, timeout=60, ctl=None):
        """Waits until exactly n pods of app run (scheduled by the real scheduler, started by
        the stand-in kubelet) and none is pending; returns them sorted by name."""
        def ok():
            ps = self.pods(app)
            run = [p for p in ps if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
            return sorted(run, key=lambda p: p["metadata"]["name"]) if len(run) == n == len(ps) else None
        return wait_for(ok, timeout, "%d running pods of %s" % (n, app), interval=0.1, ctl=ctl)

    def devices_of(self, pod):
        return [r["resourceID"] for cs in pod["status"].get("containerStatuses") or []
                for a in cs.get("allocatedResourcesStatus") or [] for r in a.get("resources") or []]

    # ---- the controller
    def controller(self, policy=None, args=(), start=True, wait_ready=True, kubeconfig=None, **kw):
        kw.setdefault("name", "controller-%d" % (len(self.controllers) + 1))
        if policy is None:
            policy = sc.base_policy(podFilters={"namespaces": {"include": [self.ns]}})
        c = sc.Controller(self.rc, self.workdir, policy, args=args,
                          kubeconfig=kubeconfig or self.rc.kubeconfig, **kw)
        self.controllers.append(c)
        if start:
            c.start()
            if wait_ready:
                c.wait_ready(timeout=30)
        return c

    def policy(self, **changes):
        return sc.base_policy(**sc.merge({"podFilters": {"namespaces": {"include": [self.ns]}}}, changes))

    def evictions(self, name=None, status=None):
        return [e for e in self.rc.requests(method="POST", subresource="eviction", namespace=self.ns)
                if (name is None or e["name"] == name) and (status is None or e["status"] == status)]

    def wait_evictions(self, n, timeout=20, ctl=None, name=None, status=None):
        return wait_for(lambda: (lambda ev: ev if len(ev) >= n else None)(self.evictions(name, status)),
                        timeout, "%d eviction(s)%s%s" % (n, " of " + name if name else "",
                                                         " answered %s" % status if status else ""),
                        interval=0.05, ctl=ctl)
