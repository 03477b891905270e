#!/usr/bin/env python3
"""`make bench-e2e`: the real controller against benchsrv, the project's fast API server.

Usage: run.py --bin BIN --build DIR [--sizes "5000 150000 500000"] [--phase-ms 15000]
              [--health 200] [--watchlist both|on|off] [--[no-]tls] [--no-protobuf] [--cache DIR]

For each cluster size (device pods; 5,000 on 200 nodes, 150,000 on 5,000, 500,000 on
65,000, any other N on N/30), generated once by DIR/gen into the cache
(~/.cache/device-descheduler/bench-e2e/<pods>), it starts DIR/benchsrv and the
controller, and prints:

- initial sync: from the controller's start to its /readyz answering 200 (polled every
  10 ms; ready means every cache has synced), with paged LIST (the server refuses
  WatchList with 422, as a server without the feature gate does) and, unless
  --watchlist off, once more with WatchList (a second controller process);
- the controller's peak RSS (VmHWM) and its RSS right after the sync;
- CPU per watch event: (utime + stime) of the whole controller process over a churn
  phase, divided by the watch events the server wrote to it, at 1,000 and 5,000
  MODIFIED pods a second;
- event -> eviction: from the moment the server wrote the last byte of a health event
  (a pod's GPU turned Unhealthy in allocatedResourcesStatus) to the arrival of that
  pod's first eviction request, p50/p99/max over --health events spread over each
  phase (server-side CLOCK_MONOTONIC); and to the accepted eviction (201), which for
  the pods given a 429 (Retry-After: 1) or a 500 first includes the controller's retry;
- a fault phase at 1,000/s: the pods watch is cut mid-stream at 1/3 and gets a
  410 Gone at 2/3 (the controller lists again), rescues still checked;
- evictions right (the pods made unhealthy) and wrong (any other pod), and the server's
  own CPU next to the controller's;
- the floor: DIR/floor, a client that only receives the pods watch (epoll_wait, then read
  until the socket is empty), alone on the server for the same 1,000/s and 5,000/s
  phases: its CPU per event is what being woken and handed the bytes costs on this
  machine, before any decoding;
- with --tls (the default when nghttpx is installed): a second controller through nghttpx
  (TLS, ALPN h2, a bearer token), its sync and the 1,000/s and 5,000/s phases again, with
  nghttpx's CPU counted as the server's.

Pods are served in protobuf when the controller's Accept header asks for it, as
kube-apiserver serves them (--no-protobuf: JSON whatever it asks); the report says which
encoding each pods LIST and watch was served in.

It exits non-zero when an eviction was wrong, a rescue is missing, or a process failed.
Nothing here is asserted on time: the figures are printed.  Every process it starts is
killed on every way out (and dies with it: PR_SET_PDEATHSIG).
"""
import argparse
import atexit
import ctypes
import fcntl
import json
import shutil
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from test.apiserver import h2proxy  # noqa: E402
from test.apiserver.kube_apiserver import make_certs  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
NODES = {5000: 200, 150000: 5000, 500000: 65000}
CHILDREN = []
CTL_ARGS = []  # --ctl-arg: more flags for every controller started
SRV_ARGS = []  # more flags for every benchsrv started (--no-protobuf)

POLICY = """apiVersion: device-descheduler/v1alpha1
kind: DeviceDeschedulerPolicy
signals:
  podResourceHealth: {enabled: true, for: 0s}
eviction:
  retry: {initialBackoff: 100ms, maxBackoff: 1s}
  limits: {window: 1m, maxPerNode: 0, maxPerNamespace: 0, maxTotal: 0, maxInFlight: 0}
  circuitBreaker: {enabled: false}
"""


def die_with_parent():
    """Runs in the child before exec: SIGKILL when the driver dies, however it dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, preexec_fn=die_with_parent, **kw)
    CHILDREN.append(p)
    return p


def kill_all():
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass


def stop(p, sig=signal.SIGTERM, wait=15):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid, user_only=False):
    """utime + stime (or utime alone) of a process, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + (0 if user_only else int(fields[12]))) / CLK_TCK


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def mib(kb):
    return kb / 1024.0


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


class Server:
    def __init__(self, build, data, watchlist, log):
        cmd = [os.path.join(build, "benchsrv"), data] + (["--watchlist"] if watchlist else []) + SRV_ARGS
        self.p = spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        line = self.p.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError("benchsrv did not start")
        self.port, self.pods, self.nodes = int(line[1]), int(line[2]), int(line[3])

    def ask(self, cmd, want):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("benchsrv exited")
            if line.startswith(want + " "):
                return json.loads(line[len(want) + 1:])
            if line.startswith("error"):
                raise RuntimeError(line.strip())

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Controller:
    def __init__(self, binary, tmp, port, log, tls=None):
        """tls: (server URL, CA file) to connect through the TLS front with a bearer token."""
        self.kubeconfig = os.path.join(tmp, "kubeconfig")
        server, cluster, user = f"http://127.0.0.1:{port}", "", "{}"
        if tls:
            server, cluster, user = tls[0], f", certificate-authority: '{tls[1]}'", "{token: bench-e2e-token}"
        with open(self.kubeconfig, "w") as f:
            f.write(
                "apiVersion: v1\nkind: Config\n"
                f"clusters: [{{name: bench, cluster: {{server: '{server}'{cluster}}}}}]\n"
                f"users: [{{name: bench, user: {user}}}]\n"
                "contexts: [{name: bench, context: {cluster: bench, user: bench}}]\n"
                "current-context: bench\n")
        policy = os.path.join(tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write(POLICY)
        self.probe = free_port()
        self.metrics = free_port()
        log.write(f"---- bench-e2e: controller started at {time.strftime('%H:%M:%S')}\n")
        log.flush()
        cmd = [binary, "--policy-config-file", policy, "--kubeconfig", self.kubeconfig,
               "--metrics-bind-address", f"127.0.0.1:{self.metrics}",
               "--health-probe-bind-address", f"127.0.0.1:{self.probe}",
               "--kube-api-qps", "1000", "--kube-api-burst", "1000", "-v", "0"] + CTL_ARGS
        self.t0 = time.monotonic()
        self.p = spawn(cmd, stdout=log, stderr=log)
        self.pid = self.p.pid

    def wait_ready(self, limit_s):
        url = f"http://127.0.0.1:{self.probe}/readyz"
        deadline = self.t0 + limit_s
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"controller exited with status {self.p.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - self.t0
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"controller not ready after {limit_s} s")

    def cached(self, want=None):
        """cached_objects{resource=...} from /metrics (refreshed once a second: waits up to 5 s for want)."""
        deadline = time.monotonic() + 5
        while True:
            out = {}
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if "cached_objects{" in line and not line.startswith("#"):
                        res = line.split('resource="', 1)[1].split('"', 1)[0]
                        out[res] = int(float(line.rsplit(" ", 1)[1]))
            if want is None or all(out.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
                return out
            time.sleep(0.05)

    def stop(self):
        stop(self.p)


class Floor:
    """DIR/floor on the pods watch: the CPU of a client that only receives it."""

    def __init__(self, build, port, log):
        self.p = spawn([os.path.join(build, "floor"), str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=log, text=True, bufsize=1)
        self.pid = self.p.pid
        if self.p.stdout.readline().strip() != "READY":
            raise RuntimeError("floor did not start")

    def stop(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def generate(build, cache, pods, nodes):
    """The cached dataset, generated first when missing (under a lock: runs may share the cache)."""
    d = os.path.join(cache, str(pods))
    done = os.path.join(d, "DONE")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(cache, f".{pods}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done):
            with open(done) as f:
                parts = f.read().split()
            if len(parts) >= 3 and parts[0] == "bench-e2e-format-2" and parts[1:3] == [str(pods), str(nodes)]:
                return d, None
        t = time.monotonic()
        subprocess.run([os.path.join(build, "gen"), d, str(pods), str(nodes)], check=True,
                       stdout=subprocess.DEVNULL)
        return d, time.monotonic() - t


def sync_once(args, data, tmp, watchlist, log):
    srv = Server(args.build, data, watchlist, log)
    try:
        s0 = cpu_s(srv.p.pid)
        ctl = Controller(args.bin, tmp, srv.port, log)
        try:
            t = ctl.wait_ready(300)
            rss = status_kb(ctl.pid, "VmRSS")
            hwm = status_kb(ctl.pid, "VmHWM")
            ctl_cpu = cpu_s(ctl.pid)
            cached = ctl.cached({"pods": srv.pods, "nodes": srv.nodes})
        finally:
            ctl.stop()
        srv_cpu = cpu_s(srv.p.pid) - s0
        st = srv.ask("stats", "stats")
    finally:
        srv.stop()
    return {"sync_s": t, "rss_kb": rss, "hwm_kb": hwm, "cached": cached, "ctl_cpu": ctl_cpu, "srv_cpu": srv_cpu,
            "stats": st}


def run_phase(srv, ctl, spec, front=()):
    """One phase; front: the TLS front's processes, counted as the server's."""
    pids = [srv.p.pid] + list(front)
    c0, t0 = cpu_s(ctl.pid), time.monotonic()
    s0, u0 = sum(cpu_s(p) for p in pids), sum(cpu_s(p, True) for p in pids)
    res = srv.ask("phase " + spec, "result")
    res["ctl_cpu"] = cpu_s(ctl.pid) - c0
    res["srv_cpu"] = sum(cpu_s(p) for p in pids) - s0
    res["srv_user"] = sum(cpu_s(p, True) for p in pids) - u0
    res["wall"] = time.monotonic() - t0
    if ctl.p.poll() is not None:
        raise RuntimeError(f"controller exited with status {ctl.p.returncode}")
    return res


def fmt_lat(v):
    return f"{pct(v, 50):6.2f} {pct(v, 99):6.2f} {max(v) if v else float('nan'):6.2f}"


def bench_size(args, pods, tmp, log):
    nodes = NODES.get(pods, max(1, pods // 30))
    data, gen_s = generate(args.build, args.cache, pods, nodes)
    out = {"pods": pods, "nodes": nodes, "gen_s": gen_s}
    if args.watchlist in ("both", "on"):
        out["wl"] = sync_once(args, data, tmp, True, log)
    srv = Server(args.build, data, args.watchlist == "on", log)
    try:
        s0 = cpu_s(srv.p.pid)
        ctl = Controller(args.bin, tmp, srv.port, log)
        try:
            out["sync_s"] = ctl.wait_ready(300)
            out["rss_sync_kb"] = status_kb(ctl.pid, "VmRSS")
            out["hwm_sync_kb"] = status_kb(ctl.pid, "VmHWM")
            out["sync_ctl_cpu"] = cpu_s(ctl.pid)
            out["cached"] = ctl.cached({"pods": pods, "nodes": nodes})
            out["sync_srv_cpu"] = cpu_s(srv.p.pid) - s0
            ms, h = args.phase_ms, args.health
            out["p1000"] = run_phase(srv, ctl, f"rate=1000 ms={ms} health={h}")
            out["p5000"] = run_phase(srv, ctl, f"rate=5000 ms={ms} health={h}")
            out["fault"] = run_phase(srv, ctl, f"rate=1000 ms={ms} health={max(10, h // 10)} close=1 gone=1 "
                                               "grace_ms=60000")
            out["hwm_kb"] = status_kb(ctl.pid, "VmHWM")
            out["rss_end_kb"] = status_kb(ctl.pid, "VmRSS")
            out["cached_end"] = ctl.cached()
        finally:
            ctl.stop()
        fl = Floor(args.build, srv.port, log)
        try:
            out["floor"] = {n: run_phase(srv, fl, f"rate={rate} ms={args.phase_ms} health=0")
                            for n, rate in (("p1000", 1000), ("p5000", 5000))}
        finally:
            fl.stop()
        if args.tls:
            out["tls"] = tls_pass(args, srv, tmp, log)
        out["stats"] = srv.ask("stats", "stats")
    finally:
        srv.stop()
    return out


def tls_pass(args, srv, tmp, log):
    """A second controller through nghttpx: TLS with ALPN h2 and a bearer token, as a client of
    kube-apiserver sees it (nghttpx passes the requests on to benchsrv as HTTP/1.1). Its sync
    and the two churn phases; nghttpx's CPU is counted as the server's."""
    certs = os.path.join(tmp, "tls")
    if not os.path.exists(os.path.join(certs, "server.crt")):
        os.makedirs(certs, exist_ok=True)
        make_certs(certs)
    front = h2proxy.H2Proxy(certs, f"http://127.0.0.1:{srv.port}")
    front.start()
    atexit.register(front.stop)  # nghttpx daemonizes: PR_SET_PDEATHSIG does not reach it
    out = {}
    try:
        pids = [front.pid] + front.workers()
        s0 = sum(cpu_s(p) for p in pids)
        ctl = Controller(args.bin, tmp, srv.port, log, tls=(front.url, os.path.join(certs, "ca.crt")))
        try:
            out["sync_s"] = ctl.wait_ready(300)
            out["sync_ctl_cpu"] = cpu_s(ctl.pid)
            out["sync_srv_cpu"] = sum(cpu_s(p) for p in pids) - s0
            out["rss_sync_kb"] = status_kb(ctl.pid, "VmRSS")
            # The pods evicted by the plain run are gone: this LIST has that many fewer.
            out["want_pods"] = srv.pods - srv.ask("stats", "stats")["deleted"]
            out["cached"] = ctl.cached({"pods": out["want_pods"], "nodes": srv.nodes})
            ms, h = args.phase_ms, args.health
            out["p1000"] = run_phase(srv, ctl, f"rate=1000 ms={ms} health={h}", pids)
            out["p5000"] = run_phase(srv, ctl, f"rate=5000 ms={ms} health={h}", pids)
        finally:
            ctl.stop()
    finally:
        front.stop()
    return out


def phase_row(label, x):
    ev = max(1, x["events_written"])
    print(f"{label:11} {x['events_written']:9}  {x['ctl_cpu'] / ev * 1e6:16.1f} us {x['srv_cpu'] / ev * 1e6:6.1f} us"
          f" ({x['srv_cpu'] / max(x['ctl_cpu'], 1e-9) * 100:3.0f}%; {x['srv_user'] / ev * 1e6:4.1f} us)   "
          f"{fmt_lat(x['to_request_ms'])}   "
          f"{fmt_lat(x['to_accepted_ms'])}   {x['right']:5} {x['wrong']:5} {x['missing']:7}  {x['retried']:7}: "
          f"{max(x['retried_ms']) if x['retried_ms'] else 0:6.0f} ms")


def report(r):
    p = r["pods"]
    print(f"\n== {p:,} device pods on {r['nodes']:,} nodes"
          + (f" (dataset generated in {r['gen_s']:.1f} s)" if r["gen_s"] is not None else " (cached dataset)"))
    c = r["cached"]
    print(f"initial sync, paged LIST (limit=500): {r['sync_s']:6.2f} s to /readyz; cached_objects pods={c.get('pods')}"
          f" nodes={c.get('nodes')}; controller CPU {r['sync_ctl_cpu']:.2f} s, server CPU {r['sync_srv_cpu']:.2f} s")
    if "wl" in r:
        w = r["wl"]
        print(f"initial sync, WatchList:              {w['sync_s']:6.2f} s to /readyz; cached_objects pods="
              f"{w['cached'].get('pods')}; peak RSS {mib(w['hwm_kb']):.1f} MiB, RSS after sync {mib(w['rss_kb']):.1f} MiB;"
              f" controller CPU {w['ctl_cpu']:.2f} s, server CPU {w['srv_cpu']:.2f} s")
    print(f"RSS after sync {mib(r['rss_sync_kb']):.1f} MiB, peak at sync {mib(r['hwm_sync_kb']):.1f} MiB, "
          f"peak over the run {mib(r['hwm_kb']):.1f} MiB, at the end {mib(r['rss_end_kb']):.1f} MiB")
    print("phase       watch events  CPU/event: controller  server (share; user)   event->eviction request ms"
          "   ->201 ms (no retry)       right wrong missing  retried: ->201 max")
    print("                                                                        p50    p99    max"
          "      p50    p99    max")
    for name in ("p1000", "p5000", "fault"):
        phase_row({"p1000": "1,000/s", "p5000": "5,000/s", "fault": "faults"}[name], r[name])
    if "tls" in r:
        t = r["tls"]
        phase_row("1,000/s TLS", t["p1000"])
        phase_row("5,000/s TLS", t["p5000"])
    fl = r["floor"]
    print("floor (a client that only receives the same watch, alone): "
          + ", ".join(f"{x['ctl_cpu'] / max(1, x['events_written']) * 1e6:.1f} us an event at {label}"
                      for label, x in (("1,000/s", fl["p1000"]), ("5,000/s", fl["p5000"]))))
    if "tls" in r:
        t = r["tls"]
        print(f"TLS (h2, bearer token, through nghttpx): paged-LIST sync {t['sync_s']:.2f} s to /readyz, controller CPU "
              f"{t['sync_ctl_cpu']:.2f} s, server + nghttpx CPU {t['sync_srv_cpu']:.2f} s, RSS after sync "
              f"{mib(t['rss_sync_kb']):.1f} MiB")
    f = r["fault"]
    print(f"faults: {f['closes']} watch cut mid-stream, {f['gones']} 410 Gone (LISTs served in all: {f['lists']}, "
          f"watches: {f['watches']}); the health event right after each, to its eviction request: "
          + ", ".join(f"{v:.0f} ms" for v in f["after_fault_ms"])
          + f"; evictions of pods already gone: {sum(r[n]['dup'] for n in ('p1000', 'p5000', 'fault'))}")


def encodings(st):
    """Which encoding benchsrv served the pods LISTs and watches in (from its stats)."""
    return (f"pods served as protobuf: LIST {st['pod_lists_pb']}, WATCH {st['pod_watches_pb']} / as JSON: "
            f"LIST {st['pod_lists_json']}, WATCH {st['pod_watches_json']}")


def run_size(args, pods, tmp, log):
    """Benchmarks one size and prints its figures; returns what went wrong."""
    try:
        r = bench_size(args, pods, tmp, log)
    except Exception as e:  # noqa: BLE001 (report, clean up, go on with the next size)
        print(f"\n== {pods:,} device pods: FAILED: {e}")
        return [f"{pods}: {e}"]
    report(r)
    print(encodings(r["stats"]) + (" (with the TLS controller)" if "tls" in r else "")
          + (f"; WatchList sync: {encodings(r['wl']['stats'])}" if "wl" in r else ""))
    failed = []
    phases = [(n, r[n]) for n in ("p1000", "p5000", "fault")]
    if "tls" in r:
        phases += [("TLS " + n, r["tls"][n]) for n in ("p1000", "p5000")]
        if r["tls"]["cached"].get("pods") != r["tls"]["want_pods"]:
            failed.append(f"{pods}: cached_objects {r['tls']['cached']} after the TLS sync")
    for n, x in phases:
        if x["wrong"] or x["missing"] or x["unknown"]:
            failed.append(f"{pods} {n}: {x['wrong']} wrong, {x['missing']} missing, "
                          f"{x['unknown']} unknown evictions")
    if r["cached"].get("pods") != pods or r["cached"].get("nodes") != r["nodes"]:
        failed.append(f"{pods}: cached_objects {r['cached']} after sync")
    if r.get("wl") and r["wl"]["cached"].get("pods") != pods:
        failed.append(f"{pods}: cached_objects {r['wl']['cached']} after the WatchList sync")
    if r["stats"]["not_served"]:
        failed.append(f"{pods}: {r['stats']['not_served']} requests not served (see the log)")
    return failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--sizes", default="5000 150000 500000")
    ap.add_argument("--phase-ms", type=int, default=15000)
    ap.add_argument("--health", type=int, default=200)
    ap.add_argument("--ctl-arg", action="append", default=[],
                    help="one more flag for the controller (repeat for more), e.g. --ctl-arg=--v=2")
    ap.add_argument("--watchlist", choices=("both", "on", "off"), default="both")
    ap.add_argument("--tls", action=argparse.BooleanOptionalAction, default=h2proxy.available(),
                    help="also run a controller over TLS (h2, bearer token) through nghttpx (default: when "
                         "nghttpx is installed)")
    ap.add_argument("--no-protobuf", action="store_true",
                    help="benchsrv serves pods as JSON even when the controller asks for protobuf")
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "device-descheduler",
                                                     "bench-e2e"))
    args = ap.parse_args()
    CTL_ARGS.extend(args.ctl_arg)
    if args.no_protobuf:
        SRV_ARGS.append("--no-protobuf")
    atexit.register(kill_all)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda n, f: sys.exit(128 + n))
    t_all = time.monotonic()
    sizes = [int(s) for s in args.sizes.replace(",", " ").split()]
    failed = []
    os.makedirs(args.cache, exist_ok=True)
    kept_log = os.path.join(args.cache, "last-run.log")
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        # The log of this run only (another may run beside it), kept as last-run.log at the end.
        log_path = os.path.join(tmp, "log")
        try:
            with open(log_path, "w") as log:
                print(f"bench-e2e: {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                      f"phases of {args.phase_ms} ms with {args.health} health events; the server's and the "
                      f"controller's logs: {kept_log}")
                for pods in sizes:
                    failed += run_size(args, pods, tmp, log)
            if failed:
                with open(log_path, errors="replace") as f:
                    tail = [line[:300] + "\n" for line in f.readlines()[-40:]]
                sys.stdout.write("\n-- last lines of the log:\n" + "".join(tail))
        finally:
            if os.path.exists(log_path):
                shutil.copyfile(log_path, kept_log)
    print(f"\nbench-e2e: {time.monotonic() - t_all:.0f} s in all")
    if failed:
        print("bench-e2e: FAILED:\n  " + "\n  ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
