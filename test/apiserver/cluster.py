"""API semantics on top of the store: create/update/patch/delete with the real server's
checks and messages, graceful pod termination, finalizers, namespace and owner cleanup,
PodDisruptionBudget status, the Eviction subresource, and RBAC authorization.

Every public method takes the store lock itself; callers pass parsed JSON and get back the
stored object or an ApiError.
"""

import datetime
import json
import math
import threading

import labelsel as sel
import validation
from resources import BY_PATH, RESOURCES, resource_for_object
from store import ApiError, not_found, now_rfc3339

POD = BY_PATH[("", "v1", "pods")]
NODE = BY_PATH[("", "v1", "nodes")]
NAMESPACE = BY_PATH[("", "v1", "namespaces")]
PDB = BY_PATH[("policy", "v1", "poddisruptionbudgets")]
ROLE = BY_PATH[("rbac.authorization.k8s.io", "v1", "roles")]
ROLEBINDING = BY_PATH[("rbac.authorization.k8s.io", "v1", "rolebindings")]
CLUSTERROLE = BY_PATH[("rbac.authorization.k8s.io", "v1", "clusterroles")]
CLUSTERROLEBINDING = BY_PATH[("rbac.authorization.k8s.io", "v1", "clusterrolebindings")]
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# Kinds whose main resource ignores .status on update (they have a status subresource).
STATUS_SUB = {r.key for r in RESOURCES if "status" in r.subresources}


def conflict(res, name, why):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s' % (res.qualified, name, why),
                    {"name": name, "group": res.group, "kind": res.plural} if res.group else {"name": name, "kind": res.plural})


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def invalid(res, name, msg, causes=None):
    d = {"name": name, "kind": res.kind}
    if res.group:
        d["group"] = res.group
    if causes:
        d["causes"] = causes
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (res.kind, name, msg), d)


def _same(a, b):
    """Objects equal apart from resourceVersion and managedFields (a no-op write)."""
    def strip(o):
        o = dict(o)
        md = dict(o.get("metadata", {}))
        md.pop("resourceVersion", None)
        md.pop("managedFields", None)
        o["metadata"] = md
        return o
    return strip(a) == strip(b)


def pod_ready(p):
    for c in p.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_healthy(p):
    return (p.get("status", {}).get("phase") == "Running" and pod_ready(p)
            and not p.get("metadata", {}).get("deletionTimestamp"))


def _int_or_percent(v, total, round_up):
    if v is None:
        return None
    if isinstance(v, int):
        return v
    s = str(v)
    if s.endswith("%"):
        pct = int(s[:-1])
        x = pct * total / 100.0
        return int(math.ceil(x)) if round_up else int(math.floor(x))
    return int(s)



def _default_taint_times(res, obj, old):
    """kube-apiserver's defaulting of DRA device taints (every resource.k8s.io version): a taint
    without timeAdded gets the current time, in ResourceSlices (devices[].taints, v1beta1
    devices[].basic.taints) and DeviceTaintRules (spec.taint). An update of a rule that changes
    the effect and leaves timeAdded as it was gets the current time too (the rule strategy's
    PrepareForUpdate), since tolerationSeconds count from it."""
    if res.group != "resource.k8s.io" or res.plural not in ("resourceslices", "devicetaintrules"):
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    taints = []
    if res.plural == "resourceslices":
        for d in spec.get("devices") or []:
            if isinstance(d, dict):
                for holder in (d, d.get("basic")):
                    if isinstance(holder, dict) and isinstance(holder.get("taints"), list):
                        taints.extend(t for t in holder["taints"] if isinstance(t, dict))
    elif isinstance(spec.get("taint"), dict):
        taint = spec["taint"]
        prev = ((old or {}).get("spec") or {}).get("taint") or {}
        if old is not None and taint.get("effect") != prev.get("effect") and taint.get("timeAdded") == prev.get("timeAdded"):
            taint.pop("timeAdded", None)
        taints.append(taint)
    for t in taints:
        if not t.get("timeAdded"):
            t["timeAdded"] = now_rfc3339()

class Cluster:
    """The API behaviour. opts: pod_termination_ms, enforce_rbac."""

    def __init__(self, store, pod_termination_ms=100):
        self.store = store
        self.lock = store.lock
        self.pod_termination_ms = pod_termination_ms
        self.timers = set()
        self.terminated = set()  # uids of pods the "kubelet" finished that finalizers still hold
        store.hooks.append(self._on_change)
        self.reset()

    # ------------------------------------------------------------------ setup
    def reset(self):
        """Delete everything but the initial namespaces (watchers see DELETED events)."""
        with self.lock:
            for t in list(self.timers):
                t.cancel()
            self.timers.clear()
            for res in RESOURCES:
                for o in list(self.store.items(res)):
                    md = o["metadata"]
                    if res is NAMESPACE and md["name"] in INITIAL_NAMESPACES:
                        continue
                    self.store.remove(res, md.get("namespace", ""), md["name"])
            for ns in INITIAL_NAMESPACES:
                if not self.store.get(NAMESPACE, "", ns):
                    self.create(NAMESPACE, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # ------------------------------------------------------------------ create
    def create(self, res, ns, obj, dry_run=False, keep_status=True):
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object")
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise bad_request("metadata must be an object")
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if av and av != res.api_version and not (res.plural == "events" and av in ("v1", "events.k8s.io/v1")):
            raise bad_request("the API version in the data (%s) does not match the expected API version (%s)" % (av, res.api_version))
        if kind and kind != res.kind:
            raise bad_request("the kind in the data (%s) does not match the expected kind (%s)" % (kind, res.kind))
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if not md.get("name") and not md.get("generateName"):
            raise invalid(res, "", "metadata.name: Required value: name or generateName is required",
                          [{"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"}])
        with self.lock:
            if res.namespaced and not self.store.get(NAMESPACE, "", ns):
                raise not_found(NAMESPACE, ns)
            if res.namespaced and self._ns_terminating(ns):
                raise ApiError(403, "Forbidden", '%s "%s" is forbidden: unable to create new content in namespace %s because it is being terminated'
                               % (res.qualified, md.get("name") or md.get("generateName"), ns),
                               {"name": md.get("name", ""), "kind": res.plural})
            if md.get("name") and self.store.get(res, ns if res.namespaced else "", md["name"]):
                d = {"name": md["name"], "kind": res.plural}
                if res.group:
                    d["group"] = res.group
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (res.qualified, md["name"]), d)
            self.store.new_object(res, obj)
            self._defaults(res, obj, keep_status)
            _default_taint_times(res, obj, None)
            validation.validate(res, obj)
            if dry_run:
                return obj
            return self.store.put(res, obj)

    def _defaults(self, res, obj, keep_status):
        if res is POD:
            st = obj.get("status") if keep_status else None
            obj["status"] = st if isinstance(st, dict) else {}
            obj["status"].setdefault("phase", "Pending")
            spec = obj.setdefault("spec", {})
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("schedulerName", "default-scheduler")
            # As the real defaulting does: a limit without a request is also the request.
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                lim = (c.get("resources") or {}).get("limits")
                if isinstance(lim, dict) and lim:
                    req = c["resources"].setdefault("requests", {})
                    for k, v in lim.items():
                        req.setdefault(k, v)
        elif res is NAMESPACE:
            obj["status"] = {"phase": "Active"}
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif res is PDB:
            obj["status"] = self._pdb_status(obj)
        elif not keep_status and res.key in STATUS_SUB:
            obj.pop("status", None)

    def _ns_terminating(self, ns):
        n = self.store.get(NAMESPACE, "", ns)
        return bool(n and n["metadata"].get("deletionTimestamp"))

    # ------------------------------------------------------------------ update / patch
    def update(self, res, ns, name, obj, subresource=None, dry_run=False):
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
            raise bad_request("the body of the request must be a JSON object")
        md = obj.setdefault("metadata", {})
        if md.get("name") and md["name"] != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (md["name"], name))
        if res.namespaced and md.get("namespace") and md["namespace"] != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        with self.lock:
            old = self.store.get(res, ns, name)
            if old is None:
                raise not_found(res, name)
            rv = md.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(res, name, "the object has been modified; please apply your changes to the latest version and try again")
            return self._write(res, old, obj, subresource, dry_run)

    def patch(self, res, ns, name, ptype, patch, subresource=None, dry_run=False):
        with self.lock:
            old = self.store.get(res, ns, name)
            if old is None:
                raise not_found(res, name)
            base = json.loads(json.dumps(old))
            try:
                if ptype == "json":
                    new = sel.json_patch(base, patch)
                elif ptype == "strategic":
                    if not isinstance(patch, dict):
                        raise ValueError("strategic merge patch must be a JSON object")
                    new = sel.strategic_merge_patch(base, patch)
                else:
                    if not isinstance(patch, dict):
                        raise ValueError("merge patch must be a JSON object")
                    new = sel.merge_patch(base, patch)
            except ValueError as e:
                raise ApiError(422 if ptype == "json" else 400, "Invalid" if ptype == "json" else "BadRequest", str(e))
            if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
                raise bad_request("the patched object is not a valid object")
            nmd = new["metadata"]
            if nmd.get("name") != name:
                raise bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (nmd.get("name"), name))
            if nmd.get("resourceVersion") and nmd["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(res, name, "the object has been modified; please apply your changes to the latest version and try again")
            return self._write(res, old, new, subresource, dry_run)

    def _write(self, res, old, new, subresource, dry_run):
        """Merge a requested new state into old with the server's rules, store it if changed."""
        omd = old["metadata"]
        if subresource == "status":
            merged = json.loads(json.dumps(old))
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
        else:
            merged = new
            merged["apiVersion"], merged["kind"] = res.api_version, res.kind
            if res.key in STATUS_SUB:
                if "status" in old:
                    merged["status"] = old["status"]
                else:
                    merged.pop("status", None)
            md = merged.setdefault("metadata", {})
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name"):
                if k in omd:
                    md[k] = omd[k]
                else:
                    md.pop(k, None)
            if "generation" in omd:
                md["generation"] = omd["generation"] + (1 if merged.get("spec") != old.get("spec") else 0)
            if res is PDB and md.get("generation") != omd.get("generation"):
                merged["status"] = self._pdb_status(merged)
            _default_taint_times(res, merged, old)
        merged["metadata"]["resourceVersion"] = omd["resourceVersion"]
        validation.validate(res, merged, old)
        if _same(merged, old):
            return old
        if dry_run:
            return merged
        ns, name = omd.get("namespace", ""), omd["name"]
        stored = self.store.put(res, merged, old)
        if omd.get("deletionTimestamp") and not merged["metadata"].get("finalizers"):
            if res is not POD or omd.get("uid") in self.terminated or not stored.get("spec", {}).get("nodeName"):
                self.store.remove(res, ns, name)
        return stored

    # ------------------------------------------------------------------ delete
    def delete(self, res, ns, name, grace=None, preconditions=None, dry_run=False):
        """Delete like the real server: returns (code, object-or-Status)."""
        with self.lock:
            old = self.store.get(res, ns, name)
            if old is None:
                raise not_found(res, name)
            omd = old["metadata"]
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != omd.get("uid"):
                raise conflict(res, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s" % (pre["uid"], omd.get("uid")))
            if pre.get("resourceVersion") and pre["resourceVersion"] != omd.get("resourceVersion"):
                raise conflict(res, name, "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s"
                               % (pre["resourceVersion"], omd.get("resourceVersion")))
            if dry_run:
                return 200, old
            if res is POD:
                return 200, self._delete_pod(old, grace)
            if res is NAMESPACE:
                if name in ("default", "kube-system", "kube-public"):
                    raise ApiError(403, "Forbidden", 'namespaces "%s" is forbidden: this namespace may not be deleted' % name,
                                   {"name": name, "kind": "namespaces"})
                self._delete_namespace(name)
                return 200, self._success(res, old)
            if omd.get("finalizers"):
                if omd.get("deletionTimestamp"):
                    return 200, old
                new = json.loads(json.dumps(old))
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                return 200, self.store.put(res, new, old)
            gone = self.store.remove(res, ns, name)
            self._collect_garbage(gone)
            return 200, self._success(res, gone)

    def _success(self, res, obj):
        d = {"name": obj["metadata"]["name"], "kind": res.plural, "uid": obj["metadata"].get("uid")}
        if res.group:
            d["group"] = res.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d}

    def _delete_pod(self, old, grace):
        omd = old["metadata"]
        ns, name = omd["namespace"], omd["name"]
        if grace is None:
            grace = old.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        grace = max(0, int(grace))
        bound = bool(old.get("spec", {}).get("nodeName"))
        phase = old.get("status", {}).get("phase")
        if omd.get("deletionTimestamp"):
            if grace == 0 or not bound:
                return self._finish_pod(ns, name, omd["uid"]) or old
            return old
        if grace > 0 and bound and phase not in ("Succeeded", "Failed"):
            new = json.loads(json.dumps(old))
            t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=grace)
            new["metadata"]["deletionTimestamp"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            stored = self.store.put(POD, new, old)
            uid = omd["uid"]
            timer = threading.Timer(self.pod_termination_ms / 1000.0, lambda: self._terminated(ns, name, uid, timer))
            timer.daemon = True
            self.timers.add(timer)
            timer.start()
            return stored
        return self._finish_pod(ns, name, omd["uid"]) or old

    def _terminated(self, ns, name, uid, timer):
        with self.lock:
            self.timers.discard(timer)
            self._finish_pod(ns, name, uid)

    def _finish_pod(self, ns, name, uid):
        """The kubelet is done with the pod: remove it unless finalizers hold it."""
        cur = self.store.get(POD, ns, name)
        if cur is None or cur["metadata"].get("uid") != uid:
            return None
        if cur["metadata"].get("finalizers"):
            self.terminated.add(uid)
            if not cur["metadata"].get("deletionTimestamp"):
                new = json.loads(json.dumps(cur))
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                return self.store.put(POD, new, cur)
            return cur
        gone = self.store.remove(POD, ns, name)
        return gone

    def _delete_namespace(self, ns):
        for res in RESOURCES:
            if not res.namespaced:
                continue
            for o in list(self.store.items(res, ns)):
                self.store.remove(res, ns, o["metadata"]["name"])
        self.store.remove(NAMESPACE, "", ns)

    def _collect_garbage(self, gone):
        """Background cascading deletion of pods owned by a deleted object (ReplicaSets, DaemonSets, ...)."""
        uid = gone["metadata"].get("uid")
        ns = gone["metadata"].get("namespace")
        if not uid or not ns or gone.get("kind") not in ("ReplicaSet", "DaemonSet", "Deployment", "StatefulSet", "Job"):
            return
        for p in list(self.store.items(POD, ns)):
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or []):
                self._delete_pod(p, 0)

    # ------------------------------------------------------------------ PodDisruptionBudgets
    def _matching_pods(self, pdb):
        reqs = sel.label_selector_from_object(pdb.get("spec", {}).get("selector"))
        if reqs is None:
            return []
        ns = pdb["metadata"]["namespace"]
        return [p for p in self.store.items(POD, ns) if sel.label_match(reqs, p["metadata"].get("labels"))]

    def _pdb_status(self, pdb):
        pods = self._matching_pods(pdb)
        spec = pdb.get("spec", {})
        expected = len(pods)
        healthy = sum(1 for p in pods if pod_healthy(p))
        if spec.get("maxUnavailable") is not None:
            mu = _int_or_percent(spec["maxUnavailable"], expected, True)
            desired = max(0, expected - mu)
        elif spec.get("minAvailable") is not None:
            desired = _int_or_percent(spec["minAvailable"], expected, True)
        else:
            desired = expected  # unreachable in validated objects; be strict
        allowed = max(0, healthy - desired)
        old = pdb.get("status") or {}
        prev_cond = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
        cstatus = "True" if allowed > 0 else "False"
        cond = {"type": "DisruptionAllowed", "status": cstatus,
                "reason": "SufficientPods" if allowed > 0 else "InsufficientPods", "message": "",
                "observedGeneration": pdb["metadata"].get("generation", 1),
                "lastTransitionTime": prev_cond["lastTransitionTime"] if prev_cond and prev_cond.get("status") == cstatus else now_rfc3339()}
        return {"observedGeneration": pdb["metadata"].get("generation", 1), "disruptionsAllowed": allowed,
                "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected, "conditions": [cond]}

    def refresh_pdb(self, pdb):
        st = self._pdb_status(pdb)
        if st != pdb.get("status"):
            new = dict(pdb)
            new["metadata"] = dict(pdb["metadata"])
            new["status"] = st
            return self.store.put(PDB, new, pdb)
        return pdb

    def refresh_all_pdbs(self):
        with self.lock:
            for p in list(self.store.items(PDB)):
                self.refresh_pdb(p)

    def _on_change(self, res, old, new):
        """Store hook: keep PodDisruptionBudget status current when a matching pod changes."""
        if res is not POD:
            return
        o = new or old
        ns = o["metadata"]["namespace"]
        for pdb in list(self.store.items(PDB, ns)):
            reqs = sel.label_selector_from_object(pdb.get("spec", {}).get("selector"))
            if reqs is None:
                continue
            if (new and sel.label_match(reqs, new["metadata"].get("labels"))) or \
               (old and sel.label_match(reqs, old["metadata"].get("labels"))):
                self.refresh_pdb(pdb)

    # ------------------------------------------------------------------ eviction
    def evict(self, ns, name, body):
        """POST pods/NAME/eviction. Returns the Status to answer 201 with, or raises ApiError."""
        if isinstance(body, dict):
            av = body.get("apiVersion")
            if av and av not in ("policy/v1", "policy/v1beta1"):
                raise bad_request("the API version in the data (%s) does not match the expected API version (policy/v1)" % av)
            bname = (body.get("metadata") or {}).get("name")
            if bname and bname != name:
                raise bad_request("name in URL does not match name in Eviction object")
        opts = (body or {}).get("deleteOptions") or {}
        grace = opts.get("gracePeriodSeconds")
        pre = opts.get("preconditions")
        dry = bool(opts.get("dryRun"))
        with self.lock:
            pod = self.store.get(POD, ns, name)
            if pod is None:
                raise not_found(POD, name)
            if pre and pre.get("uid") and pre["uid"] != pod["metadata"]["uid"]:
                raise conflict(POD, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s" % (pre["uid"], pod["metadata"]["uid"]))
            ok = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
            phase = pod.get("status", {}).get("phase")
            if pod["metadata"].get("deletionTimestamp") or phase in ("Succeeded", "Failed", "Pending"):
                if not dry:
                    self._evict_delete(pod, grace)
                return ok
            pdbs = []
            for pdb in self.store.items(PDB, ns):
                reqs = sel.label_selector_from_object(pdb.get("spec", {}).get("selector"))
                if reqs is not None and sel.label_match(reqs, pod["metadata"].get("labels")):
                    pdbs.append(pdb)
            if len(pdbs) > 1:
                raise ApiError(500, "InternalError",
                               "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
            if pdbs:
                pdb = self.refresh_pdb(pdbs[0])
                st = pdb["status"]
                policy = pdb.get("spec", {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
                healthy = pod_healthy(pod)
                if not healthy and (policy == "AlwaysAllow" or
                                    (st["currentHealthy"] >= st["desiredHealthy"] and st["desiredHealthy"] > 0)):
                    pass
                elif st["disruptionsAllowed"] <= 0:
                    raise ApiError(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                                   {"causes": [{"reason": "DisruptionBudget",
                                                "message": "The disruption budget %s needs %d healthy pods and has %d currently"
                                                % (pdb["metadata"]["name"], st["desiredHealthy"], st["currentHealthy"])}]})
            if not dry:
                self._evict_delete(pod, grace)
            return ok

    def _evict_delete(self, pod, grace):
        if not pod["metadata"].get("deletionTimestamp"):
            new = json.loads(json.dumps(pod))
            conds = [c for c in new.setdefault("status", {}).get("conditions") or [] if c.get("type") != "DisruptionTarget"]
            conds.append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                          "message": "Eviction API: evicting", "lastTransitionTime": now_rfc3339(), "lastProbeTime": None})
            new["status"]["conditions"] = conds
            pod = self.store.put(POD, new, pod)
        self._delete_pod(pod, grace)

    # ------------------------------------------------------------------ RBAC
    def authorize(self, user, groups, verb, group, resource, sub, ns, name):
        """True if the stored RBAC objects allow the request."""
        with self.lock:
            def subject_ok(subjects, binding_ns):
                for s in subjects or []:
                    k = s.get("kind")
                    if k == "User" and s.get("name") == user:
                        return True
                    if k == "Group" and s.get("name") in groups:
                        return True
                    if k == "ServiceAccount" and user == "system:serviceaccount:%s:%s" % (s.get("namespace") or binding_ns, s.get("name")):
                        return True
                return False

            def rules_ok(rules):
                full = resource + ("/" + sub if sub else "")
                for r in rules or []:
                    verbs = r.get("verbs") or []
                    if "*" not in verbs and verb not in verbs:
                        continue
                    if resource is None:
                        urls = r.get("nonResourceURLs") or []
                        if any(u == "*" or u == name or (u.endswith("*") and name.startswith(u[:-1])) for u in urls):
                            return True
                        continue
                    gs = r.get("apiGroups") or []
                    if "*" not in gs and group not in gs:
                        continue
                    rs = r.get("resources") or []
                    if not ("*" in rs or full in rs or (sub and "*/" + sub in rs) or (not sub and resource in rs)
                            or (sub and resource + "/*" in rs)):
                        continue
                    names = r.get("resourceNames") or []
                    if names and name not in names:
                        continue
                    return True
                return False

            def role_rules(ref, binding_ns):
                if ref.get("kind") == "ClusterRole":
                    cr = self.store.get(CLUSTERROLE, "", ref.get("name"))
                    return (cr or {}).get("rules")
                r = self.store.get(ROLE, binding_ns, ref.get("name"))
                return (r or {}).get("rules")

            for b in self.store.items(CLUSTERROLEBINDING):
                if subject_ok(b.get("subjects"), "") and rules_ok(role_rules(b.get("roleRef") or {}, "")):
                    return True
            if ns:
                for b in self.store.items(ROLEBINDING, ns):
                    if subject_ok(b.get("subjects"), ns) and rules_ok(role_rules(b.get("roleRef") or {}, ns)):
                        return True
            return False

    # ------------------------------------------------------------------ bulk
    def bulk(self, items):
        """Create (or replace) many objects quickly; namespaces they name are created if missing."""
        out = []
        with self.lock:
            self.store.hooks_enabled = False
            try:
                for obj in items:
                    res = resource_for_object(obj)
                    if res is None:
                        raise bad_request("unknown apiVersion/kind %s/%s" % (obj.get("apiVersion"), obj.get("kind")))
                    md = obj.setdefault("metadata", {})
                    ns = md.get("namespace") or "default" if res.namespaced else ""
                    if res.namespaced and not self.store.get(NAMESPACE, "", ns):
                        self.create(NAMESPACE, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                    old = self.store.get(res, ns, md.get("name", "")) if md.get("name") else None
                    if old is not None:
                        md["uid"] = old["metadata"]["uid"]
                        md["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                        md["namespace"] = ns
                        md.pop("resourceVersion", None)
                        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
                        o = self.store.put(res, obj, old)
                    else:
                        o = self.create(res, ns, obj)
                    out.append(o)
            finally:
                self.store.hooks_enabled = True
            for p in list(self.store.items(PDB)):
                self.refresh_pdb(p)
        return out
