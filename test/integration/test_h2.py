"""The controller's main eviction scenario over HTTP/2: nghttpx (test/apiserver/h2proxy.py)
in front of the test API server, TLS with ALPN h2 on the front, the controller's kubeconfig
pointed at the proxy. One Unhealthy GPU -> exactly one eviction; then the proxy restarts
(GOAWAY to the controller's connection, which closes once the grace period ends) and a second
pod's GPU fails -> again exactly one eviction; SIGTERM -> exit 0.  (How fast is `make bench`'s
business: the waits here are generous bounds, not measurements.)
And a connection that goes silent without closing (h2proxy.Relay stops forwarding but keeps
the sockets open): the controller's probes close it, /readyz and /healthz report the silence,
and once the path works again a new connection carries the eviction.

Skipped when nghttpx is not installed (Debian package nghttp2-proxy). Alone:

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_h2 -v
"""

import os
import re
import shutil
import sys
import tempfile
import time
import unittest

from test.integration.scenario import (APISERVER_DIR, Cluster, Controller, base_policy, evictions,
                                       hold_for, require_binary, start_apiserver, wait_evictions,
                                       wait_for)

if APISERVER_DIR not in sys.path:
    sys.path.insert(0, APISERVER_DIR)

import h2proxy  # noqa: E402


class ControllerOverHTTP2(unittest.TestCase):

    def setUp(self):
        if not h2proxy.available():
            self.skipTest("nghttpx is not installed (apt-get install -y nghttp2-proxy): HTTP/2 tests skipped")
        require_binary()
        self.tmp = tempfile.mkdtemp(prefix="dd-h2-")
        self.addCleanup(lambda: os.environ.get("DD_KEEP") or shutil.rmtree(self.tmp, ignore_errors=True))
        self.srv = start_apiserver(self.tmp)
        self.addCleanup(self.srv.stop)
        self.proxy = h2proxy.H2Proxy(self.srv.dir, self.srv.url, grace_ms=1000).start()
        self.addCleanup(self.proxy.stop)
        self.cluster = Cluster(self.srv)

    def access_log(self):
        with open(self.proxy.access_log) as f:
            return f.read().splitlines()

    def assert_one_eviction(self, ctl, pod, t0):
        ev = wait_evictions(self.srv, 1, timeout=15.0, ctl=ctl, name=pod.name, status=201)
        self.assertEqual([(e["namespace"], e["name"]) for e in ev], [(pod.ns, pod.name)])
        self.assertGreaterEqual(ev[0]["time"], t0)
        hold_for(lambda: len(evictions(self.srv, name=pod.name)) == 1, 0.5,
                 "exactly one eviction request for %s" % pod.name, ctl=ctl)
        # It went through the proxy as HTTP/2.
        line = "/api/v1/namespaces/%s/pods/%s/eviction HTTP/2\" 201" % (pod.ns, pod.name)
        wait_for(lambda: any(line in x for x in self.access_log()), 10, "the eviction in the proxy's log")
        hits = [x for x in self.access_log() if line in x]
        self.assertEqual(len(hits), 1, "proxy access log: %s" % self.access_log()[-5:])
        self.assertIn(" h2 ", hits[0])

    def test_eviction_over_http2_and_after_proxy_restart(self):
        """Main scenario through nghttpx; a proxy restart in between does not lose the watch."""
        self.cluster.node("gpu-node-1")
        rs = self.cluster.replicaset("trainer-5c8d7f9b6", "ml", replicas=3)
        pods = [self.cluster.pod("trainer-5c8d7f9b6-%s" % s, "gpu-node-1", rs=rs, ns="ml")
                for s in ("a1b2c", "d3e4f", "g5h6i")]
        ctl = Controller(self.srv, os.path.join(self.tmp, "ctl"), base_policy(), kubeconfig=self.proxy.kubeconfig,
                         verbosity=2)
        self.addCleanup(ctl.kill)
        ctl.start()
        ctl.wait_ready()

        t0 = time.time()
        self.cluster.set_device_health(pods[0], pods[0].devices[0], "Unhealthy", "XID 79")
        self.assert_one_eviction(ctl, pods[0], t0)

        # Graceful proxy restart: SIGQUIT (GOAWAY; streams served up to the grace period), then
        # a new nghttpx on the same port. The controller re-watches from its last resourceVersion.
        self.srv.clear_requests()
        t_restart = time.time()
        self.proxy.restart()
        self.restart_s = time.time() - t_restart
        t0 = time.time()
        self.cluster.set_device_health(pods[1], pods[1].devices[0], "Unhealthy", "XID 48")
        self.assert_one_eviction(ctl, pods[1], t0)
        # No relist was needed: watches resumed, no LIST of pods after the restart.
        lists = [e for e in self.srv.requests(verb="list", resource="pods")]
        self.assertEqual(lists, [], "pods were listed again after the proxy restart")
        self.assertTrue(self.srv.exists(pods[2].path))
        self.assertEqual(ctl.stop(), 0, ctl.log_tail())

    def test_silent_connection_abandoned(self):
        """A relay between the controller and the proxy stops forwarding but keeps its sockets
        open, for old and new connections alike: the probes close the silent connection, /readyz
        and then /healthz fail with the reason; once new connections are relayed again, one of
        them carries the watch and the eviction of a pod whose GPU failed meanwhile."""
        self.cluster.node("gpu-node-1")
        rs = self.cluster.replicaset("trainer-5c8d7f9b6", "ml", replicas=2)
        pods = [self.cluster.pod("trainer-5c8d7f9b6-%s" % s, "gpu-node-1", rs=rs, ns="ml")
                for s in ("a1b2c", "d3e4f")]
        relay = h2proxy.Relay(self.proxy.port).start()
        self.addCleanup(relay.stop)
        kubeconfig = os.path.join(self.srv.dir, "kubeconfig-relay")  # beside ca.crt, which it names
        with open(self.proxy.kubeconfig) as f:
            text = re.sub(r"(server:\s*)\S+", lambda m: m.group(1) + relay.url, f.read())
        with open(kubeconfig, "w") as f:
            f.write(text)
        # read idle 1 s + ping timeout 1 s: /readyz fails after 4 s of silence, /healthz after 8 s.
        ctl = Controller(self.srv, os.path.join(self.tmp, "ctl"), base_policy(), kubeconfig=kubeconfig,
                         verbosity=2, args=["--http2-read-idle-timeout", "1s", "--http2-ping-timeout", "1s"])
        self.addCleanup(ctl.kill)
        ctl.start()
        ctl.wait_ready()
        self.assertEqual(relay.accepted, 1)

        relay.freeze(new_too=True)
        self.cluster.set_device_health(pods[0], pods[0].devices[0], "Unhealthy", "XID 79")
        ctl.wait_log(r"read nothing for \d+ ms, nor answered a health probe", timeout=20)
        wait_for(lambda: ctl.probe("/readyz")[0] == 503, 20, "/readyz 503", ctl=ctl)
        self.assertIn("no answer from the API server", ctl.probe("/readyz")[1])
        wait_for(lambda: ctl.probe("/healthz")[0] == 503, 30, "/healthz 503", ctl=ctl)
        self.assertEqual(evictions(self.srv), [])

        relay.thaw()
        ev = wait_evictions(self.srv, 1, timeout=30, ctl=ctl, name=pods[0].name, status=201)
        self.assertEqual([(e["namespace"], e["name"]) for e in ev], [(pods[0].ns, pods[0].name)])
        wait_for(lambda: ctl.probe("/readyz")[0] == 200, 20, "/readyz 200 again", ctl=ctl)
        self.assertEqual(ctl.probe("/healthz")[0], 200)
        self.assertGreater(relay.accepted, 1, "no new connection was made")
        self.assertTrue(self.srv.exists(pods[1].path))
        self.assertEqual(ctl.stop(), 0, ctl.log_tail())


if __name__ == "__main__":
    unittest.main()
