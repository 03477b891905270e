"""Streaming initial sync (WatchList, issue 12) against the real kube-apiserver v1.37, where the
WatchList feature is on by default: every reflector of the controller syncs through one watch
with sendInitialEvents=true up to the bookmark annotated k8s.io/initial-events-end, lists
nothing in pages, and the controller evicts as usual from the caches it filled that way.

    make realtest
    DD_KUBE_CLUSTER=PATH DD_BIN=$PWD/bin/device-descheduler \\
        python3 -m unittest test.realcluster.real_watchlist -v
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from test.realcluster.cluster import SA_USER, RealClusterTest, stop_shared_cluster  # noqa: E402

tearDownModule = stop_shared_cluster


class WatchList(RealClusterTest):

    def test_reflectors_sync_through_watch_list(self):
        self.node()
        self.kubelet.start()
        self.replicaset("trainer", 2)
        pods = self.wait_running("trainer", 2)
        ctl = self.controller()
        # pods and nodes before readiness; the DRA caches start after discovery.
        for res in ("pods", "nodes", "resourceclaims", "resourceslices"):
            ctl.wait_log(r"reflector %s: streamed \(WatchList\) \d+ objects at resourceVersion \d+" % res,
                         timeout=20.0)
        self.assertNotRegex(ctl.log(), r"falling back to paged LIST")
        # Our two pods are among the streamed ones, and the caches work: one eviction.
        victim = pods[0]
        self.kubelet.set_health(victim["metadata"]["name"], self.devices_of(victim)[0])
        ev = self.wait_evictions(1, ctl=ctl, status=201)
        self.assertEqual([e["name"] for e in ev], [victim["metadata"]["name"]])
        # No paged LIST of pods by the controller's ServiceAccount while it ran.
        lists = [e for e in self.rc.requests(user=SA_USER, verb="list", resource="pods")
                 if e["seq"] >= self.audit_start and e["namespace"] == ""]
        self.assertEqual(lists, [])
        self.assertEqual(ctl.stop(), 0, ctl.log_tail())
