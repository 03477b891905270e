"""The same requests to the real kube-apiserver and to the project's Python test API server
(test/apiserver): where they answer differently, the Python server is wrong (it stands in for
the real one in every other suite). Compared: HTTP status, Status reason, and the field of each
cause. Covers what the controller writes (Events, Leases, Evictions, deletes) and what tests
write as the kubelet (allocatedResourcesStatus).

Known and accepted differences (README of test/apiserver): the Python server keeps a pod's
status on create (tests create running pods in one request; the real server resets it to
Pending); conflict messages are worded differently (same code and reason).
"""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from test.integration import scenario as sc  # noqa: E402
from test.integration.scenario import ApiError  # noqa: E402
from test.realcluster.cluster import shared_cluster  # noqa: E402

NS = "fidelity"


def answer(srv, f):
    """(code, reason, the fields its causes name) of one request."""
    try:
        f(srv)
        return (200, None, ())
    except ApiError as e:
        st = e.status if isinstance(e.status, dict) else {}
        causes = ((st.get("details") or {}).get("causes") or [])
        return (e.code, st.get("reason"), tuple(sorted({c.get("field", "") for c in causes})))


def status_patch(resource_name, health="Unhealthy", message=None):
    r = {"resourceID": "GPU-1", "health": health}
    if message is not None:
        r["message"] = message
    return {"containerStatuses": [{"name": "trainer", "ready": True, "restartCount": 0, "image": "x", "imageID": "",
                                   "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}},
                                   "allocatedResourcesStatus": [{"name": resource_name, "resources": [r]}]}]}


def core_event(name, inv_ns=NS, **kw):
    e = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": NS},
         "involvedObject": {"kind": "Pod", "namespace": inv_ns, "name": "p1"}, "reason": "UnhealthyDevice",
         "message": "m", "type": "Warning", "source": {"component": "device-descheduler"}}
    e.update(kw)
    return e


def new_event(name, **kw):
    e = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name, "namespace": NS},
         "regarding": {"kind": "Pod", "namespace": NS, "name": "p1"}, "reason": "UnhealthyDevice", "note": "m",
         "type": "Warning", "action": "Evict", "reportingController": "device-descheduler.io/controller",
         "reportingInstance": "i-1", "eventTime": "2025-01-01T00:00:00.000000Z"}
    e.update(kw)
    return e


def lease(name, **spec):
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name, "namespace": NS},
            "spec": dict({"holderIdentity": "a", "leaseDurationSeconds": 15}, **spec)}


def post(path, body):
    return lambda s: s.request("POST", path, body)


EVENTS = "/api/v1/namespaces/%s/events" % NS
NEW_EVENTS = "/apis/events.k8s.io/v1/namespaces/%s/events" % NS
LEASES = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS
POD = "/api/v1/namespaces/%s/pods/p1" % NS

CASES = [
    ("allocatedResourcesStatus for a resource the container does not request",
     lambda s: s.patch_status(POD, status_patch("amd.com/gpu"))),
    ("allocatedResourcesStatus with an unknown health", lambda s: s.patch_status(POD, status_patch("nvidia.com/gpu", "Broken"))),
    ("allocatedResourcesStatus with an empty message", lambda s: s.patch_status(POD, status_patch("nvidia.com/gpu", message=""))),
    ("allocatedResourcesStatus for a claim the container does not use",
     lambda s: s.patch_status(POD, status_patch("claim:gpu/gpu"))),
    ("allocatedResourcesStatus as the kubelet writes it", lambda s: s.patch_status(POD, status_patch("nvidia.com/gpu"))),
    ("core Event without involvedObject.namespace", post(EVENTS, core_event("e1", inv_ns=""))),
    ("core Event about another namespace", post(EVENTS, core_event("e2", inv_ns="other"))),
    ("core Event as the controller writes it", post(EVENTS, core_event("e3"))),
    ("core Event with eventTime but no reportingComponent",
     post(EVENTS, core_event("e4", eventTime="2025-01-01T00:00:00.000000Z"))),
    ("events.k8s.io Event without eventTime", post(NEW_EVENTS, new_event("n1", eventTime=None))),
    ("events.k8s.io Event without action", post(NEW_EVENTS, new_event("n2", action=""))),
    ("events.k8s.io Event with a bad type", post(NEW_EVENTS, new_event("n3", type="Error"))),
    ("events.k8s.io Event with an unqualified reportingController", post(NEW_EVENTS, new_event("n4", reportingController="a b"))),
    ("events.k8s.io Event with series.count 1", post(NEW_EVENTS, new_event("n5", series={"count": 1, "lastObservedTime": "2025-01-01T00:00:00.000000Z"}))),
    ("events.k8s.io Event with an eventTime without microseconds", post(NEW_EVENTS, new_event("n6", eventTime="2025-01-01T00:00:00Z"))),
    ("events.k8s.io Event as a client-go recorder writes it", post(NEW_EVENTS, new_event("n7"))),
    ("Lease with a renewTime without microseconds", post(LEASES, lease("l1", renewTime="2025-01-01T00:00:00Z"))),
    ("Lease with leaseDurationSeconds 0", post(LEASES, lease("l2", leaseDurationSeconds=0))),
    ("Lease with negative leaseTransitions", post(LEASES, lease("l3", leaseTransitions=-1))),
    ("Lease as client-go writes it", post(LEASES, lease("l4", acquireTime="2025-01-01T00:00:00.000000Z",
                                                       renewTime="2025-01-01T00:00:01.123456Z", leaseTransitions=0))),
    ("list with a non-numeric resourceVersion", lambda s: s.list("/api/v1/pods", resourceVersion="abc")),
    ("eviction with a stale UID precondition",
     lambda s: s.request("POST", POD + "/eviction", {"apiVersion": "policy/v1", "kind": "Eviction",
                                                    "metadata": {"name": "p1", "namespace": NS},
                                                    "deleteOptions": {"preconditions": {"uid": "0" * 8 + "-0000-0000-0000-" + "0" * 12}}})),
    ("eviction whose body names another pod",
     lambda s: s.request("POST", POD + "/eviction", {"apiVersion": "policy/v1", "kind": "Eviction",
                                                    "metadata": {"name": "other", "namespace": NS}})),
    ("eviction of a missing pod", lambda s: s.evict(NS, "nope")),
    ("delete with a stale UID precondition",
     lambda s: s.delete(POD, grace_period=0, preconditions={"uid": "0" * 8 + "-0000-0000-0000-" + "0" * 12})),
]


class Fidelity(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        sc.require_binary()
        cls.real = shared_cluster()
        cls.tmp = tempfile.mkdtemp(prefix="dd-fidelity-")
        cls.py = sc.start_apiserver(cls.tmp)
        for s in (cls.real, cls.py):
            s.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            s.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": NS},
                      "spec": {"containers": [{"name": "trainer", "image": "x", "resources": {
                          "requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}}]}})

    @classmethod
    def tearDownClass(cls):
        cls.py.stop()

    def test_same_answers(self):
        """Each request gets the same status code, reason and cause fields from both servers."""
        diffs = []
        for what, f in CASES:
            a, b = answer(self.real, f), answer(self.py, f)
            if a != b:
                diffs.append("%s:\n      real kube-apiserver %s\n      test API server     %s" % (what, a, b))
        self.assertFalse(diffs, "the test API server answers differently:\n  " + "\n  ".join(diffs))

    def test_device_taints_get_time_added(self):
        """Defaulting of DRA device taints, which tolerationSeconds count from: a taint written without
        timeAdded gets the current time in a ResourceSlice and a DeviceTaintRule, a given one is kept,
        and changing a rule's effect without touching timeAdded moves it to now."""
        then = "2025-01-01T00:00:00Z"
        got = {}
        for name, s in (("real", self.real), ("py", self.py)):
            sl = s.create({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                           "metadata": {"name": "fidelity-slice"},
                           "spec": {"driver": "gpu.fidelity.example.com", "allNodes": True,
                                    "pool": {"name": "p", "generation": 1, "resourceSliceCount": 1},
                                    "devices": [{"name": "gpu-0", "taints": [
                                        {"key": "example.com/a", "effect": "NoExecute"},
                                        {"key": "example.com/b", "effect": "NoSchedule", "timeAdded": then}]}]}})
            rule = s.create({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceTaintRule",
                             "metadata": {"name": "fidelity-rule"},
                             "spec": {"deviceSelector": {"pool": "p"},
                                      "taint": {"key": "example.com/c", "effect": "NoSchedule", "timeAdded": then}}})
            kept = rule["spec"]["taint"]["timeAdded"]
            rule["spec"]["taint"]["effect"] = "NoExecute"
            moved = s.update(rule)["spec"]["taint"]["timeAdded"]
            taints = sl["spec"]["devices"][0]["taints"]
            got[name] = (bool(taints[0].get("timeAdded")) and taints[0]["timeAdded"] != then,
                         taints[1]["timeAdded"], kept, moved != then)
            s.delete("/apis/resource.k8s.io/v1/devicetaintrules/fidelity-rule")
            s.delete("/apis/resource.k8s.io/v1/resourceslices/fidelity-slice")
        self.assertEqual(got["real"], (True, then, then, True))
        self.assertEqual(got["py"], got["real"])


if __name__ == "__main__":
    unittest.main()
