"""`make demo` works and tells the whole story: runs test/demo.py with the built binary and
checks its output (no colours when stdout is not a terminal), exit status and cleanup."""

import os
import re
import subprocess
import sys
import unittest

from test.integration.scenario import BIN, ROOT, require_binary

RESCUED = re.compile(r"^rescued: ml/(\S+) \((GPU-\S+), Unhealthy\) -> ml/(\S+) on (\S+) \((GPU-\S+), Healthy\) in (\d+) ms$",
                     re.M)


class Demo(unittest.TestCase):

    def test_demo_rescues_the_pod(self):
        require_binary()
        out = subprocess.run([sys.executable, os.path.join(ROOT, "test", "demo.py"), "--bin", BIN],
                             capture_output=True, text=True, timeout=90, cwd=ROOT)
        text = out.stdout
        self.assertEqual(out.returncode, 0, text + out.stderr)
        self.assertNotIn("\x1b[", text, "colours although stdout is not a terminal")
        m = RESCUED.search(text)
        self.assertIsNotNone(m, text)
        old, bad_gpu, new, node, new_gpu, ms = m.groups()
        self.assertNotEqual(old, new)
        self.assertNotEqual(bad_gpu, new_gpu)
        self.assertTrue(new_gpu.startswith("GPU-%s-" % node), (node, new_gpu))
        self.assertLess(int(ms), 20000)
        # The story, in order: cluster, health event, decision, Event, eviction, replacement.
        marks = ["cluster ", "health ", "decision ", "event ", "eviction ", "replacement ", "rescued: "]
        pos = [next((i for i, ln in enumerate(text.splitlines()) if re.search(r"(^|\s)%s" % re.escape(k), ln)), -1)
               for k in marks]
        self.assertNotIn(-1, pos, dict(zip(marks, pos)))
        self.assertEqual(pos[:5], sorted(pos[:5]), text)
        self.assertLess(pos[4], pos[6])
        self.assertLess(pos[5], pos[6])
        self.assertRegex(text, r"Warning UnhealthyDevice: .*%s" % re.escape(bad_gpu))
        self.assertRegex(text, r"eviction +POST /api/v1/namespaces/ml/pods/%s/eviction -> 201" % re.escape(old))
        self.assertRegex(text, r"replacement +pod ml/%s Running on %s with %s \(Healthy\)"
                         % (re.escape(new), node, re.escape(new_gpu)))
        self.assertRegex(text, r"controller: SIGTERM, exit status 0")
        removed = re.search(r"removed (\S+)$", text, re.M)
        self.assertIsNotNone(removed, text)
        self.assertFalse(os.path.exists(removed.group(1)))


if __name__ == "__main__":
    unittest.main()
