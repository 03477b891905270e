#!/usr/bin/env python3
"""make demo: device-descheduler rescuing a pod from a failed GPU, no cluster needed.

Starts the project's test API server with --simulate (a tiny scheduler, kubelet and
ReplicaSet controller), three nodes of eight GPUs and a ReplicaSet of six restartPolicy: Always
pods with one GPU each; starts the controller; fails one GPU of one pod (Unhealthy in the
pod's allocatedResourcesStatus, as the kubelet reports it, and listed in the node's
test.device-descheduler.io/unhealthy-devices annotation so the simulator does not hand it out
again); and tells the story: the health event, the controller's decision, the Event, the
eviction and the replacement pod on a healthy GPU, with timings. Then it stops everything
and removes its temporary directory.

Usage: python3 test/demo.py [--bin bin/device-descheduler] [--keep]
Exit status: 0 when the pod was rescued, 1 when not within 20 s, 2 when it could not start.
"""

import argparse
import datetime
import os
import re
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from test.integration.scenario import (GPU, Controller, Timeout, base_policy, node_obj,  # noqa: E402
                                       policy_yaml, start_apiserver, wait_for)

NS = "ml"
RS_NAME = "trainer-7d9f8c6b5"
UNHEALTHY_ANNOTATION = "test.device-descheduler.io/unhealthy-devices"
RESCUE_TIMEOUT_S = 20.0


class Story:
    """Timestamped, optionally coloured lines on stdout."""

    def __init__(self, color):
        self.color = color
        self.t_start = time.time()
        self.t0 = None  # the health event

    def c(self, code, text):
        return "\x1b[%sm%s\x1b[0m" % (code, text) if self.color else text

    def stamp(self, t=None):
        t = time.time() if t is None else t
        wall = datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]
        if self.t0 is None:
            rel = "%7d ms" % round((t - self.t_start) * 1000)
        else:
            rel = "%+7d ms" % round((t - self.t0) * 1000)
        return self.c("2", "%s %s" % (wall, rel))

    def say(self, what, text, t=None, code="1"):
        print("%s  %s %s" % (self.stamp(t), self.c(code, "%-12s" % what), text), flush=True)

    def more(self, text):
        print("%s  %s %s" % (" " * 23, " " * 12, text), flush=True)


def klog_time(line):
    """The wall time of a klog text line ("I1127 06:00:00.123456 ..."; UTC), or None."""
    m = re.match(r"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) ", line)
    if not m:
        return None
    now = datetime.datetime.now(datetime.timezone.utc)
    mo, d, h, mi, s, us = (int(x) for x in m.groups())
    try:
        t = datetime.datetime(now.year, mo, d, h, mi, s, us, tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return t.timestamp()


def gpus_of(pod):
    return [(r["resourceID"], r.get("health", "")) for cs in pod.get("status", {}).get("containerStatuses") or []
            for a in cs.get("allocatedResourcesStatus") or [] if a.get("name") == GPU for r in a.get("resources") or []]


def replicaset(replicas):
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": RS_NAME, "namespace": NS, "labels": {"app": "trainer"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "trainer",
                                              "uid": "7b1e0c2a-94d3-4f6e-8a5b-3c2d1e0f9a8b", "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "trainer"}},
                     "template": {"metadata": {"labels": {"app": "trainer"}},
                                  "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                                           "containers": [{"name": "trainer", "image": "registry.example/ml/trainer:1.4",
                                                           "resources": {"requests": {"cpu": "8", GPU: "1"},
                                                                         "limits": {"cpu": "8", GPU: "1"}}}]}}}}


def trainer_pods(srv):
    return sorted((p for p in srv.list("/api/v1/namespaces/%s/pods" % NS)["items"]
                   if p["metadata"].get("labels", {}).get("app") == "trainer"),
                  key=lambda p: p["metadata"]["name"])


def running(p):
    return p.get("status", {}).get("phase") == "Running" and gpus_of(p) and not p["metadata"].get("deletionTimestamp")


def run(args, story, tmp):
    srv = ctl = None
    try:
        story.say("start", "test API server with --simulate (scheduler, kubelet, ReplicaSet controller)")
        srv = start_apiserver(tmp, simulate=True)
        story.more("listening on %s" % srv.url)
        for i in (1, 2, 3):
            srv.create(node_obj("gpu-node-%d" % i, gpus=8))
        srv.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        srv.create(replicaset(6))
        pods = wait_for(lambda: (lambda ps: ps if len(ps) == 6 and all(running(p) for p in ps) else None)(trainer_pods(srv)),
                        10.0, "6 Running trainer pods")
        story.say("cluster", "3 nodes x 8 %s; ReplicaSet %s/%s: 6 pods, restartPolicy Always, 1 GPU each" % (GPU, NS, RS_NAME))
        for p in pods:
            story.more("%-26s on %-10s %s" % (p["metadata"]["name"], p["spec"]["nodeName"],
                                            ", ".join("%s (%s)" % g for g in gpus_of(p))))

        policy = os.path.join(tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write(policy_yaml(base_policy()))
        ctl = Controller(srv, tmp, policy_path=policy, name="device-descheduler", verbosity=2, binary=args.bin)
        shown = os.path.relpath(args.bin, ROOT) if args.bin.startswith(ROOT + os.sep) else args.bin
        story.say("start", "%s -v 2 (policy: podResourceHealth, debounce 0s)" % shown)
        ctl.start()
        ctl.wait_ready(timeout=10.0)
        synced = re.search(r"caches synced[^\n]*", ctl.log())
        story.say("ready", "controller /readyz 200%s" % (": " + synced.group(0) if synced else ""))

        victim = pods[0]
        vname, node = victim["metadata"]["name"], victim["spec"]["nodeName"]
        bad_gpu = gpus_of(victim)[0][0]
        path = "/api/v1/namespaces/%s/pods/%s" % (NS, vname)
        # The device plugin reports the GPU: the node loses one allocatable GPU, and (for the
        # simulator) the device is listed as unhealthy so it is never handed out again.
        srv.patch("/api/v1/nodes/%s" % node, {"metadata": {"annotations": {UNHEALTHY_ANNOTATION: bad_gpu}}})
        srv.patch_status("/api/v1/nodes/%s" % node, {"allocatable": {GPU: "7"}})
        cur = srv.get(path)
        css = cur["status"]["containerStatuses"]
        for cs in css:
            for a in cs.get("allocatedResourcesStatus") or []:
                for r in a.get("resources") or []:
                    if r["resourceID"] == bad_gpu:
                        r["health"] = "Unhealthy"
                        r["message"] = "XID 79: GPU has fallen off the bus"
        srv.patch_status(path, {"containerStatuses": css})
        patch = [e for e in srv.requests(method="PATCH", subresource="status", name=vname)][-1]
        story.t0 = patch["time"]
        story.say("health", "%s of pod %s/%s on %s turns Unhealthy (XID 79: GPU has fallen off the bus)"
                  % (bad_gpu, NS, vname, node), t=patch["time"], code="1;31")

        deadline = time.monotonic() + RESCUE_TIMEOUT_S
        left = lambda: max(0.1, deadline - time.monotonic())  # noqa: E731

        line = wait_for(lambda: next((ln for ln in ctl.log().splitlines() if "(pod=%s/%s " % (NS, vname) in ln), None),
                        left(), "the controller's decision about %s" % vname, ctl=ctl)
        story.say("decision", line.split("] ", 1)[-1].split(" (pod=", 1)[0], t=klog_time(line), code="1;33")

        ev = wait_for(lambda: [e for e in srv.requests(method="POST", resource="events", namespace=NS)], left(),
                      "an Event", ctl=ctl)[0]
        events = [e for e in srv.list("/api/v1/namespaces/%s/events" % NS)["items"]
                  if e["involvedObject"]["name"] == vname]
        if events:
            story.say("event", "%s %s: %s" % (events[0]["type"], events[0]["reason"], events[0]["message"]),
                      t=ev["time"], code="1;35")

        evs = wait_for(lambda: [e for e in srv.requests(method="POST", subresource="eviction", name=vname) if e["status"]],
                       left(), "the eviction of %s" % vname, ctl=ctl)
        for e in evs:
            story.say("eviction", "POST %s -> %d%s" % (e["path"], e["status"], " (the pod is terminating)" if e["status"] == 201 else ""),
                      t=e["time"], code="1;36")

        # The ReplicaSet replaces the pod as soon as it is terminating; note both moments.
        old = {p["metadata"]["name"] for p in pods}
        seen = {}

        def rescued():
            now = time.time()
            if "gone" not in seen and not srv.exists(path):
                seen["gone"] = now
            if "new" not in seen:
                p = next((p for p in trainer_pods(srv) if p["metadata"]["name"] not in old and running(p)), None)
                if p is not None:
                    seen["new"], seen["pod"] = now, p
            return "gone" in seen and "new" in seen
        wait_for(rescued, left(), "the old pod to be gone and a replacement to run", ctl=ctl)
        new, t_new = seen["pod"], seen["new"]
        new_gpu, new_health = gpus_of(new)[0]
        steps = [(seen["gone"], "gone", "pod %s/%s terminated and removed" % (NS, vname), "1"),
                 (t_new, "replacement", "pod %s/%s Running on %s with %s (%s)" % (
                     NS, new["metadata"]["name"], new["spec"]["nodeName"], new_gpu, new_health), "1;32")]
        for t, what, text, code in sorted(steps, key=lambda s: s[0]):
            story.say(what, text, t=t, code=code)
        if new_gpu == bad_gpu or new_health != "Healthy":
            raise Timeout("the replacement pod got %s (%s)" % (new_gpu, new_health))
        total = round((t_new - story.t0) * 1000)
        print(story.c("1;32", "rescued: %s/%s (%s, Unhealthy) -> %s/%s on %s (%s, Healthy) in %d ms"
                      % (NS, vname, bad_gpu, NS, new["metadata"]["name"], new["spec"]["nodeName"], new_gpu, total)),
              flush=True)
        story.more("health event -> eviction request: %d ms" % round((evs[-1]["time"] - story.t0) * 1000))
        return 0
    finally:
        story.t0 = None
        if ctl is not None:
            rc = ctl.stop(timeout=10.0)
            story.say("stop", "controller: SIGTERM, exit status %s" % rc)
        if srv is not None:
            srv.stop()
            story.say("stop", "test API server stopped")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "device-descheduler"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    story = Story(color)
    if not (os.path.isfile(args.bin) and os.access(args.bin, os.X_OK)):
        print("demo: %s is not built; run `make` first" % args.bin, file=sys.stderr)
        return 2
    print(story.c("1", "device-descheduler demo: a simulated GPU cluster, one failing GPU, and the rescue"), flush=True)
    tmp = tempfile.mkdtemp(prefix="dd-demo-")
    rc = 1
    try:
        rc = run(args, story, tmp)
    except Timeout as e:
        print(story.c("1;31", "demo FAILED: no rescue: %s" % e), file=sys.stderr, flush=True)
        rc = 1
    except Exception as e:  # noqa: BLE001 - a demo explains, then exits non-zero
        traceback.print_exc()
        print(story.c("1;31", "demo FAILED: %s" % e), file=sys.stderr, flush=True)
        rc = 1
    finally:
        if rc != 0:
            for name in ("apiserver/server.log", "device-descheduler.log"):
                try:
                    with open(os.path.join(tmp, name), errors="replace") as f:
                        tail = f.read().splitlines()[-15:]
                except OSError:
                    continue
                print("--- %s (tail) ---\n%s" % (name, "\n".join(tail)), file=sys.stderr, flush=True)
        if args.keep or rc != 0 and os.environ.get("DD_KEEP"):
            print("kept %s" % tmp, flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            print("%s  %s removed %s" % (story.stamp(), story.c("1", "%-12s" % "cleanup"), tmp), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
