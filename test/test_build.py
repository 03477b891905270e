"""Checks that the Dockerfile's runtime image installs exactly the Debian
packages whose shared libraries the built binary links (its ELF NEEDED
entries), no more and no fewer: a library added to the build without its
package breaks the image at start, and a stale package (libyajl2 once)
only makes it bigger."""

import os
import re
import shutil
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DD_BIN", os.path.join(ROOT, "bin", "device-descheduler"))
# Packages every Debian image has (Essential) and packages the image needs for
# other reasons than linking.
IMPLICIT = {"libc6"}
NOT_LINKED = {"ca-certificates"}


def runtime_packages(dockerfile):
    """The package list of the last stage's `apt-get install`."""
    with open(dockerfile) as f:
        text = f.read().replace("\\\n", " ")
    stages = re.split(r"(?m)^FROM ", text)
    m = re.search(r"apt-get install ([^&]*)", stages[-1])
    return {w for w in m.group(1).split() if not w.startswith("-")}


def linked_packages(binary):
    dyn = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
    ldd = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    pkgs = {}
    for lib in needed:
        path = os.path.realpath(paths[lib])
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True).stdout
        if not owner:  # merged /usr: dpkg knows the /lib path
            owner = subprocess.run(["dpkg", "-S", path.replace("/usr/lib/", "/lib/", 1)],
                                   capture_output=True, text=True).stdout
        pkgs[lib] = owner.split(":")[0]
    return pkgs


@unittest.skipUnless(os.path.exists(BIN) and shutil.which("dpkg") and shutil.which("readelf"),
                     "needs the built binary, dpkg and readelf")
class TestImagePackages(unittest.TestCase):
    def test_runtime_packages_are_exactly_the_linked_libraries(self):
        listed = runtime_packages(os.path.join(ROOT, "Dockerfile")) - NOT_LINKED
        linked = linked_packages(BIN)
        self.assertTrue(all(linked.values()), f"no package owns {linked}")
        need = set(linked.values()) - IMPLICIT
        self.assertEqual(sorted(listed - need), [], "the Dockerfile installs packages the binary does not link")
        self.assertEqual(sorted(need - listed), [], "the binary links libraries the Dockerfile does not install")

    def test_parser_reads_the_last_stage(self):
        df = "FROM a AS b\nRUN apt-get install -y x y \\\n z\nFROM c\nRUN apt-get install -y -qq p q && rm\n"
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "dd-test-Dockerfile")
        with open(path, "w") as f:
            f.write(df)
        try:
            self.assertEqual(runtime_packages(path), {"p", "q"})
        finally:
            os.unlink(path)


@unittest.skipUnless(os.path.exists(BIN) and shutil.which("git"), "needs the built binary and git")
class TestVersion(unittest.TestCase):
    def test_version_names_the_commit_it_was_built_from(self):
        out = subprocess.run([BIN, "--version"], check=True, capture_output=True, text=True).stdout
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or "unknown"
        self.assertRegex(out, r"^device-descheduler \d+\.\d+\.\d+\S* \(commit [0-9a-f]{12}|unknown\)\n$")
        self.assertIn("(commit %s)" % head, out)


if __name__ == "__main__":
    unittest.main()
