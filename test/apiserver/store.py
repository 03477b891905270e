"""The object store of the test API server: objects by resource and key, one global
resourceVersion, a bounded event history, and the fan-out of events to open watches.

Stored objects are treated as immutable: every change stores a new dict, so history entries
and watch queues can share them without copying. One re-entrant lock guards everything;
the HTTP threads and the timers take it for each operation.
"""

import bisect
import collections
import copy
import datetime
import json
import threading
import uuid

import labelsel as sel


class ApiError(Exception):
    """An error the HTTP layer turns into a metav1.Status with the same code."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            st["details"] = self.details
        return st


def not_found(res, name):
    d = {"name": name, "kind": res.plural}
    if res.group:
        d["group"] = res.group
    return ApiError(404, "NotFound", '%s "%s" not found' % (res.qualified, name), d)


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def deep(o):
    return json.loads(json.dumps(o))


class Event:
    """One change: type ADDED/MODIFIED/DELETED, the object after (or as deleted) and before."""

    __slots__ = ("rv", "res", "type", "obj", "prev", "ns")

    def __init__(self, rv, res, etype, obj, prev):
        self.rv = rv
        self.res = res
        self.type = etype
        self.obj = obj
        self.prev = prev
        self.ns = obj.get("metadata", {}).get("namespace", "")


class Watcher:
    """An open watch: its filter, a queue of (type, obj) to send, and control flags."""

    def __init__(self, res, ns, label_reqs, field_reqs, path, conn):
        self.res = res
        self.ns = ns
        self.label_reqs = label_reqs
        self.field_reqs = field_reqs
        self.path = path
        self.conn = conn
        self.cond = threading.Condition()
        self.queue = collections.deque()
        self.dropped = False
        self.closed = False

    def matches(self, obj):
        if obj is None:
            return False
        md = obj.get("metadata", {})
        if self.ns and md.get("namespace", "") != self.ns:
            return False
        if self.label_reqs and not sel.label_match(self.label_reqs, md.get("labels")):
            return False
        if self.field_reqs and not sel.field_match(self.field_reqs, obj):
            return False
        return True

    def translate(self, ev):
        """The (type, obj) this watch sees for an event, or None: like the watch cache, an object
        that starts matching is ADDED and one that stops matching is DELETED."""
        if ev.type == "ADDED":
            return ("ADDED", ev.obj) if self.matches(ev.obj) else None
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if self.matches(ev.prev or ev.obj) else None
        now, before = self.matches(ev.obj), self.matches(ev.prev)
        if now and before:
            return ("MODIFIED", ev.obj)
        if now:
            return ("ADDED", ev.obj)
        if before:
            return ("DELETED", ev.obj)
        return None

    def push(self, item):
        with self.cond:
            self.queue.append(item)
            self.cond.notify()

    def wake(self):
        with self.cond:
            self.cond.notify_all()


class Store:
    """All objects, keyed by resource key then (namespace, name)."""

    def __init__(self, history=10000):
        self.lock = threading.RLock()
        self.objects = collections.defaultdict(dict)
        self._sorted = {}
        self.rv = 0
        self.history = collections.deque()
        self.history_max = max(1, history)
        self.floor = 0  # watches/continues from an RV below this are expired
        self.watchers = set()
        self.hooks = []  # callables(res, old, new) run under the lock after each change
        self.hooks_enabled = True

    # ------------------------------------------------------------------ reading
    def get(self, res, ns, name):
        return self.objects[res.key].get((ns or "", name))

    def sorted_keys(self, res):
        ks = self._sorted.get(res.key)
        if ks is None:
            ks = sorted(self.objects[res.key].keys())
            self._sorted[res.key] = ks
        return ks

    def items(self, res, ns=None):
        """Objects of a resource in key order, optionally in one namespace."""
        d = self.objects[res.key]
        return [d[k] for k in self.sorted_keys(res) if ns is None or k[0] == ns]

    def state_at(self, res, rv):
        """Keys changed after rv mapped to their value at rv (None = absent), from the history.
        Raises ApiError 410 when rv is older than the history."""
        if rv < self.floor:
            raise ApiError(410, "Expired", "too old resource version: %d (%d)" % (rv, self.floor))
        changed = {}
        for ev in reversed(self.history):
            if ev.rv <= rv:
                break
            if ev.res != res.key:
                continue
            md = ev.obj["metadata"]
            key = (md.get("namespace", ""), md["name"])
            changed[key] = ev.prev if ev.type != "ADDED" else None
        return changed

    # ------------------------------------------------------------------ writing
    def next_rv(self):
        self.rv += 1
        return self.rv

    def _record(self, res, etype, obj, prev):
        ev = Event(self.rv, res.key, etype, obj, prev)
        self.history.append(ev)
        while len(self.history) > self.history_max:
            old = self.history.popleft()
            self.floor = old.rv
        for w in list(self.watchers):
            if w.res.key != res.key or w.closed:
                continue
            item = w.translate(ev)
            if item:
                w.push(item)
        if self.hooks_enabled:
            for h in self.hooks:
                h(res, prev, obj if etype != "DELETED" else None)

    def put(self, res, obj, prev=None):
        """Store obj (a new dict owned by the store from now on) with a new resourceVersion."""
        md = obj["metadata"]
        md["resourceVersion"] = str(self.next_rv())
        key = (md.get("namespace", ""), md["name"])
        d = self.objects[res.key]
        if key not in d:
            self._sorted.pop(res.key, None)
        d[key] = obj
        self._record(res, "MODIFIED" if prev is not None else "ADDED", obj, prev)
        return obj

    def remove(self, res, ns, name):
        """Delete an object now; the DELETED event carries a fresh resourceVersion."""
        key = (ns or "", name)
        d = self.objects[res.key]
        prev = d.pop(key, None)
        if prev is None:
            return None
        self._sorted.pop(res.key, None)
        obj = dict(prev)
        obj["metadata"] = dict(prev["metadata"])
        obj["metadata"]["resourceVersion"] = str(self.next_rv())
        self._record(res, "DELETED", obj, prev)
        return obj

    def compact(self):
        """Forget all history up to the current RV."""
        self.history.clear()
        self.floor = self.rv

    def new_object(self, res, obj):
        """Fill the server-set metadata of an object being created (not stored yet)."""
        md = obj.setdefault("metadata", {})
        if not md.get("name") and md.get("generateName"):
            import random
            while True:
                cand = md["generateName"] + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
                if (md.get("namespace", ""), cand) not in self.objects[res.key]:
                    break
            md["name"] = cand
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        md.pop("deletionTimestamp", None)
        md.pop("deletionGracePeriodSeconds", None)
        md.pop("resourceVersion", None)
        if "spec" in obj or res.kind in ("Pod", "Deployment", "ReplicaSet", "DaemonSet", "PodDisruptionBudget"):
            md["generation"] = 1
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind
        return obj


def copy_obj(o):
    return copy.deepcopy(o)


def bisect_after(keys, start):
    return bisect.bisect_right(keys, start)
