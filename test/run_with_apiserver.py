#!/usr/bin/env python3
"""Run one C integration test binary against its own test API server.

Usage: run_with_apiserver.py [--plain] [--h2] [--server-arg=ARG ...] BINARY [ARGS...]

Starts test/apiserver/kube_apiserver.py in a fresh temporary directory (through
test/apiserver/harness.py when it is there), runs BINARY with KTEST_DIR,
KTEST_URL, KTEST_ADMIN_TOKEN and KUBECONFIG=DIR/kubeconfig in its environment,
forwards its output, stops the server and exits with the binary's status.

--h2 (implied when the binary's name contains "_h2"; needs nghttpx): also starts
test/apiserver/h2proxy.py, nghttpx speaking HTTP/2 over TLS (ALPN h2) in front of the
server, and points the client at it: KUBECONFIG=DIR/kubeconfig-h2, and DIR/kubeconfig
and DIR/kubeconfig-admin are rewritten to the proxy (the originals are kept as
DIR/kubeconfig-direct and DIR/kubeconfig-admin-direct; kubeconfig-cert stays direct,
as nghttpx does not pass client certificates on).  KTEST_URL stays the server's own
URL, so the admin API (/_test/) and kubeconfigs built from KTEST_URL bypass the proxy.
Also set: KTEST_H2_URL (the proxy) and KTEST_H2_CTL, a shell command prefix that takes
one of start|reload|restart|kill|stop|status|connections (see h2proxy.py).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class _Spawned:
    """Fallback when harness.py is missing: the server as a child process."""

    def start(self, tmpdir, plain=False, extra=()):
        cmd = [sys.executable, os.path.join(HERE, "apiserver", "kube_apiserver.py"), "--dir", tmpdir] + list(extra)
        if plain:
            cmd.append("--plain")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
        deadline = time.monotonic() + 60
        while True:
            line = self.proc.stdout.readline()
            if line.startswith("READY "):
                self.url = line.split(None, 1)[1].strip()
                break
            if not line or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("test API server did not become ready")
        self.kubeconfig = os.path.join(tmpdir, "kubeconfig")
        self.ca_file = os.path.join(tmpdir, "ca.crt")
        with open(os.path.join(tmpdir, "admin-token")) as f:
            self.admin_token = f.read().strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _server(tmpdir, plain, extra):
    try:
        sys.path.insert(0, ROOT)
        from test.apiserver.harness import ApiServer  # noqa: E402
    except ImportError:
        s = _Spawned()
        s.start(tmpdir, plain, extra)
        return s
    s = ApiServer()
    opts = {}
    for a in extra:  # --foo-bar=1 -> foo_bar="1"
        k, _, v = a.lstrip("-").partition("=")
        opts[k.replace("-", "_")] = v if v else True
    s.start(tmpdir, plain=plain, **opts)
    return s


def _start_h2(srv, tmpdir):
    """Starts nghttpx in front of srv; returns (proxy, extra environment)."""
    sys.path.insert(0, os.path.join(HERE, "apiserver"))
    import h2proxy  # noqa: E402
    if not h2proxy.available():
        raise RuntimeError("--h2 needs nghttpx: apt-get install -y nghttp2-proxy")
    proxy = h2proxy.H2Proxy(tmpdir, srv.url).start()
    for name in ("kubeconfig", "kubeconfig-admin"):
        src = os.path.join(tmpdir, name)
        if os.path.exists(src):
            shutil.copyfile(src, src + "-direct")
            shutil.copyfile(os.path.join(tmpdir, name + "-h2"), src)
    ctl = "%s %s --dir %s" % (sys.executable, os.path.join(HERE, "apiserver", "h2proxy.py"), tmpdir)
    return proxy, {"KTEST_H2_URL": proxy.url, "KTEST_H2_CTL": ctl,
                   "KUBECONFIG": os.path.join(tmpdir, "kubeconfig-h2")}


def main(argv):
    plain, h2, extra = False, False, []
    while argv and argv[0].startswith("--"):
        a = argv.pop(0)
        if a == "--plain":
            plain = True
        elif a == "--h2":
            h2 = True
        elif a.startswith("--server-arg="):
            extra.append(a[len("--server-arg="):])
        else:
            print("run_with_apiserver.py: unknown option %s" % a, file=sys.stderr)
            return 2
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if "_h2" in os.path.basename(argv[0]):
        h2 = True
    tmpdir = tempfile.mkdtemp(prefix="ktest-")
    srv = _server(tmpdir, plain, extra)
    proxy = None
    try:
        env = dict(os.environ)
        env.update(KTEST_DIR=tmpdir, KTEST_URL=srv.url, KTEST_ADMIN_TOKEN=srv.admin_token,
                   KUBECONFIG=os.path.join(tmpdir, "kubeconfig"))
        if h2:
            proxy, more = _start_h2(srv, tmpdir)
            env.update(more)
        proc = subprocess.Popen(argv, env=env)
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            rc = proc.wait()
    finally:
        if proxy is not None:
            proxy.stop()
        srv.stop()
    if rc == 0 and not os.environ.get("KTEST_KEEP"):
        shutil.rmtree(tmpdir, ignore_errors=True)
    elif rc != 0:
        print("run_with_apiserver.py: %s exited with %d; server files kept in %s" % (argv[0], rc, tmpdir),
              file=sys.stderr)
    # A signal death (negative) becomes 128+N like a shell reports it.
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
