"""--simulate: a tiny ReplicaSet controller plus scheduler and kubelet, for demos.

For every apps/v1 ReplicaSet it keeps spec.replicas pods from the template, binds each new
pod to the node with the most free nvidia.com/gpu, marks it Running and Ready, and reports
the GPUs it got in containerStatuses[].allocatedResourcesStatus, skipping devices in use and
those listed in the node annotation test.device-descheduler.io/unhealthy-devices.

Like kube-scheduler, it places a pod only on a node whose NoSchedule and NoExecute taints the
pod tolerates and that is not cordoned (spec.unschedulable); PreferNoSchedule is only a
preference and is ignored. Pods it creates get the tolerations that the ExtendedResourceToleration
admission plugin adds (one per extended resource requested), as GPU clusters run it, so the
usual nvidia.com/gpu=present:NoSchedule taint of GPU nodes does not keep GPU pods off them.
With ignore_taints (admin API POST /_test/simulator {"ignoreTaints": true}) it ignores taints
and cordons: a scheduler that does not see the fence, for tests of the loop guard.
"""

import json
import random
import threading

from cluster import NODE, POD
from resources import BY_PATH
from store import ApiError, now_rfc3339

RS = BY_PATH[("apps", "v1", "replicasets")]
GPU = "nvidia.com/gpu"
UNHEALTHY_ANNOTATION = "test.device-descheduler.io/unhealthy-devices"


def _qty(v):
    try:
        return int(str(v))
    except ValueError:
        return 0


def toleration_matches(tol, taint):
    """Whether one toleration tolerates one taint (k8s.io/api/core/v1 Toleration.ToleratesTaint)."""
    if tol.get("effect") and tol.get("effect") != taint.get("effect"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return not tol.get("key") or tol.get("key") == taint.get("key")
    return tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or "")


def tolerates(spec, taints):
    """Whether a pod spec tolerates every NoSchedule and NoExecute taint of a node."""
    tols = spec.get("tolerations") or []
    for t in taints or []:
        if t.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(toleration_matches(tol, t) for tol in tols):
            return False
    return True


def extended_resource_tolerations(spec):
    """The tolerations the ExtendedResourceToleration admission plugin adds to a pod spec."""
    names = set()
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        r = c.get("resources") or {}
        for k in list((r.get("requests") or {}).keys()) + list((r.get("limits") or {}).keys()):
            if "/" in k and not k.startswith(("kubernetes.io/", "requests.")):
                names.add(k)
    have = spec.setdefault("tolerations", [])
    for n in sorted(names):
        t = {"key": n, "operator": "Exists", "effect": "NoSchedule"}
        if t not in have:
            have.append(t)
    return spec


def gpu_request(spec):
    """GPUs a pod spec asks for (requests, else limits, summed over containers)."""
    n = 0
    for c in spec.get("containers") or []:
        r = c.get("resources") or {}
        n += _qty((r.get("requests") or {}).get(GPU) or (r.get("limits") or {}).get(GPU) or 0)
    return n


class Simulator:
    def __init__(self, cluster):
        self.cluster = cluster
        self.store = cluster.store
        self.dirty = threading.Event()
        self.ignore_taints = False
        self.store.hooks.append(self._hook)

    def _hook(self, res, old, new):
        if res in (RS, POD, NODE):
            self.dirty.set()

    def start(self):
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            self.dirty.wait(1.0)
            self.dirty.clear()
            try:
                self.reconcile()
            except Exception:  # keep the demo running; the next change retries
                import traceback
                traceback.print_exc()

    # ------------------------------------------------------------------ scheduling
    def _node_state(self):
        """Per node that is Ready: (free GPU count, list of free device IDs, taints, cordoned)."""
        used, requested = {}, {}
        for p in self.store.items(POD):
            n = p.get("spec", {}).get("nodeName")
            if not n or p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                continue
            requested[n] = requested.get(n, 0) + gpu_request(p.get("spec", {}))
            for cs in p.get("status", {}).get("containerStatuses") or []:
                for ars in cs.get("allocatedResourcesStatus") or []:
                    if ars.get("name") == GPU:
                        for r in ars.get("resources") or []:
                            used.setdefault(n, set()).add(r.get("resourceID"))
        out = {}
        for node in self.store.items(NODE):
            name = node["metadata"]["name"]
            st = node.get("status", {})
            conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
            if conds.get("Ready") == "False":
                continue
            alloc = _qty((st.get("allocatable") or {}).get(GPU, 0))
            cap = max(alloc, _qty((st.get("capacity") or {}).get(GPU, 0)))
            bad = {x.strip() for x in (node["metadata"].get("annotations") or {}).get(UNHEALTHY_ANNOTATION, "").split(",") if x.strip()}
            devices = ["GPU-%s-%d" % (name, i) for i in range(cap)]
            free_devs = [d for d in devices if d not in bad and d not in used.get(name, set())]
            free = min(alloc - requested.get(name, 0), len(free_devs))
            out[name] = (free, free_devs, node.get("spec", {}).get("taints") or [],
                         bool(node.get("spec", {}).get("unschedulable")))
        return out

    def _fits(self, spec, node):
        """The scheduler's filters: taints the pod does not tolerate and cordons keep it off."""
        _, _, taints, cordoned = node
        if self.ignore_taints:
            return True
        return not cordoned and tolerates(spec, taints)

    def _place(self, spec, nodes):
        need = gpu_request(spec)
        best = None
        for name in sorted(nodes):
            free = nodes[name][0]
            if free >= need and self._fits(spec, nodes[name]) and (best is None or free > nodes[best][0]):
                best = name
        if best is None:
            return None, []
        free, devs, taints, cordoned = nodes[best]
        nodes[best] = (free - need, devs[need:], taints, cordoned)
        return best, devs[:need]

    def _running_status(self, spec, devs):
        now = now_rfc3339()
        css = []
        left = list(devs)
        for c in spec.get("containers") or []:
            cs = {"name": c.get("name"), "image": c.get("image", ""), "imageID": "", "ready": True, "started": True,
                  "restartCount": 0, "containerID": "containerd://%032x" % random.getrandbits(128),
                  "state": {"running": {"startedAt": now}}}
            r = c.get("resources") or {}
            n = _qty((r.get("requests") or {}).get(GPU) or (r.get("limits") or {}).get(GPU) or 0)
            if n:
                mine, left = left[:n], left[n:]
                cs["allocatedResourcesStatus"] = [{"name": GPU, "resources": [{"resourceID": d, "health": "Healthy"} for d in mine]}]
            css.append(cs)
        conds = [{"type": t, "status": "True", "lastTransitionTime": now, "lastProbeTime": None}
                 for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        return {"phase": "Running", "conditions": conds, "containerStatuses": css, "startTime": now,
                "podIP": "10.0.%d.%d" % (random.randint(0, 255), random.randint(1, 254)), "hostIP": "192.168.0.1",
                "qosClass": "BestEffort"}

    # ------------------------------------------------------------------ reconcile
    def reconcile(self):
        with self.store.lock:
            nodes = self._node_state()
            for rs in list(self.store.items(RS)):
                self._sync_rs(rs, nodes)

    def _sync_rs(self, rs, nodes):
        md = rs["metadata"]
        ns, uid = md["namespace"], md["uid"]
        owned = [p for p in self.store.items(POD, ns)
                 if any(r.get("uid") == uid and r.get("controller") for r in p["metadata"].get("ownerReferences") or [])]
        alive = [p for p in owned if not p["metadata"].get("deletionTimestamp")]
        want = rs.get("spec", {}).get("replicas", 1)
        tmpl = rs.get("spec", {}).get("template") or {}
        # Bind pods that are still waiting for a node.
        for p in alive:
            if not p.get("spec", {}).get("nodeName"):
                node, devs = self._place(p.get("spec", {}), nodes)
                if node:
                    new = json.loads(json.dumps(p))
                    new["spec"]["nodeName"] = node
                    new["status"] = self._running_status(new["spec"], devs)
                    self.store.put(POD, new, p)
        for _ in range(want - len(alive)):
            spec = extended_resource_tolerations(json.loads(json.dumps(tmpl.get("spec") or {})))
            node, devs = self._place(spec, nodes)
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"generateName": md["name"] + "-", "namespace": ns,
                                "labels": dict((tmpl.get("metadata") or {}).get("labels") or {}),
                                "annotations": dict((tmpl.get("metadata") or {}).get("annotations") or {}),
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": md["name"],
                                                     "uid": uid, "controller": True, "blockOwnerDeletion": True}]},
                   "spec": spec}
            if node:
                spec["nodeName"] = node
                pod["status"] = self._running_status(spec, devs)
            else:
                pod["status"] = {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": "0/%d nodes are available: insufficient %s." % (len(nodes), GPU)}]}
            try:
                self.cluster.create(POD, ns, pod)
            except ApiError:
                return
        if len(alive) > want:
            extra = sorted(alive, key=lambda p: (bool(p.get("spec", {}).get("nodeName")), p["metadata"]["name"]))
            for p in extra[:len(alive) - want]:
                self.cluster.delete(POD, ns, p["metadata"]["name"])
        alive = [p for p in self.store.items(POD, ns)
                 if any(r.get("uid") == uid and r.get("controller") for r in p["metadata"].get("ownerReferences") or [])
                 and not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in alive if p.get("status", {}).get("phase") == "Running")
        status = {"replicas": len(alive), "fullyLabeledReplicas": len(alive), "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": md.get("generation", 1)}
        cur = self.store.get(RS, ns, md["name"])
        if cur is not None and cur.get("status") != status:
            new = dict(cur)
            new["metadata"] = dict(cur["metadata"])
            new["status"] = status
            self.store.put(RS, new, cur)
