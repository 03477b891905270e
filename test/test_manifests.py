"""Checks the kustomize base: renders `kubectl kustomize manifests/` and
asserts the objects, their namespace, the Deployment's security context,
probes, args and mounts, and the exact RBAC rules."""

import os
import shutil
import subprocess
import tempfile
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFESTS = os.path.join(ROOT, "manifests")


def render():
    out = subprocess.run(["kubectl", "kustomize", MANIFESTS], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@unittest.skipUnless(shutil.which("kubectl"), "kubectl not on the PATH")
class TestManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objs = render()
        cls.by_kind = {}
        for o in cls.objs:
            cls.by_kind.setdefault(o["kind"], []).append(o)

    def one(self, kind):
        self.assertEqual(len(self.by_kind.get(kind, [])), 1, kind)
        return self.by_kind[kind][0]

    def test_kinds(self):
        self.assertEqual(sorted(o["kind"] for o in self.objs),
                         ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Role",
                          "RoleBinding", "Service", "ServiceAccount"])

    def test_namespace(self):
        for o in self.objs:
            if o["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                self.assertNotIn("namespace", o["metadata"])
            else:
                self.assertEqual(o["metadata"]["namespace"], "kube-system", o["kind"])
        for kind in ("ClusterRoleBinding", "RoleBinding"):
            self.assertEqual(self.one(kind)["subjects"],
                             [{"kind": "ServiceAccount", "name": "device-descheduler",
                               "namespace": "kube-system"}])

    def test_clusterrole_rules_exactly(self):
        self.assertEqual(self.one("ClusterRole")["rules"], [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "patch", "update"]},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": ["resource.k8s.io"], "resources": ["resourceclaims", "resourceslices"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["resource.k8s.io"], "resources": ["devicetaintrules"],
             "verbs": ["get", "list", "watch", "create", "delete"]},
        ])
        self.assertEqual(self.one("ClusterRoleBinding")["roleRef"],
                         {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                          "name": "device-descheduler"})

    def test_leader_election_role(self):
        role = self.one("Role")
        self.assertEqual(role["rules"], [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["device-descheduler"], "verbs": ["get", "update"]},
        ])
        self.assertEqual(self.one("RoleBinding")["roleRef"]["name"], role["metadata"]["name"])

    def test_deployment(self):
        dep = self.one("Deployment")
        self.assertEqual(dep["spec"]["replicas"], 2)
        pod = dep["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], "device-descheduler")
        self.assertEqual(pod["priorityClassName"], "system-cluster-critical")
        self.assertEqual(pod["securityContext"]["runAsNonRoot"], True)
        self.assertEqual(pod["securityContext"]["runAsUser"], 65532)
        self.assertEqual(pod["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
        self.assertEqual(pod["topologySpreadConstraints"][0]["topologyKey"], "kubernetes.io/hostname")
        anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(anti[0]["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(anti[0]["podAffinityTerm"]["labelSelector"],
                         {"matchLabels": dep["spec"]["selector"]["matchLabels"]})

        (c,) = pod["containers"]
        self.assertEqual(c["args"], ["--policy-config-file=/etc/device-descheduler/policy.yaml",
                                     "--leader-elect=true"])
        self.assertEqual({e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]},
                         {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace",
                          "POD_UID": "metadata.uid"})
        sc = c["securityContext"]
        self.assertEqual(sc["runAsNonRoot"], True)
        self.assertEqual(sc["runAsUser"], 65532)
        self.assertEqual(sc["readOnlyRootFilesystem"], True)
        self.assertEqual(sc["allowPrivilegeEscalation"], False)
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"]})
        self.assertEqual(sc["seccompProfile"], {"type": "RuntimeDefault"})
        self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": 8081})
        self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/readyz", "port": 8081})
        self.assertEqual(sorted((p["name"], p["containerPort"]) for p in c["ports"]),
                         [("health", 8081), ("metrics", 8080)])
        self.assertEqual(c["resources"], {"requests": {"cpu": "50m", "memory": "64Mi"},
                                          "limits": {"cpu": "500m", "memory": "256Mi"}})

        # The policy is mounted as a directory, never with subPath: only then
        # does the kubelet's symlink swap reach the running process.
        (mount,) = c["volumeMounts"]
        self.assertEqual(mount["mountPath"], "/etc/device-descheduler")
        self.assertNotIn("subPath", mount)
        (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        cm = self.one("ConfigMap")
        self.assertEqual(vol["configMap"]["name"], cm["metadata"]["name"])
        self.assertIn("policy.yaml", cm["data"])

    def test_service(self):
        svc = self.one("Service")
        self.assertEqual(svc["spec"]["ports"][0]["port"], 8080)
        dep = self.one("Deployment")
        self.assertEqual(svc["spec"]["selector"], dep["spec"]["selector"]["matchLabels"])

    def test_own_image_overlay(self):
        """The README's overlay for your own image renders with that image and changes
        nothing else."""
        with tempfile.TemporaryDirectory(prefix="manifests-overlay-") as d:
            with open(os.path.join(d, "kustomization.yaml"), "w") as f:
                f.write("resources:\n  - %s\n" % os.path.relpath(MANIFESTS, d) +
                        "images:\n  - name: ghcr.io/device-descheduler/device-descheduler\n"
                        "    newName: registry.example.com/you/device-descheduler\n    newTag: dev\n")
            out = subprocess.run(["kubectl", "kustomize", d], check=True, capture_output=True, text=True,
                                 timeout=60).stdout
        objs = [o for o in yaml.safe_load_all(out) if o]
        dep = next(o for o in objs if o["kind"] == "Deployment")
        self.assertEqual(dep["spec"]["template"]["spec"]["containers"][0]["image"],
                         "registry.example.com/you/device-descheduler:dev")
        self.assertEqual(len(objs), len(self.objs))


@unittest.skipUnless(shutil.which("kubectl"), "kubectl not on the PATH")
class TestManifestsRBAC(unittest.TestCase):
    """Applies the base to the test API server with RBAC enforced and checks,
    as the controller's service account, that it may do what the controller
    does and nothing more."""

    @classmethod
    def setUpClass(cls):
        from test.apiserver.harness import ApiError, ApiServer  # noqa: E402
        cls.ApiError = ApiError
        cls.tmp = tempfile.mkdtemp(prefix="manifests-rbac-")
        cls.srv = ApiServer.start(cls.tmp, enforce_rbac=True)
        r = cls.srv.kubectl("apply", "-k", MANIFESTS, check=False)
        if r.returncode != 0:
            cls.srv.stop()
            raise AssertionError("kubectl apply -k failed: " + r.stderr)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def status(self, method, path, body=None):
        try:
            self.srv.request(method, path, body, token="sa")
            return 200
        except self.ApiError as e:
            return e.code

    def test_allowed(self):
        for path in ("/api/v1/pods", "/api/v1/nodes", "/apis/resource.k8s.io/v1/resourceclaims",
                     "/apis/resource.k8s.io/v1/resourceslices"):
            self.assertEqual(self.status("GET", path), 200, path)
        ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
              "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Test"}
        self.assertEqual(self.status("POST", "/api/v1/namespaces/default/events", ev), 200)
        # An eviction of a missing pod is refused for not existing, not by RBAC.
        self.assertEqual(self.status("POST", "/api/v1/namespaces/default/pods/nope/eviction",
                                     {"apiVersion": "policy/v1", "kind": "Eviction",
                                      "metadata": {"name": "nope", "namespace": "default"}}), 404)

    def test_leader_election(self):
        leases = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": "device-descheduler", "namespace": "kube-system"},
                 "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
        self.assertEqual(self.status("POST", leases, lease), 200)
        got = self.srv.request("GET", leases + "/device-descheduler", token="sa")
        got["spec"]["holderIdentity"] = "b"
        self.assertEqual(self.status("PUT", leases + "/device-descheduler", got), 200)
        self.assertEqual(self.status("GET", leases + "/someone-else"), 403)
        self.assertEqual(self.status("DELETE", leases + "/device-descheduler"), 403)
        self.assertEqual(self.status("GET", leases), 403)  # list: not needed
        self.assertEqual(self.status("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/device-descheduler"),
                         403)

    def test_denied(self):
        for method, path in (("GET", "/api/v1/configmaps"), ("GET", "/api/v1/namespaces/kube-system/configmaps"),
                             ("DELETE", "/api/v1/nodes/n1"), ("POST", "/api/v1/namespaces/default/pods"),
                             ("PUT", "/api/v1/namespaces/default/pods/p"),
                             ("DELETE", "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/c")):
            self.assertEqual(self.status(method, path, {} if method in ("POST", "PUT") else None), 403,
                             method + " " + path)


if __name__ == "__main__":
    unittest.main()
