#!/usr/bin/env python3
"""Run one C integration test binary against its own test API server.

Usage: run_with_apiserver.py [--plain] [--server-arg=ARG ...] BINARY [ARGS...]

Starts test/apiserver/kube_apiserver.py in a fresh temporary directory (through
test/apiserver/harness.py when it is there), runs BINARY with KTEST_DIR,
KTEST_URL, KTEST_ADMIN_TOKEN and KUBECONFIG=DIR/kubeconfig in its environment,
forwards its output, stops the server and exits with the binary's status.
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


def main(argv):
    plain, extra = False, []
    while argv and argv[0].startswith("--"):
        a = argv.pop(0)
        if a == "--plain":
            plain = True
        elif a.startswith("--server-arg="):
            extra.append(a[len("--server-arg="):])
        else:
            print("run_with_apiserver.py: unknown option %s" % a, file=sys.stderr)
            return 2
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    tmpdir = tempfile.mkdtemp(prefix="ktest-")
    srv = _server(tmpdir, plain, extra)
    try:
        env = dict(os.environ)
        env.update(KTEST_DIR=tmpdir, KTEST_URL=srv.url, KTEST_ADMIN_TOKEN=srv.admin_token,
                   KUBECONFIG=os.path.join(tmpdir, "kubeconfig"))
        proc = subprocess.Popen(argv, env=env)
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            rc = proc.wait()
    finally:
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
