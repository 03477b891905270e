"""A quiet, truthful start: at -v 0 and -v 2 every line the controller writes while it
starts is one a user wants to read (no libmicrohttpd option warning, no line twice).

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_startup -v
"""

import re
import unittest

from test.integration.scenario import ScenarioTest, base_policy, stop_shared_servers

# klog header: "I1203 07:48:39.582739   12843 device-descheduler] message"
HEADER = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [^\]]*\] ")


def messages(log):
    return [HEADER.sub("", line) for line in log.splitlines() if line.strip()]


class QuietStart(ScenarioTest):

    def start_and_read(self, verbosity):
        self.cluster.node("gpu-node-1")
        ctl = self.controller(base_policy(), verbosity=verbosity, name="quiet-v%d" % verbosity)
        ctl.wait_metric("caches_synced", 1.0)
        self.assertStopsCleanly(ctl)
        return ctl.log()

    def check(self, verbosity):
        log = self.start_and_read(verbosity)
        self.assertNotIn("MHD_OPTION", log)
        self.assertNotIn("is not the first option", log)
        msgs = messages(log)
        dups = sorted({m for m in msgs if msgs.count(m) > 1})
        self.assertEqual(dups, [], "lines written more than once at -v %d:\n%s" % (verbosity, log))
        return msgs

    def test_v0(self):
        self.check(0)

    def test_v2_says_where_it_serves_once(self):
        msgs = self.check(2)
        self.assertEqual(len([m for m in msgs if re.search(r"^metrics server: serving on", m)]), 1, msgs)


def tearDownModule():
    stop_shared_servers()


if __name__ == "__main__":
    unittest.main()
