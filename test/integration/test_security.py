"""Security checks of the whole controller process (issue: prove it under fire, item 6).

- The bearer token never appears in any output, at the highest verbosity, through a whole
  eviction and a token rotation.
- TLS verification is on unless the kubeconfig says insecure-skip-tls-verify: a server whose
  certificate is not signed by the configured CA is refused with a clear error, and with
  insecure-skip-tls-verify the controller works and logs a warning.
- The product never shells out: no system(), popen() or exec*() in controller/ or k8sclient/.
"""

import os
import re
import shutil
import tempfile
import unittest

from test.integration.scenario import (ROOT, Cluster, Controller, base_policy, start_apiserver,
                                       wait_evictions, wait_for)


def exec_kubeconfig(path, server, ca, srv_dir, mode):
    """A kubeconfig whose user is test/exec_plugin.py in MODE (an exec credential plugin)."""
    with open(path, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: t\n"
                "clusters:\n- name: c\n  cluster:\n    server: %s\n    certificate-authority: %s\n" % (server, ca) +
                "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                "      command: %s\n      args: [%s, %s]\n      interactiveMode: Never\n"
                % (os.path.join(ROOT, "test", "exec_plugin.py"), mode, srv_dir) +
                "contexts:\n- name: t\n  context: {cluster: c, user: u}\n")
    return path


def kubeconfig(path, server, token, ca=None, insecure=False):
    cluster = "    server: %s\n" % server
    if insecure:
        cluster += "    insecure-skip-tls-verify: true\n"
    elif ca:
        cluster += "    certificate-authority: %s\n" % ca
    with open(path, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: t\n"
                "clusters:\n- name: c\n  cluster:\n" + cluster +
                "users:\n- name: u\n  user:\n    token: %s\n" % token +
                "contexts:\n- name: t\n  context: {cluster: c, user: u}\n")
    return path


class SecurityTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dd-security-")
        self.srv = start_apiserver(os.path.join(self.tmp, "srv"))
        self.cluster = Cluster(self.srv)
        with open(os.path.join(self.srv.dir, "token")) as f:
            self.token = f.read().strip()

    def tearDown(self):
        self.srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_token_never_logged_at_highest_verbosity(self):
        self.cluster.node("gpu-node-1")
        rs = self.cluster.replicaset("trainer")
        pod = self.cluster.pod("trainer-sec01", "gpu-node-1", rs=rs)
        ctl = Controller(self.srv, self.tmp, base_policy(), verbosity=10).start()
        try:
            ctl.wait_ready()
            self.cluster.set_device_health(pod, pod.devices[0])
            wait_evictions(self.srv, 1, name=pod.name, ctl=ctl)
            # A rejected token (401) must not be echoed either.
            self.srv.set_tokens({"rotated-token-xyz": "system:serviceaccount:kube-system:device-descheduler"})
            self.srv.drop_watches()
            ctl.wait_log(r"401|Unauthorized", timeout=10)
        finally:
            self.assertEqual(ctl.stop(), 0)
        log = ctl.log()
        self.assertGreater(len(log.splitlines()), 20, "expected a verbose log")
        self.assertNotIn(self.token, log)
        self.assertNotIn("rotated-token-xyz", log)
        self.assertNotRegex(log, r"(?i)authorization:\s*bearer")

    def test_exec_plugin_token_never_logged(self):
        """An exec plugin's token (the first one refused with a 401, the second used) is never
        logged at the highest verbosity, through an eviction."""
        self.cluster.node("gpu-node-1")
        rs = self.cluster.replicaset("trainer")
        pod = self.cluster.pod("trainer-sec03", "gpu-node-1", rs=rs)
        kc = exec_kubeconfig(os.path.join(self.tmp, "exec"), self.srv.url, os.path.join(self.srv.dir, "ca.crt"),
                             self.srv.dir, "wrong1st")
        ctl = Controller(self.srv, self.tmp, base_policy(), kubeconfig=kc, name="exec", verbosity=10).start()
        try:
            ctl.wait_ready()
            self.cluster.set_device_health(pod, pod.devices[0])
            wait_evictions(self.srv, 1, name=pod.name, ctl=ctl)
        finally:
            self.assertEqual(ctl.stop(), 0)
        log = ctl.log()
        self.assertRegex(log, r"exec plugin \S+exec_plugin.py: new credential \(token\)")
        self.assertRegex(log, r"401 Unauthorized; retrying once with a new credential from the exec plugin")
        self.assertNotIn(self.token, log)
        self.assertNotIn("not-the-token", log)
        self.assertNotRegex(log, r"(?i)authorization:\s*bearer")

    def test_untrusted_server_certificate_is_refused(self):
        kc = kubeconfig(os.path.join(self.tmp, "wrong-ca"), self.srv.url, self.token,
                        ca=os.path.join(self.srv.dir, "wrong-ca.crt"))
        self.srv.clear_requests()
        ctl = Controller(self.srv, self.tmp, base_policy(), kubeconfig=kc, name="wrongca").start()
        try:
            ctl.wait_log(r"(?i)certificate.*(not trusted|verify)|ssl|tls", timeout=10)
            self.assertEqual(self.srv.requests(), [], "no request may reach the server")
        finally:
            self.assertEqual(ctl.stop(), 0)
        self.assertNotIn(self.token, ctl.log())

    def test_insecure_skip_tls_verify_warns_and_works(self):
        self.cluster.node("gpu-node-1")
        rs = self.cluster.replicaset("trainer")
        pod = self.cluster.pod("trainer-sec02", "gpu-node-1", rs=rs)
        kc = kubeconfig(os.path.join(self.tmp, "insecure"), self.srv.url, self.token, insecure=True)
        ctl = Controller(self.srv, self.tmp, base_policy(), kubeconfig=kc, name="insecure").start()
        try:
            ctl.wait_ready()
            self.cluster.set_device_health(pod, pod.devices[0])
            wait_evictions(self.srv, 1, name=pod.name, ctl=ctl)
        finally:
            self.assertEqual(ctl.stop(), 0)
        self.assertRegex(ctl.log(), r"(?m)^W.*insecure-skip-tls-verify")


class NoShellOutTest(unittest.TestCase):
    def test_product_sources_never_shell_out(self):
        pattern = re.compile(r"\b(system|popen|execl|execlp|execle|execv|execvp|execvpe|posix_spawnp?|fork)\s*\(")
        found = []
        for d in ("controller", "k8sclient"):
            for name in sorted(os.listdir(os.path.join(ROOT, d))):
                if not name.endswith((".c", ".h")):
                    continue
                with open(os.path.join(ROOT, d, name), encoding="utf-8") as f:
                    for no, line in enumerate(f, 1):
                        if pattern.search(line) and not line.lstrip().startswith(("*", "/*", "//")):
                            found.append("%s/%s:%d: %s" % (d, name, no, line.strip()))
        self.assertEqual(found, [])

    def test_only_the_exec_plugin_starts_a_process(self):
        """Credential plugins are started with uv_spawn (an argv, never a shell), in one place."""
        found = []
        for d in ("controller", "k8sclient"):
            for name in sorted(os.listdir(os.path.join(ROOT, d))):
                if name.endswith(".c"):
                    with open(os.path.join(ROOT, d, name), encoding="utf-8") as f:
                        if re.search(r"\buv_spawn\s*\(", f.read()):
                            found.append("%s/%s" % (d, name))
        self.assertEqual(found, ["k8sclient/kc_http_exec.c"])


if __name__ == "__main__":
    unittest.main()
