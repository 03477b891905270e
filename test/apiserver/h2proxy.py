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

A dead connection that nobody notices (a middlebox that stops forwarding but keeps the
sockets open) is modelled by Relay, a TCP relay in front of the proxy:
    r = Relay(p.port).start()   # r.port, r.url; kubeconfigs point at r.url instead of p.url
    r.freeze()                  # connections open now stop forwarding, both ways, and stay
                                # open; connections made later are relayed as usual
    r.freeze(new_too=True)      # and so are the ones accepted from now on, until r.thaw()
    r.accepted                  # connections accepted so far
    r.stop()
and for C tests, a relay process kept in DIR/h2relay.json:
    h2proxy.py relay-start --dir DIR --owner-pid PID   # prints the relay's port; the relay
                                                       # exits with PID (or relay-stop)
    h2proxy.py relay-freeze|relay-stop --dir DIR

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
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
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


class Relay:
    """A TCP relay to 127.0.0.1:target_port that can stop forwarding the connections it carries
    while keeping their sockets open (see the module's docstring).  One thread, one selector."""

    def __init__(self, target_port, port=0):
        self.target_port = target_port
        self.port = port
        self.accepted = 0
        self._lsock = None
        self._sel = None
        self._peer = {}        # socket -> the other socket of its pair
        self._frozen = set()   # sockets of frozen pairs: open, never read or written again
        self._lock = threading.Lock()
        self._freeze_req = threading.Event()
        self._blackhole = False  # accepted connections are frozen at once
        self._frozen_ack = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self.on_frozen = None  # called from the relay's loop once a freeze took effect

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def listen(self):
        self._lsock = socket.socket()
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", self.port))
        self._lsock.listen(64)
        self._lsock.setblocking(False)
        self.port = self._lsock.getsockname()[1]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._lsock, selectors.EVENT_READ)
        return self

    def start(self):
        """Listens and relays from a background thread."""
        self.listen()
        self._thread = threading.Thread(target=self.serve, daemon=True)
        self._thread.start()
        return self

    def freeze(self, timeout=5.0, new_too=False):
        """Every connection open now stops forwarding, both ways, and stays open; with new_too,
        so does every connection accepted until thaw()."""
        self._blackhole = self._blackhole or new_too
        self._frozen_ack.clear()
        self._freeze_req.set()
        if self._thread is not None and not self._frozen_ack.wait(timeout):
            raise RuntimeError("relay did not freeze")

    def thaw(self):
        """Connections accepted from now on are relayed again (frozen ones stay frozen)."""
        self._blackhole = False

    def _close_pair(self, a):
        b = self._peer.pop(a, None)
        for x in (a, b):
            if x is None:
                continue
            self._peer.pop(x, None)
            try:
                self._sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def _do_freeze(self):
        for x in list(self._peer):
            try:
                self._sel.unregister(x)
            except (KeyError, ValueError):
                pass
            self._frozen.add(x)
        self._peer.clear()
        self._freeze_req.clear()
        self._frozen_ack.set()
        if self.on_frozen:
            self.on_frozen()

    def serve(self, should_stop=None):
        """Relays until stop() (or should_stop() is true)."""
        while not self._stop.is_set() and not (should_stop and should_stop()):
            if self._freeze_req.is_set():
                self._do_freeze()
            for key, _ in self._sel.select(timeout=0.1):
                s = key.fileobj
                if s is self._lsock:
                    try:
                        c, _ = self._lsock.accept()
                    except OSError:
                        continue
                    try:
                        u = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                    except OSError:
                        c.close()
                        continue
                    self.accepted += 1
                    if self._blackhole:
                        self._frozen.update((c, u))
                        continue
                    self._peer[c], self._peer[u] = u, c
                    self._sel.register(c, selectors.EVENT_READ)
                    self._sel.register(u, selectors.EVENT_READ)
                    continue
                if s not in self._peer:
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._close_pair(s)
                    continue
                try:
                    self._peer[s].sendall(data)
                except OSError:
                    self._close_pair(s)
        self._shutdown()

    def _shutdown(self):
        for x in list(self._peer) + list(self._frozen):
            try:
                x.close()
            except OSError:
                pass
        self._peer.clear()
        self._frozen.clear()
        if self._lsock is not None:
            self._lsock.close()
            self._lsock = None

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


def _relay_state(dir):
    with open(os.path.join(dir, "h2relay.json")) as f:
        return json.load(f)


def _relay_serve(dir, owner_pid):
    """The relay process of relay-start: in front of the proxy recorded in dir, until
    SIGTERM or until owner_pid exits; SIGUSR1 freezes."""
    p = H2Proxy(dir)
    r = Relay(p.port).listen()
    signal.signal(signal.SIGUSR1, lambda *_: r._freeze_req.set())
    signal.signal(signal.SIGTERM, lambda *_: r._stop.set())
    state = os.path.join(dir, "h2relay.json")
    r.on_frozen = lambda: open(os.path.join(dir, "h2relay.frozen"), "w").close()
    with open(state + ".tmp", "w") as f:
        json.dump({"port": r.port, "pid": os.getpid(), "url": r.url}, f)
    os.replace(state + ".tmp", state)
    r.serve(should_stop=lambda: not _alive(owner_pid) or not os.path.isdir(dir))
    try:
        os.unlink(state)
    except FileNotFoundError:
        pass


def _relay_start(dir, owner_pid, timeout=10.0):
    state = os.path.join(dir, "h2relay.json")
    try:
        os.unlink(state)
    except FileNotFoundError:
        pass
    subprocess.Popen([sys.executable, os.path.abspath(__file__), "relay-serve", "--dir", dir,
                      "--owner-pid", str(owner_pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(state):
            return _relay_state(dir)
        time.sleep(0.02)
    raise RuntimeError("the relay did not start")


def _relay_signal(dir, sig):
    """SIGUSR1 (freeze; returns once it took effect) or SIGTERM (stop; returns once it exited)."""
    frozen = os.path.join(dir, "h2relay.frozen")
    try:
        pid = _relay_state(dir)["pid"]
    except (OSError, ValueError, KeyError):
        return False
    try:
        os.unlink(frozen)
    except FileNotFoundError:
        pass
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    if sig == signal.SIGUSR1:
        deadline = time.time() + 5
        while time.time() < deadline and not os.path.exists(frozen):
            time.sleep(0.02)
        return os.path.exists(frozen)
    if sig == signal.SIGTERM:
        deadline = time.time() + 5
        while time.time() < deadline and _alive(pid):
            time.sleep(0.02)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description="nghttpx as an HTTP/2 TLS front for the test API server")
    ap.add_argument("op", choices=["start", "reload", "restart", "kill", "stop", "status", "connections",
                                   "relay-start", "relay-serve", "relay-freeze", "relay-stop"])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--grace-ms", type=int, default=None)
    ap.add_argument("--down-ms", type=int, default=0)
    ap.add_argument("--hard", action="store_true", help="restart with SIGKILL instead of SIGQUIT")
    ap.add_argument("--owner-pid", type=int, default=0, help="relay-start: the relay exits with this process")
    a = ap.parse_args(argv)
    if a.op == "relay-start":
        print(_relay_start(a.dir, a.owner_pid or os.getppid())["port"], flush=True)
        return 0
    if a.op == "relay-serve":
        _relay_serve(a.dir, a.owner_pid)
        return 0
    if a.op in ("relay-freeze", "relay-stop"):
        return 0 if _relay_signal(a.dir, signal.SIGUSR1 if a.op == "relay-freeze" else signal.SIGTERM) else 1
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
