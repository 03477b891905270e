"""Server-side printing: meta.k8s.io/v1 Table responses for `kubectl get`'s default output.

Columns follow the real server's printers for the kinds kubectl users look at most (pods,
nodes, namespaces, PodDisruptionBudgets, leases); every other kind gets the generic
Name / Created At table, as the real server does for resources without printers.
"""

import datetime


def human_duration(seconds):
    """Go's k8s.io/apimachinery duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return "%ds" % s
    minutes = s // 60
    if minutes < 10:
        r = s % 60
        return "%dm" % minutes if r == 0 else "%dm%ds" % (minutes, r)
    if minutes < 180:
        return "%dm" % minutes
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return "%dh" % hours if m == 0 else "%dh%dm" % (hours, m)
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        h = hours % 24
        return "%dd" % (hours // 24) if h == 0 else "%dd%dh" % (hours // 24, h)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return "%dy" % (hours // 24 // 365) if dy == 0 else "%dy%dd" % (hours // 24 // 365, dy)
    return "%dy" % (hours // 24 // 365)


def age(obj):
    ts = obj.get("metadata", {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


def _col(name, typ="string", fmt="", prio=0, desc=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": prio}


NAME = _col("Name", fmt="name", desc="Name must be unique within a namespace.")
AGE = _col("Age", desc="CreationTimestamp is a timestamp representing the server time when this object was created.")


def _pod_row(p):
    spec, st = p.get("spec", {}), p.get("status", {})
    cs = st.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in cs)
    reason = st.get("reason") or st.get("phase") or "Pending"
    for c in cs:
        s = c.get("state") or {}
        if s.get("waiting", {}).get("reason"):
            reason = s["waiting"]["reason"]
        elif s.get("terminated", {}).get("reason"):
            reason = s["terminated"]["reason"]
    if p.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return [p["metadata"]["name"], "%d/%d" % (ready, total), reason, restarts, age(p),
            st.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            st.get("nominatedNodeName") or "<none>", "<none>"]


def _node_row(n):
    st = n.get("status", {})
    conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
    status = "Ready" if conds.get("Ready") == "True" else ("NotReady" if "Ready" in conds else "Unknown")
    if n.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (n["metadata"].get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/"))
    info = st.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    return [n["metadata"]["name"], status, ",".join(roles) or "<none>", age(n), info.get("kubeletVersion", ""),
            addrs.get("InternalIP", "<none>"), addrs.get("ExternalIP", "<none>"), info.get("osImage", "<unknown>"),
            info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion", "<unknown>")]


def _pdb_row(p):
    spec = p.get("spec", {})
    mn = spec.get("minAvailable")
    mx = spec.get("maxUnavailable")
    return [p["metadata"]["name"], "N/A" if mn is None else str(mn), "N/A" if mx is None else str(mx),
            int(p.get("status", {}).get("disruptionsAllowed") or 0), age(p)]


def _event_row(e):
    io = e.get("involvedObject") or e.get("regarding") or {}
    last = (e.get("lastTimestamp") or e.get("deprecatedLastTimestamp") or e.get("eventTime")
            or e["metadata"].get("creationTimestamp"))
    return [tables_age(last[:19] + "Z" if last and len(last) > 20 else last), e.get("type", ""), e.get("reason", ""),
            "%s/%s" % (io.get("kind", "").lower(), io.get("name", "")), e.get("message") or e.get("note", "")]


def tables_age(ts):
    return age({"metadata": {"creationTimestamp": ts}}) if ts else "<unknown>"


PRINTERS = {
    "Event": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")], _event_row),
    "Pod": ([NAME, _col("Ready"), _col("Status"), _col("Restarts", "string"), AGE, _col("IP", prio=1),
             _col("Node", prio=1), _col("Nominated Node", prio=1), _col("Readiness Gates", prio=1)], _pod_row),
    "Node": ([NAME, _col("Status"), _col("Roles"), AGE, _col("Version"), _col("Internal-IP", prio=1),
              _col("External-IP", prio=1), _col("OS-Image", prio=1), _col("Kernel-Version", prio=1),
              _col("Container-Runtime", prio=1)], _node_row),
    "Namespace": ([NAME, _col("Status"), AGE],
                  lambda o: [o["metadata"]["name"], o.get("status", {}).get("phase", "Active"), age(o)]),
    "PodDisruptionBudget": ([NAME, _col("Min Available"), _col("Max Unavailable"),
                             _col("Allowed Disruptions", "integer"), AGE], _pdb_row),
    "Lease": ([NAME, _col("Holder"), AGE],
              lambda o: [o["metadata"]["name"], o.get("spec", {}).get("holderIdentity", ""), age(o)]),
}

GENERIC = ([NAME, _col("Created At", "date", desc="CreationTimestamp is a timestamp representing the server time when this object was created.")],
           lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")])


def _row_object(obj, include):
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def table(kind, objs, rv, include="Metadata", cont=None, headers=True, api_version="meta.k8s.io/v1"):
    """A Table of objs (already filtered) for a kind."""
    cols, rowf = PRINTERS.get(kind, GENERIC)
    rows = []
    for o in objs:
        r = {"cells": rowf(o)}
        ro = _row_object(o, include)
        if ro is not None:
            r["object"] = ro
        rows.append(r)
    md = {"resourceVersion": str(rv)}
    if cont:
        md["continue"] = cont
    t = {"kind": "Table", "apiVersion": api_version, "metadata": md, "columnDefinitions": cols if headers else [], "rows": rows}
    return t
