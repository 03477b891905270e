"""The parts of kube-apiserver's validation that matter for what the controller writes (Events,
Leases) and for what tests write as the kubelet (pods/status allocatedResourcesStatus), checked
against the real server v1.37 (test/realcluster/real_fidelity.py runs the same requests against
both). Everything else stays unvalidated, as the README says.

validate(res, obj, old=None) raises the ApiError the real server answers: 400 BadRequest for a
time that does not decode, 422 Invalid (with causes) for a field that validation refuses.
"""

import re

# metav1.MicroTime: RFC 3339 with exactly six fractional digits ("2006-01-02T15:04:05.000000Z07:00").
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
# metav1.Time: RFC 3339 without fractions.
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")
QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                            r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
HEALTH = ("Healthy", "Unhealthy", "Unknown")


class _Errors:
    def __init__(self):
        self.causes = []

    def add(self, reason, field, message):
        self.causes.append({"reason": reason, "message": message, "field": field})

    def required(self, field):
        self.add("FieldValueRequired", field, "Required value")

    def invalid(self, field, value, detail):
        self.add("FieldValueInvalid", field, "Invalid value: %s: %s" % (_show(value), detail))


def _show(v):
    if isinstance(v, str):
        return '"%s"' % v
    return str(v)


def _decode_time(kind, api_version, field, value, micro):
    """The real server refuses a time it cannot decode before validation, with 400."""
    if value is None:
        return
    rx = MICRO_TIME if micro else TIME
    if not isinstance(value, str) or not rx.match(value):
        from cluster import bad_request  # noqa: circular at import time
        layout = "2006-01-02T15:04:05.000000Z07:00" if micro else "2006-01-02T15:04:05Z07:00"
        raise bad_request('%s in version "%s" cannot be handled as a %s: parsing time "%s" as "%s": '
                          "cannot parse %s (field %s)" % (kind, api_version.rsplit("/", 1)[-1], kind, value,
                                                         layout, _show(value), field))


def validate(res, obj, old=None):
    """Raises ApiError when the real server would refuse obj (a create when old is None)."""
    if res.plural == "events":
        _event(res, obj, old)
    elif res.plural == "leases":
        _lease(res, obj)
    elif res.plural == "pods":
        _pod_status(res, obj)


def _raise(res, obj, errs):
    if errs.causes:
        from cluster import invalid
        name = (obj.get("metadata") or {}).get("name", "")
        msg = ", ".join("%s: %s" % (c["field"], c["message"]) for c in errs.causes)
        if len(errs.causes) > 1:
            msg = "[" + msg + "]"
        raise invalid(res, name, msg, errs.causes)


def _event(res, obj, old):
    md = obj.get("metadata") or {}
    ns = md.get("namespace", "")
    new_api = res.group == "events.k8s.io"
    _decode_time("Event", res.api_version, "eventTime", obj.get("eventTime"), micro=True)
    errs = _Errors()
    # events.k8s.io/v1 names the core fields differently: regarding = involvedObject,
    # note = message, deprecatedFirstTimestamp = firstTimestamp, ...
    inv = (obj.get("regarding") if new_api else obj.get("involvedObject")) or {}
    inv_field = "involvedObject.namespace"
    event_time = obj.get("eventTime")
    if not event_time:
        if not inv.get("namespace"):
            if ns not in ("", "default"):
                errs.invalid(inv_field, inv.get("namespace", ""), "does not match event.namespace")
        elif ns != inv.get("namespace"):
            errs.invalid(inv_field, inv.get("namespace"), "does not match event.namespace")
    else:
        if not inv.get("namespace") and ns not in ("default", "kube-system"):
            errs.invalid(inv_field, inv.get("namespace", ""), "does not match event.namespace")
        ctl_field = "reportingComponent" if not new_api else "reportingController"
        rc = obj.get("reportingController" if new_api else "reportingComponent") or ""
        if not rc:
            errs.required(ctl_field)
        elif not QUALIFIED_NAME.match(rc):
            errs.invalid(ctl_field, rc, "name part must consist of alphanumeric characters, '-', '_' or '.'")
        ri = obj.get("reportingInstance") or ""
        if not ri:
            errs.required("reportingInstance")
        elif len(ri) > 128:
            errs.invalid("reportingInstance", "", "can have at most 128 characters")
        action = obj.get("action") or ""
        if not action:
            errs.required("action")
        elif len(action) > 128:
            errs.invalid("action", "", "can have at most 128 characters")
        reason = obj.get("reason") or ""
        if not reason:
            errs.required("reason")
        elif len(reason) > 128:
            errs.invalid("reason", "", "can have at most 128 characters")
        note = (obj.get("note") if new_api else obj.get("message")) or ""
        if len(note) > 1024:
            errs.invalid("message", "", "can have at most 1024 characters")
    if new_api and old is None:
        # Strict validation of events.k8s.io/v1 creates.
        if not event_time:
            errs.required("eventTime")
        if obj.get("type") not in ("Normal", "Warning"):
            errs.invalid("type", "", "has invalid value: %s" % (obj.get("type") or ""))
        series = obj.get("series")
        if series is not None:
            if (series.get("count") or 0) < 2:
                errs.invalid("series.count", "", "should be at least 2")
            if not series.get("lastObservedTime"):
                errs.required("series.lastObservedTime")
        for f in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"):
            if obj.get(f):
                errs.invalid(f.replace("deprecatedF", "f").replace("deprecatedL", "l"), "", "needs to be unset")
        if obj.get("deprecatedCount"):
            errs.invalid("count", "", "needs to be unset")
        if obj.get("deprecatedSource"):
            errs.invalid("source", "", "needs to be unset")
    _raise(res, obj, errs)


def _lease(res, obj):
    spec = obj.get("spec") or {}
    for f in ("acquireTime", "renewTime"):
        _decode_time("Lease", res.api_version, "spec." + f, spec.get(f), micro=True)
    errs = _Errors()
    for f in ("leaseDurationSeconds", "leaseTransitions"):
        v = spec.get(f)
        if v is None:
            continue
        if f == "leaseDurationSeconds" and v <= 0:
            errs.invalid("spec." + f, v, "must be greater than 0")
        elif v < 0:
            errs.invalid("spec." + f, v, "must be greater than or equal to 0")
    _raise(res, obj, errs)


def _pod_status(res, obj):
    """allocatedResourcesStatus (KEP-4680) as the kubelet must write it."""
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    errs = _Errors()
    containers = {c.get("name"): c for c in spec.get("containers") or []}
    for i, cs in enumerate(st.get("containerStatuses") or []):
        c = containers.get(cs.get("name"))
        for j, a in enumerate(cs.get("allocatedResourcesStatus") or []):
            base = "status.containerStatuses[%d].allocatedResourcesStatus[%d]" % (i, j)
            name = a.get("name") or ""
            if c is not None:
                res_ = c.get("resources") or {}
                if name.startswith("claim:"):
                    ok = any(name == ("claim:%s/%s" % (cl["name"], cl["request"]) if cl.get("request")
                                      else "claim:%s" % cl.get("name"))
                             for cl in res_.get("claims") or [])
                    if not ok:
                        errs.invalid(base + ".name", name,
                                     "must match one of the container's resource claims as "
                                     "'claim:<claimName>/<requestName>' when container.resources.claims[*].request "
                                     "is set or 'claim:<claimName>' when it is empty")
                elif name not in (res_.get("requests") or {}):
                    errs.invalid(base + ".name", name, "must match one of the container's resource requests")
            seen = set()
            for k, r in enumerate(a.get("resources") or []):
                f = "%s.resources[%d]" % (base, k)
                if r.get("health") not in HEALTH:
                    errs.add("FieldValueNotSupported", f + ".health",
                             'Unsupported value: %s: supported values: "Healthy", "Unhealthy", "Unknown"'
                             % _show(r.get("health")))
                if "message" in r and r["message"] is not None:
                    if r["message"] == "":
                        errs.add("FieldValueRequired", f + ".message", "Required value: must be non-empty if specified")
                    elif len(r["message"]) > 1024:
                        errs.add("FieldValueTooLong", f + ".message", "Too long: may not be more than 1024 bytes")
                if r.get("resourceID") in seen:
                    errs.add("FieldValueDuplicate", f + ".resourceID", "Duplicate value: %s" % _show(r.get("resourceID")))
                seen.add(r.get("resourceID"))
    _raise(res, obj, errs)
