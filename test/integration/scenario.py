"""Shared fixtures for the integration scenarios: the test API server, policy files, the
controller as a subprocess, realistic GPU pods and nodes, and polling helpers.

    srv = start_apiserver(tmpdir)              # harness.ApiServer (TLS, SA kubeconfig)
    c = Cluster(srv)
    c.node("gpu-node-1")
    rs = c.replicaset("trainer")
    p = c.pod("trainer-abc12", "gpu-node-1", rs=rs, gpus=1)
    ctl = Controller(srv, tmpdir, policy_yaml(base_policy())).start()
    ctl.wait_ready()
    t = c.set_device_health(p, p.devices[0], "Unhealthy", "XID 79")
    ev = wait_evictions(srv, 1, name=p.name)[0]
    assert ctl.stop() == 0

Every wait polls with a deadline and fails with the controller's log tail, so a failure
says what the controller was doing. Python 3.11 standard library only.
"""

import atexit
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APISERVER_DIR = os.path.join(ROOT, "test", "apiserver")
if APISERVER_DIR not in sys.path:
    sys.path.insert(0, APISERVER_DIR)

from harness import ApiError, ApiServer, path_for  # noqa: E402,F401

BIN = os.environ.get("DD_BIN") or os.path.join(ROOT, "bin", "device-descheduler")
GPU = "nvidia.com/gpu"
API_VERSION = "device-descheduler/v1alpha1"
KIND = "DeviceDeschedulerPolicy"


def require_binary():
    """Skips (unittest.SkipTest) when the controller has not been built and DD_BIN is not set."""
    if os.path.isfile(BIN) and os.access(BIN, os.X_OK):
        return
    if os.environ.get("DD_BIN"):
        raise AssertionError("DD_BIN=%s is not an executable file" % BIN)
    raise unittest.SkipTest("%s is not built (run make)" % BIN)


def free_port():
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_apiserver(tmpdir, **opts):
    """Starts the test API server (TLS) with its files in tmpdir/apiserver."""
    return ApiServer().start(os.path.join(tmpdir, "apiserver"), **opts)


# --------------------------------------------------------------------------- waiting

class Timeout(AssertionError):
    pass


def wait_for(pred, timeout, what, interval=0.02, ctl=None):
    """Polls pred() until it returns a truthy value (returned) or the deadline passes (Timeout,
    with the controller's log tail when ctl is given)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            msg = "timed out after %.1f s waiting for %s" % (timeout, what)
            for c in ctl if isinstance(ctl, (list, tuple)) else ([ctl] if ctl else []):
                msg += "\n--- %s log (tail) ---\n%s" % (c.name, c.log_tail())
            raise Timeout(msg)
        time.sleep(interval)


def hold_for(pred, duration, what, interval=0.05, ctl=None, show=None):
    """Asserts that pred() stays truthy for the whole duration (checked every interval);
    show() (optional) describes the current value in the failure message."""
    deadline = time.monotonic() + duration
    start = time.monotonic()
    while True:
        if not pred():
            msg = "%s stopped holding after %.2f s" % (what, time.monotonic() - start)
            if show:
                msg += " (now: %s)" % (show(),)
            if ctl:
                msg += "\n--- %s log (tail) ---\n%s" % (ctl.name, ctl.log_tail())
            raise AssertionError(msg)
        if time.monotonic() > deadline:
            return
        time.sleep(interval)


# --------------------------------------------------------------------------- request log

def evictions(srv, ns=None, name=None):
    """POST .../pods/NAME/eviction requests in the request log, oldest first."""
    out = []
    for e in srv.requests(method="POST", subresource="eviction"):
        if (ns is None or e["namespace"] == ns) and (name is None or e["name"] == name):
            out.append(e)
    return out


def pod_deletes(srv, ns=None, name=None):
    """DELETE .../pods/NAME requests in the request log."""
    return [e for e in srv.requests(method="DELETE", resource="pods", subresource="")
            if (ns is None or e["namespace"] == ns) and (name is None or e["name"] == name)]


def wait_evictions(srv, n, timeout=5.0, ctl=None, ns=None, name=None, status=None):
    """Waits until at least n eviction requests (answered with `status` if given) are logged;
    returns them (all matching, oldest first)."""
    def got():
        ev = [e for e in evictions(srv, ns, name) if e["status"] and (status is None or e["status"] == status)]
        return ev if len(ev) >= n else None
    return wait_for(got, timeout, "%d eviction request(s)%s%s" % (
        n, " of %s" % name if name else "", " answered %d" % status if status else ""), ctl=ctl)


def events_for(srv, ns, name):
    """core/v1 Events whose involvedObject is the pod ns/name, in creation order."""
    items = srv.list("/api/v1/namespaces/%s/events" % ns)["items"]
    return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]


# --------------------------------------------------------------------------- policies

def base_policy(**changes):
    """The policy most scenarios use: every default except no debounce and fast retries.
    Keyword arguments are merged in (nested dicts merge, other values replace)."""
    p = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "signals": {"podResourceHealth": {"enabled": True, "for": "0s"}},
        "eviction": {"retry": {"initialBackoff": "200ms", "maxBackoff": "1s"}},
    }
    return merge(p, changes)


def merge(a, b):
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def policy_yaml(doc, indent=0):
    """Block-style YAML for a dict of dicts, lists and scalars (strings double-quoted)."""
    lines = []
    _emit(doc, indent, lines)
    return "\n".join(lines) + "\n"


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))


def _emit(v, ind, lines, prefix=None):
    pad = " " * ind
    if isinstance(v, dict):
        first = True
        for k, x in v.items():
            lead = prefix if (prefix is not None and first) else pad
            first = False
            if isinstance(x, (dict, list)) and x:
                lines.append("%s%s:" % (lead, k))
                _emit(x, ind + 2, lines)
            elif isinstance(x, dict):
                lines.append("%s%s: {}" % (lead, k))
            elif isinstance(x, list):
                lines.append("%s%s: []" % (lead, k))
            else:
                lines.append("%s%s: %s" % (lead, k, _scalar(x)))
    elif isinstance(v, list):
        for x in v:
            if isinstance(x, dict) and x:
                _emit(x, ind + 2, lines, prefix=pad + "- ")
            else:
                lines.append("%s- %s" % (pad, _scalar(x)))
    else:
        lines.append(pad + _scalar(v))


def write_atomic(path, text):
    """Writes text to path through a temporary file and rename (what editors and tools do)."""
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class ConfigMapDir:
    """A directory laid out like a kubelet-mounted ConfigMap volume:
    DIR/..<timestamp>/policy.yaml, DIR/..data -> ..<timestamp>, DIR/policy.yaml -> ..data/policy.yaml.
    update() swaps the ..data symlink atomically, as the kubelet does."""

    def __init__(self, d, text, key="policy.yaml"):
        self.dir = d
        self.key = key
        self.gen = 0
        os.makedirs(d, exist_ok=True)
        self.current = self._payload(text)
        os.symlink(self.current, os.path.join(d, "..data"))
        os.symlink(os.path.join("..data", key), os.path.join(d, key))
        self.path = os.path.join(d, key)

    def _payload(self, text):
        self.gen += 1
        name = "..2025_01_01_00_00_%02d.%09d" % (self.gen, os.getpid())
        os.makedirs(os.path.join(self.dir, name))
        with open(os.path.join(self.dir, name, self.key), "w") as f:
            f.write(text)
        return name

    def update(self, text):
        new = self._payload(text)
        tmp = os.path.join(self.dir, "..data_tmp")
        os.symlink(new, tmp)
        os.rename(tmp, os.path.join(self.dir, "..data"))
        shutil.rmtree(os.path.join(self.dir, self.current))
        self.current = new


# --------------------------------------------------------------------------- objects

def gpu_id(node, index):
    """A stable NVIDIA-style device UUID for GPU `index` of `node`."""
    return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_DNS, "%s.gpu%d" % (node, index)))


def node_obj(name, gpus=8, conditions=(), annotations=None, labels=None, resource=GPU):
    conds = [{"type": "Ready", "status": "True", "reason": "KubeletReady",
              "message": "kubelet is posting ready status",
              "lastHeartbeatTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}]
    conds += [dict(c) for c in conditions]
    md = {"name": name, "labels": dict({"kubernetes.io/hostname": name,
                                         "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, **(labels or {}))}
    if annotations:
        md["annotations"] = dict(annotations)
    cap = {"cpu": "192", "memory": "2063727476Ki", "pods": "110", "ephemeral-storage": "3750771692Ki"}
    if gpus:
        cap[resource] = str(gpus)
    return {"apiVersion": "v1", "kind": "Node", "metadata": md,
            "spec": {"taints": [{"key": resource, "value": "present", "effect": "NoSchedule"}] if gpus else []},
            "status": {"capacity": dict(cap), "allocatable": dict(cap), "conditions": conds,
                       "nodeInfo": {"kubeletVersion": "v1.34.0", "containerRuntimeVersion": "containerd://2.0.0"}}}


def condition(ctype, status="True", reason="", message=""):
    return {"type": ctype, "status": status, "reason": reason or ctype, "message": message,
            "lastHeartbeatTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}


class Pod:
    """What a test needs to know about a pod it created."""

    def __init__(self, obj):
        self.obj = obj
        md = obj["metadata"]
        self.name = md["name"]
        self.ns = md["namespace"]
        self.uid = md.get("uid")
        self.node = obj["spec"].get("nodeName")
        self.devices = [r["resourceID"] for cs in obj["status"].get("containerStatuses") or []
                        for a in cs.get("allocatedResourcesStatus") or [] for r in a.get("resources") or []]

    @property
    def path(self):
        return "/api/v1/namespaces/%s/pods/%s" % (self.ns, self.name)

    def __repr__(self):
        return "Pod(%s/%s on %s %s)" % (self.ns, self.name, self.node, self.devices)


def pod_obj(name, node, devices, ns="default", owner=None, restart_policy="Always", labels=None,
            annotations=None, resource=GPU, health=None, finalizers=None, restart_count=0,
            last_exit_code=None, ready=True):
    """A Running pod whose container `trainer` holds `devices` of `resource` (requests = limits),
    with allocatedResourcesStatus (health: {device: (health, message)}; default Healthy) and a
    log-shipper sidecar without devices. owner: (kind, name, uid) with controller: true, or None
    for a bare pod."""
    health = health or {}
    md = {"name": name, "namespace": ns, "labels": dict(labels or {"app": name.rsplit("-", 1)[0]})}
    if annotations:
        md["annotations"] = dict(annotations)
    if finalizers:
        md["finalizers"] = list(finalizers)
    if owner:
        kind, oname, ouid = owner
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": kind, "name": oname, "uid": ouid,
                                  "controller": True, "blockOwnerDeletion": True}]
    n = str(len(devices))
    req = {"cpu": "8", "memory": "64Gi"}
    if devices:  # a pod without devices requests none (CPU-only)
        req[resource] = n
    trainer = {"name": "trainer", "image": "registry.example/ml/trainer:1.4",
               "resources": {"requests": dict(req), "limits": dict(req)}}
    shipper = {"name": "log-shipper", "image": "registry.example/tools/shipper:0.9",
               "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}
    res_status = []
    for d in devices:
        h, msg = health.get(d, ("Healthy", None))
        r = {"resourceID": d, "health": h}
        if msg:
            r["message"] = msg
        res_status.append(r)
    cs_trainer = {"name": "trainer", "ready": ready, "restartCount": restart_count, "started": ready,
                  "image": "registry.example/ml/trainer:1.4", "imageID": "", "containerID": "containerd://%s" % name,
                  "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}
    if devices:
        cs_trainer["allocatedResourcesStatus"] = [{"name": resource, "resources": res_status}]
    if last_exit_code is not None:
        cs_trainer["lastState"] = {"terminated": {"exitCode": last_exit_code, "reason": "Error",
                                                  "startedAt": "2025-01-01T00:00:00Z",
                                                  "finishedAt": "2025-01-01T00:01:00Z"}}
    cs_shipper = {"name": "log-shipper", "ready": True, "restartCount": 0, "started": True,
                  "image": "registry.example/tools/shipper:0.9", "imageID": "",
                  "containerID": "containerd://%s-shipper" % name,
                  "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}
    rstatus = "True" if ready else "False"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"nodeName": node, "restartPolicy": restart_policy, "priority": 0,
                     "terminationGracePeriodSeconds": 30, "containers": [trainer, shipper]},
            "status": {"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.1.0.1",
                       "conditions": [{"type": "PodScheduled", "status": "True"},
                                      {"type": "Initialized", "status": "True"},
                                      {"type": "ContainersReady", "status": rstatus},
                                      {"type": "Ready", "status": rstatus}],
                       "containerStatuses": [cs_trainer, cs_shipper]}}


class Cluster:
    """Builds a small GPU cluster in the test API server and changes device health."""

    def __init__(self, srv):
        self.srv = srv
        self.used = {}  # node -> next free GPU index

    def node(self, name, gpus=8, conditions=(), annotations=None):
        return self.srv.create(node_obj(name, gpus, conditions, annotations))

    def namespace(self, name):
        try:
            self.srv.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        except ApiError as e:
            if e.code != 409:
                raise

    def replicaset(self, name, ns="default", replicas=1, kind="ReplicaSet"):
        """A ReplicaSet (or DaemonSet with kind=) owned by a Deployment; returns (kind, name, uid)."""
        self.namespace(ns)
        if kind == "ReplicaSet":
            obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": name, "namespace": ns, "labels": {"app": name},
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                     "name": name.rsplit("-", 1)[0],
                                                     "uid": str(uuid.uuid4()), "controller": True,
                                                     "blockOwnerDeletion": True}]},
                   "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": {"app": name}},
                                         "spec": {"containers": [{"name": "trainer", "image": "x"}]}}}}
        else:
            obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns},
                   "spec": {"selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": {"app": name}},
                                         "spec": {"containers": [{"name": "agent", "image": "x"}]}}}}
        out = self.srv.create(obj)
        return (kind, name, out["metadata"]["uid"])

    def next_devices(self, node, n):
        i = self.used.get(node, 0)
        self.used[node] = i + n
        return [gpu_id(node, j) for j in range(i, i + n)]

    def pod_obj(self, name, node, gpus=1, rs=None, devices=None, **kw):
        devices = devices if devices is not None else self.next_devices(node, gpus)
        labels = kw.pop("labels", None) or {"app": rs[1] if rs else name}
        return pod_obj(name, node, devices, owner=rs, labels=labels, **kw)

    def pod(self, name, node, gpus=1, rs=None, devices=None, **kw):
        """Creates a pod (see pod_obj) holding `gpus` new devices of node (or `devices`)."""
        obj = self.pod_obj(name, node, gpus, rs, devices, **kw)
        self.namespace(obj["metadata"]["namespace"])
        return Pod(self.srv.create(obj))

    def bulk(self, objs):
        """Creates (or replaces) many objects in one request; returns their short forms."""
        return self.srv.create_objects(objs)["items"]

    def set_device_health(self, pod, device, health="Unhealthy", message="XID 79: GPU has fallen off the bus"):
        """Sets one device's health in the pod's allocatedResourcesStatus through the pods/status
        subresource (a merge patch of containerStatuses). Returns the request-log entry of the patch."""
        cur = self.srv.get(pod.path)
        st = cur["status"]
        found = False
        for cs in st.get("containerStatuses") or []:
            for a in cs.get("allocatedResourcesStatus") or []:
                for r in a.get("resources") or []:
                    if r["resourceID"] == device:
                        r["health"] = health
                        if message and health != "Healthy":
                            r["message"] = message
                        else:
                            r.pop("message", None)
                        found = True
        if not found:
            raise AssertionError("%s holds no device %s" % (pod, device))
        self.srv.patch_status(pod.path, {"containerStatuses": st["containerStatuses"]})
        mine = [e for e in self.srv.requests(method="PATCH", subresource="status", name=pod.name)
                if e["namespace"] == pod.ns]
        return mine[-1]

    def set_node_condition(self, node, ctype, status="True", message="", reason=""):
        """Adds or replaces a node condition through nodes/status."""
        cur = self.srv.get(path_for(kind="Node", name=node))
        conds = [c for c in cur["status"].get("conditions") or [] if c.get("type") != ctype]
        conds.append(condition(ctype, status, reason, message))
        self.srv.patch_status(path_for(kind="Node", name=node), {"conditions": conds})

    def pdb(self, name, ns, app, min_available):
        return self.srv.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                "metadata": {"name": name, "namespace": ns},
                                "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}}})

    def set_pdb_min_available(self, name, ns, min_available):
        p = "/apis/policy/v1/namespaces/%s/poddisruptionbudgets/%s" % (ns, name)
        return self.srv.patch(p, {"spec": {"minAvailable": min_available}})


# --------------------------------------------------------------------------- the controller

class Controller:
    """bin/device-descheduler as a subprocess with its log in a file and free ports for
    metrics and probes."""

    def __init__(self, srv, workdir, policy=None, policy_path=None, args=(), name="controller",
                 kubeconfig=None, verbosity=4, env=None, binary=None):
        if binary is None:
            require_binary()
        self.binary = binary or BIN
        self.srv = srv
        self.name = name
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        if policy_path is None:
            policy_path = os.path.join(workdir, "%s-policy.yaml" % name)
            with open(policy_path, "w") as f:
                f.write(policy if isinstance(policy, str) else policy_yaml(policy or base_policy()))
        self.policy_path = policy_path
        self.args = list(args)
        self.kubeconfig = kubeconfig or srv.kubeconfig
        self.verbosity = verbosity
        self.env = env
        self.proc = None
        self.metrics_port = self.probe_port = None
        self.log_path = os.path.join(workdir, "%s.log" % name)

    @property
    def pid(self):
        return self.proc.pid

    def command(self):
        return [self.binary, "--kubeconfig", self.kubeconfig, "--policy-config-file", self.policy_path,
                "-v", str(self.verbosity),
                "--metrics-bind-address", "127.0.0.1:%d" % self.metrics_port,
                "--health-probe-bind-address", "127.0.0.1:%d" % self.probe_port] + self.args

    def start(self):
        self.metrics_port = free_port()
        self.probe_port = free_port()
        while self.probe_port == self.metrics_port:
            self.probe_port = free_port()
        self._log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        env.update(self.env or {})
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        return self

    def run_to_exit(self, timeout=10):
        """Starts the controller and waits for it to exit by itself; returns the exit status."""
        self.start()
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    # ---- log
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_log(self, regex, timeout=5.0, flags=0, count=1):
        """Waits until regex matches `count` times in the log; returns the last match."""
        rx = re.compile(regex, flags)

        def found():
            self.check_alive()
            ms = list(rx.finditer(self.log()))
            return ms[count - 1] if len(ms) >= count else None
        return wait_for(found, timeout, "log line /%s/ in %s" % (regex, self.name), ctl=self)

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError("%s exited with status %s\n--- log (tail) ---\n%s"
                                 % (self.name, self.proc.returncode, self.log_tail()))

    # ---- HTTP endpoints
    def http_get(self, port, path, timeout=2.0):
        """(status, body text) of GET http://127.0.0.1:port/path; (None, error) when unreachable."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (OSError, ConnectionError) as e:
            return None, str(e)

    def probe(self, path):
        return self.http_get(self.probe_port, path)

    def wait_ready(self, timeout=10.0):
        """Waits until /readyz answers 200 (policy loaded, caches synced)."""
        def ready():
            self.check_alive()
            return self.probe("/readyz")[0] == 200
        wait_for(ready, timeout, "%s /readyz 200" % self.name, interval=0.02, ctl=self)
        return self

    def metrics_text(self):
        code, body = self.http_get(self.metrics_port, "/metrics")
        if code != 200:
            raise AssertionError("GET /metrics of %s: %s %s" % (self.name, code, body[:200]))
        return body

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def metric(self, name, **labels):
        """The value of one series (name without the prefix is accepted), or None if absent."""
        if not name.startswith("device_descheduler_"):
            name = "device_descheduler_" + name
        return self.metrics().get((name, frozenset(labels.items())))

    def wait_metric(self, name, value, timeout=5.0, **labels):
        wait_for(lambda: self.metric(name, **labels) == value, timeout,
                 "%s%s == %s (now %s)" % (name, labels, value, "see log"), ctl=self)

    # ---- lifecycle
    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.close()
                return None
        self.close()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self):
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None


_METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format -> {(name, frozenset(labels.items())): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        if not m:
            continue
        labels = frozenset((k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
                           for k, v in _LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


# --------------------------------------------------------------------------- test base

_SHARED = {}


def shared_server(**opts):
    """One test API server per set of options, shared by the test classes of a run (starting
    one costs seconds); reset it before use. stop_shared_servers() stops them all."""
    key = tuple(sorted(opts.items()))
    if key not in _SHARED or _SHARED[key][0].proc.poll() is not None:
        tmp = tempfile.mkdtemp(prefix="dd-itest-")
        try:
            _SHARED[key] = (start_apiserver(tmp, **opts), tmp)
        except BaseException:
            log = os.path.join(tmp, "apiserver", "server.log")
            tail = open(log, errors="replace").read()[-2000:] if os.path.exists(log) else ""
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError("the test API server did not start:\n" + tail) from None
    return _SHARED[key]


def stop_shared_servers():
    """Stops every shared server and removes its directory (unless DD_KEEP is set).
    Test modules use it as tearDownModule; atexit is the fallback."""
    for srv, tmp in list(_SHARED.values()):
        srv.stop()
        if not os.environ.get("DD_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    _SHARED.clear()


atexit.register(stop_shared_servers)


class ScenarioTest(unittest.TestCase):
    """A shared test API server (reset before every test), a temporary directory per test,
    and automatic cleanup of every controller a test starts. Test modules set
    tearDownModule = stop_shared_servers."""

    server_opts = {}

    @classmethod
    def setUpClass(cls):
        require_binary()
        cls.srv, cls.tmp = shared_server(**cls.server_opts)

    def setUp(self):
        self.srv.reset()
        self.cluster = Cluster(self.srv)
        self.workdir = tempfile.mkdtemp(prefix=self._testMethodName + "-", dir=self.tmp)
        self.controllers = []
        self.addCleanup(self._stop_all)

    def _stop_all(self):
        for c in self.controllers:
            c.kill()

    def controller(self, policy=None, args=(), start=True, wait_ready=True, **kw):
        kw.setdefault("name", "controller-%d" % (len(self.controllers) + 1))
        c = Controller(self.srv, self.workdir, policy, args=args, **kw)
        self.controllers.append(c)
        if start:
            c.start()
            if wait_ready:
                c.wait_ready()
        return c

    def assertStopsCleanly(self, ctl, timeout=10.0):
        rc = ctl.stop(timeout)
        self.assertEqual(rc, 0, "%s exit status after SIGTERM\n--- log (tail) ---\n%s" % (ctl.name, ctl.log_tail()))
