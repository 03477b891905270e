#!/usr/bin/env python3
"""nghttpx (Debian's nghttp2-proxy) as an HTTP/2 front for the test API server.

The test API server speaks HTTP/1.1 only; real kube-apiservers speak HTTP/2 (ALPN "h2")
and clients multiplex their watches over one connection.  This puts nghttpx in front:

    client --TLS, ALPN h2 (HTTP/2)--> nghttpx 127.0.0.1:PORT --TLS, HTTP/1.1--> test API server

Frontend: TLS with the server's own certificate (DIR/server.crt, issued by DIR/ca.crt for
127.0.0.1 and localhost), so clients keep trusting DIR/ca.crt.  Backend: TLS to the test
server, verified with DIR/ca.crt (with a --plain server the backend is plain HTTP).
Responses are streamed (nghttpx forwards each chunk as a DATA frame; watches are not
buffered), and every idle/read/write timeout is raised to an hour or disabled so that
stalled watches stay open as long as the test server keeps them.

Files in DIR: kubeconfig-h2 (DIR/kubeconfig with the server URL pointed at the proxy),
kubeconfig-admin-h2, h2proxy.json (port, backend), h2proxy.pid (nghttpx main process),
h2proxy-error.log, h2proxy-access.log.

Python:
    p = H2Proxy(srv.dir, srv.url).start()   # p.url, p.kubeconfig, p.port
    p.reload()      # graceful: new worker; the old one sends GOAWAY, finishes its streams
                    # for grace_ms, then closes its connections
    p.restart()     # SIGQUIT (GOAWAY) + wait for exit, start again on the same port
    p.kill()        # SIGKILL main and worker: connections just die (no GOAWAY)
    p.start()       # again on the same port after kill()/stop()
    p.connections() # ESTABLISHED TCP connections accepted on the proxy port
    p.stop()

Command line (for C tests, which cannot call Python; state is kept in DIR):
    h2proxy.py start|reload|restart|kill|stop|status|connections --dir DIR [--grace-ms N]

What the proxy does with the test server's faults (observed with curl --http2 -v, nghttpx
1.52, curl 7.88):
  * POST /_test/drop-watches cuts the backend HTTP/1.1 connection of a watch without the
    final chunk: nghttpx sends RST_STREAM(INTERNAL_ERROR) on that stream only; the client's
    other streams on the same connection go on ("HTTP/2 stream 1 was not closed cleanly:
    INTERNAL_ERROR (err 2)", CURLE_HTTP2_STREAM).
  * reload()/restart(): the old worker sends GOAWAY; open streams keep flowing until they end
    or the grace period (grace_ms) runs out, then the TCP connection is closed and streams
    still open fail; new requests go to a new connection.
  * kill(): the TCP connection is closed without GOAWAY: every stream on it fails at once.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

NGHTTPX = "nghttpx"
LONG = "1h"


def available():
    """True when the nghttpx binary is installed."""
    return shutil.which(NGHTTPX) is not None


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _alive(pid):
    """True for a running process (a zombie counts as dead)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def established(port, host_hex="0100007F"):
    """Number of ESTABLISHED TCP connections whose local end is 127.0.0.1:port (accepted ones)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            la, st = fields[1], fields[3]
            h, p = la.split(":")
            if st == "01" and int(p, 16) == port and h == host_hex:
                n += 1
    return n


class H2Proxy:
    """nghttpx in front of the test API server in `dir` (whose base URL is `backend_url`)."""

    def __init__(self, dir, backend_url=None, port=0, grace_ms=1000):
        self.dir = os.path.abspath(dir)
        self.state_path = os.path.join(self.dir, "h2proxy.json")
        self.pid_path = os.path.join(self.dir, "h2proxy.pid")
        self.error_log = os.path.join(self.dir, "h2proxy-error.log")
        self.access_log = os.path.join(self.dir, "h2proxy-access.log")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig-h2")
        self.kubeconfig_admin = os.path.join(self.dir, "kubeconfig-admin-h2")
        self.grace_ms = grace_ms
        if backend_url is None:
            with open(os.path.join(self.dir, "url")) as f:
                backend_url = f.read().strip()
        self.backend_url = backend_url
        self.port = port
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                stt = json.load(f)
            self.port = port or stt["port"]
            self.grace_ms = stt.get("grace_ms", grace_ms)

    @classmethod
    def from_dir(cls, dir):
        """The proxy recorded in dir/h2proxy.json (started by another process)."""
        return cls(dir)

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def pid(self):
        try:
            with open(self.pid_path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def running(self):
        p = self.pid
        return p is not None and _alive(p)

    def workers(self):
        p = self.pid
        return [c for c in _children(p) if _alive(c)] if p else []

    # ------------------------------------------------------------------ lifecycle
    def _command(self):
        u = self.backend_url.split("://", 1)
        tls = u[0] == "https"
        bhost, bport = u[1].rstrip("/").rsplit(":", 1)
        # sni=localhost: nghttpx checks the backend certificate against that name (its IP check fails).
        backend = "%s,%s;;proto=http/1.1%s" % (bhost, bport, ";tls;sni=localhost" if tls else "")
        # --conf=/dev/null: Debian's /etc/nghttpx/nghttpx.conf would add errorlog-syslog and a backend.
        cmd = [NGHTTPX, "--conf=/dev/null", "--frontend=127.0.0.1,%d" % self.port, "--backend=" + backend,
               "--workers=1", "--daemon", "--pid-file=" + self.pid_path,
               "--errorlog-file=" + self.error_log, "--accesslog-file=" + self.access_log,
               "--accesslog-format=$remote_addr:$remote_port $alpn \"$request\" $status $body_bytes_sent "
               "$request_time s stream $pid",
               "--log-level=INFO", "--no-via", "--no-ocsp", "--no-server-rewrite",
               # Long-lived, unbuffered watches: no idle/read/write timeouts that could cut one.
               "--frontend-http2-read-timeout=" + LONG, "--frontend-read-timeout=" + LONG,
               "--frontend-write-timeout=" + LONG, "--frontend-keep-alive-timeout=" + LONG,
               "--stream-read-timeout=0", "--stream-write-timeout=0",
               "--backend-read-timeout=" + LONG, "--backend-write-timeout=" + LONG,
               "--backend-keep-alive-timeout=" + LONG, "--backend-connect-timeout=5s",
               "--backend-connections-per-frontend=0",
               "--frontend-http2-max-concurrent-streams=256",
               # A reload's old worker keeps serving its open streams this long (after GOAWAY).
               "--worker-process-grace-shutdown-period=%dms" % max(1, self.grace_ms)]
        if tls:
            cmd.append("--cacert=" + os.path.join(self.dir, "ca.crt"))
        cmd += [os.path.join(self.dir, "server.key"), os.path.join(self.dir, "server.crt")]
        return cmd

    def _write_kubeconfigs(self):
        for src, dst in (("kubeconfig", self.kubeconfig), ("kubeconfig-admin", self.kubeconfig_admin)):
            sp = os.path.join(self.dir, src)
            if not os.path.exists(sp):
                continue
            with open(sp) as f:
                text = f.read()
            text = re.sub(r"(server:\s*)\S+", lambda m: m.group(1) + self.url, text)
            tmp = dst + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, dst)

    def _save(self):
        with open(self.state_path + ".tmp", "w") as f:
            json.dump({"port": self.port, "backend": self.backend_url, "url": self.url,
                       "grace_ms": self.grace_ms}, f)
        os.replace(self.state_path + ".tmp", self.state_path)

    def _h2_ready(self, timeout=0.5):
        """A TLS handshake on the port that selects ALPN h2."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.crt"))
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                    return t.selected_alpn_protocol() == "h2"
        except (OSError, ssl.SSLError):
            return False

    def start(self, timeout=10.0):
        """Start nghttpx (on self.port, or a free port the first time); wait until it answers TLS+h2."""
        if not available():
            raise RuntimeError("nghttpx is not installed (apt-get install -y nghttp2-proxy)")
        if self.running():
            raise RuntimeError("nghttpx already running (pid %d)" % self.pid)
        fixed = bool(self.port)
        deadline = time.time() + timeout
        for _ in range(20):
            if not fixed:
                self.port = _free_port()
            try:
                os.unlink(self.pid_path)
            except FileNotFoundError:
                pass
            # The daemon keeps the descriptors it inherits: a pipe here would never reach EOF.
            with open(self.error_log + ".stderr", "ab") as errf:
                r = subprocess.run(self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=errf)
            if r.returncode != 0:
                raise RuntimeError("nghttpx failed (exit %d); see %s.stderr" % (r.returncode, self.error_log))
            while time.time() < deadline:
                if self._h2_ready():
                    self._save()
                    self._write_kubeconfigs()
                    return self
                if self.pid is not None and not self.running():
                    break  # e.g. the port was taken meanwhile, or (fixed port) still in TIME_WAIT
                time.sleep(0.02)
            if time.time() >= deadline:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nghttpx did not come up on port %d; see %s" % (self.port, self.error_log))

    def reload(self, wait=True):
        """Graceful restart without a refused connection (SIGHUP): a new worker takes the listener,
        the old one sends GOAWAY and serves its open streams for grace_ms, then closes."""
        old = set(self.workers())
        os.kill(self.pid, signal.SIGHUP)
        if wait:
            deadline = time.time() + 10
            while time.time() < deadline and not (set(self.workers()) - old):
                time.sleep(0.02)
            if not (set(self.workers()) - old):
                raise RuntimeError("nghttpx did not start a new worker after SIGHUP")
            while time.time() < deadline and not self._h2_ready():
                time.sleep(0.02)
        return old

    def wait_workers_gone(self, pids, timeout=None):
        """Waits until the given (old) worker processes have exited."""
        deadline = time.time() + (timeout if timeout is not None else self.grace_ms / 1000.0 + 10)
        while time.time() < deadline:
            if not any(_alive(p) for p in pids):
                return True
            time.sleep(0.02)
        return False

    def restart(self, down_ms=0, graceful=True):
        """Stop (graceful: SIGQUIT = GOAWAY, streams served up to grace_ms; else SIGKILL), stay down
        down_ms, start again on the same port."""
        if graceful:
            self.stop(sig=signal.SIGQUIT, timeout=self.grace_ms / 1000.0 + 10)
        else:
            self.kill()
        time.sleep(down_ms / 1000.0)
        return self.start()

    def kill(self):
        """SIGKILL the main process and its workers: connections are cut without GOAWAY."""
        pids = []
        if self.pid:
            pids = [self.pid] + _children(self.pid)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._wait_dead(pids, 5)

    def _wait_dead(self, pids, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.02)
        return not any(_alive(p) for p in pids)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Stop nghttpx (SIGTERM: at once; SIGQUIT: gracefully), SIGKILL after timeout."""
        p = self.pid
        if not p or not _alive(p):
            return
        pids = [p] + _children(p)
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            return
        if not self._wait_dead(pids, timeout):
            self.kill()

    def connections(self):
        """ESTABLISHED client connections to the proxy port (from /proc/net/tcp)."""
        return established(self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description="nghttpx as an HTTP/2 TLS front for the test API server")
    ap.add_argument("op", choices=["start", "reload", "restart", "kill", "stop", "status", "connections"])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--grace-ms", type=int, default=None)
    ap.add_argument("--down-ms", type=int, default=0)
    ap.add_argument("--hard", action="store_true", help="restart with SIGKILL instead of SIGQUIT")
    a = ap.parse_args(argv)
    p = H2Proxy(a.dir, port=a.port)
    if a.grace_ms is not None:
        p.grace_ms = a.grace_ms
    if a.op == "start":
        p.start()
        print("READY %s" % p.url, flush=True)
    elif a.op == "reload":
        old = p.reload()
        print(" ".join(str(x) for x in sorted(old)))
    elif a.op == "restart":
        p.restart(down_ms=a.down_ms, graceful=not a.hard)
        print("READY %s" % p.url, flush=True)
    elif a.op == "kill":
        p.kill()
    elif a.op == "stop":
        p.stop()
    elif a.op == "status":
        print(json.dumps({"running": p.running(), "pid": p.pid, "workers": p.workers(), "port": p.port,
                          "url": p.url}))
        return 0 if p.running() else 1
    elif a.op == "connections":
        print(p.connections())
    return 0


if __name__ == "__main__":
    sys.exit(main())
