"""The launcher itself (test/cluster): `make cluster-up` / `make cluster-down` start and stop a
control plane that kubectl can use, and leave nothing behind: no process, no directory."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from test.integration.scenario import wait_for  # noqa: E402
from test.realcluster.cluster import launcher  # noqa: E402

UP = os.path.join(ROOT, "test", "cluster", "cluster-up.sh")
DOWN = os.path.join(ROOT, "test", "cluster", "cluster-down.sh")


def children(pid):
    """PIDs whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class ClusterUpDown(unittest.TestCase):

    def setUp(self):
        self.env = dict(os.environ, DD_KUBE_CLUSTER=launcher())
        self.state = tempfile.mkdtemp(prefix="dd-cluster-state-")
        self.addCleanup(shutil.rmtree, self.state, ignore_errors=True)
        self.addCleanup(subprocess.run, [DOWN, self.state], capture_output=True)

    def test_up_kubectl_down_leaves_nothing(self):
        """cluster-up prints `export KUBECONFIG=...`; kubectl with it sees v1.37.2 with
        resource.k8s.io/v1 DeviceTaintRules and the scheduler's and controller-manager's leases;
        cluster-down stops the launcher and its three components and removes the directory."""
        r = subprocess.run([UP, self.state], capture_output=True, text=True, timeout=600, env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.match(r"^export KUBECONFIG=(\S+)$", r.stdout.strip())
        self.assertTrue(m, r.stdout)
        self.assertRegex(r.stderr, r"cluster-up: ready in \d+\.\d{3}s: url=https://127\.0\.0\.1:\d+ ")
        kc = m.group(1)
        d = os.path.dirname(kc)
        pid = int(open(os.path.join(self.state, "pid")).read())
        procs = children(pid)
        self.assertEqual(len(procs), 3, "kube-apiserver, kube-scheduler, kube-controller-manager")

        def kubectl(*args):
            return subprocess.run(["kubectl", "--kubeconfig", kc, "--cache-dir", os.path.join(self.state, "cache")]
                                  + list(args), capture_output=True, text=True, timeout=60)
        v = kubectl("version", "-o", "json")
        self.assertIn('"gitVersion": "v1.37.2"', v.stdout, v.stderr)
        res = kubectl("api-resources", "--api-group=resource.k8s.io", "-o", "name").stdout.split()
        self.assertIn("devicetaintrules.resource.k8s.io", res)
        leases = kubectl("get", "leases", "-n", "kube-system", "-o", "name").stdout.split()
        self.assertTrue({"lease.coordination.k8s.io/kube-scheduler",
                         "lease.coordination.k8s.io/kube-controller-manager"} <= set(leases), leases)
        # A second cluster-up while one runs says where it is instead of starting another.
        again = subprocess.run([UP, self.state], capture_output=True, text=True, timeout=60, env=self.env)
        self.assertEqual(again.stdout.strip(), "export KUBECONFIG=" + kc)

        r = subprocess.run([DOWN, self.state], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: not alive(pid) and not any(alive(p) for p in procs), 30, "every process to exit")
        self.assertFalse(os.path.exists(d), "the launcher's directory is removed")
        self.assertFalse(os.path.exists(os.path.join(self.state, "pid")))


if __name__ == "__main__":
    unittest.main()
