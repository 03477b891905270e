"""manifests/monitoring/ against a running controller: `kubectl kustomize manifests/monitoring/`
renders (a ServiceMonitor, the PrometheusRule, the Grafana dashboard ConfigMap), and every PromQL
expression of the rule and of the dashboard uses only metric names and labels that a running
controller's /metrics really shows, after a scenario that makes every family appear (an
eviction that succeeds, one a PodDisruptionBudget blocks, one that fails, a DaemonSet pod kept,
dropped watches, a relist after 410 Gone, a node quarantined for a node condition). Every alert has its runbook in the README.

    DD_BIN=$PWD/bin/device-descheduler python3 -m unittest test.integration.test_monitoring -v
"""

import json
import os
import re
import shutil
import subprocess
import time
import unittest

import yaml

from test.integration.scenario import (ROOT, ScenarioTest, base_policy, stop_shared_servers, wait_evictions,
                                       wait_for)

MONITORING = os.path.join(ROOT, "manifests", "monitoring")
README = os.path.join(ROOT, "README.md")

# Labels Prometheus attaches to every scraped series (target labels of a ServiceMonitor); they
# never appear in /metrics itself.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

# ------------------------------------------------------------------------------------ PromQL

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<num>(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)(?:ms|s|m|h|d|w|y)*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}@])
""", re.X)

# Keywords and aggregation operators that may stand without a following "(".
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
             "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio", "start", "end"}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}


class PromQLError(ValueError):
    pass


def _tokens(expr):
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise PromQLError("cannot read %r at %d in %r" % (expr[pos:pos + 10], pos, expr))
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def _unquote(s):
    if s[0] == '"':
        return json.loads(s)
    if s[0] == "'":
        return s[1:-1].encode().decode("unicode_escape")
    return s[1:-1]  # `raw`


def parse_promql(expr):
    """The metric selectors of a PromQL expression, as (name, [(label, op, value)]), and the label
    names used for grouping or matching (by, without, on, ignoring, group_left/right). Function
    and aggregation names, keywords, numbers, durations and ranges are skipped."""
    toks = _tokens(expr)
    selectors, grouping = [], set()
    i = 0

    def matchers(j):
        """Parses {label op "value", ...} from toks[j] == "{"; returns (list, index after "}")."""
        out = []
        j += 1
        while toks[j][1] != "}":
            if toks[j][0] != "ident" or toks[j + 1][1] not in ("=", "!=", "=~", "!~") or toks[j + 2][0] != "str":
                raise PromQLError("bad label matcher near %r in %r" % (toks[j][1], expr))
            out.append((toks[j][1], toks[j + 1][1], _unquote(toks[j + 2][1])))
            j += 3
            if toks[j][1] == ",":
                j += 1
            elif toks[j][1] != "}":
                raise PromQLError("expected , or } after a matcher in %r" % expr)
        return out, j + 1

    while i < len(toks):
        kind, v = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "ident" and v in _GROUPING:
            i += 1
            if nxt == "(":
                i += 1
                while toks[i][1] != ")":
                    if toks[i][0] == "ident":
                        grouping.add(toks[i][1])
                    i += 1
                i += 1
        elif kind == "ident" and (nxt == "(" or v.lower() in _KEYWORDS):
            i += 1
        elif kind == "ident":
            ms = []
            i += 1
            if nxt == "{":
                ms, i = matchers(i)
            selectors.append((v, ms))
        elif v == "{":
            ms, i = matchers(i)
            names = [val for (lab, op, val) in ms if lab == "__name__" and op == "="]
            if not names:
                raise PromQLError("a selector without a metric name in %r" % expr)
            selectors.append((names[0], [m for m in ms if m[0] != "__name__"]))
        else:
            i += 1
    return selectors, grouping


# ------------------------------------------------------------------------------------ scrape

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape_index(text):
    """{sample name: {label name: {values}}} of a /metrics text, and the set of families declared
    by # TYPE lines."""
    index, families = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = index.setdefault(m.group(1), {})
        for k, val in _LABEL.findall(m.group(2) or ""):
            labels.setdefault(k, set()).add(val)
    return index, families


def check_expression(expr, index):
    """The problems of one expression against a scrape index (empty list: fine)."""
    problems = []
    selectors, grouping = parse_promql(expr)
    if not selectors:
        problems.append("no metric selector in %r" % expr)
    known_labels = set(TARGET_LABELS)
    for name, ms in selectors:
        if name not in index:
            problems.append("metric %s is not in /metrics" % name)
            continue
        known_labels |= set(index[name])
        for label, op, value in ms:
            if label in TARGET_LABELS:
                continue
            if label not in index[name]:
                problems.append("%s has no label %r (it has %s)" % (name, label, sorted(index[name]) or "none"))
            elif op == "=" and value not in index[name][label]:
                problems.append("%s{%s=%r}: no such value in /metrics (seen: %s)"
                                % (name, label, value, sorted(index[name][label])))
    for label in sorted(grouping - known_labels):
        problems.append("grouping label %r is on none of the metrics of %r" % (label, expr))
    return problems


# ------------------------------------------------------------------------------------ manifests

def render_monitoring():
    out = subprocess.run(["kubectl", "kustomize", MONITORING], check=True, capture_output=True, text=True,
                         timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def expressions(objs):
    """[(where, expr)] of every alert of the PrometheusRule and every target of the dashboard."""
    out = []
    for o in objs:
        if o["kind"] == "PrometheusRule":
            for g in o["spec"]["groups"]:
                for r in g["rules"]:
                    out.append(("alert " + r.get("alert", r.get("record", "?")), str(r["expr"])))
        elif o["kind"] == "ConfigMap" and "grafana_dashboard" in (o["metadata"].get("labels") or {}):
            for key, text in o["data"].items():
                for p in json.loads(text)["panels"]:
                    for t in p.get("targets", []):
                        out.append(("%s panel %r" % (key, p["title"]), t["expr"]))
    return out


class PromQLParser(unittest.TestCase):
    """The selector parser on the forms the rule and the dashboard use."""

    def test_forms(self):
        sel, grp = parse_promql('histogram_quantile(0.99, sum by (le, verb) (rate('
                                'x_bucket{job=~"$job", a="b,}"}[$__rate_interval])))')
        self.assertEqual(sel, [("x_bucket", [("job", "=~", "$job"), ("a", "=", "b,}")])])
        self.assertEqual(grp, {"le", "verb"})
        sel, grp = parse_promql('(sum(up) or vector(0)) < 1 and on (pod) group_left b offset 5m')
        self.assertEqual([s[0] for s in sel], ["up", "b"])
        self.assertEqual(grp, {"pod"})
        sel, _ = parse_promql('{__name__="m", r!="x"} / ignoring(code) sum(c) by (r)')
        self.assertEqual(sel, [("m", [("r", "!=", "x")]), ("c", [])])
        with self.assertRaises(PromQLError):
            parse_promql('m{a=}')

    def test_check(self):
        index, _ = scrape_index('# TYPE m counter\nm{result="ok",signal="s"} 1\nh_bucket{le="1"} 0\n')
        self.assertEqual(check_expression('sum by (result) (rate(m{result="ok"}[5m]))', index), [])
        self.assertEqual(check_expression('sum by (le, pod) (h_bucket{job="j"})', index), [])
        self.assertEqual(len(check_expression('m{result="bad"} + h + m{nope="1"}', index)), 3)
        self.assertEqual(check_expression('sum by (zone) (m)', index),
                         ["grouping label 'zone' is on none of the metrics of 'sum by (zone) (m)'"])


@unittest.skipUnless(shutil.which("kubectl"), "kubectl not on the PATH")
class MonitoringManifests(unittest.TestCase):

    def test_renders(self):
        """`kubectl kustomize manifests/monitoring/` renders the three objects, in kube-system."""
        objs = render_monitoring()
        self.assertEqual(sorted(o["kind"] for o in objs), ["ConfigMap", "PrometheusRule", "ServiceMonitor"])
        for o in objs:
            self.assertEqual(o["metadata"]["namespace"], "kube-system", o["kind"])
        cm = next(o for o in objs if o["kind"] == "ConfigMap")
        self.assertEqual(cm["metadata"]["labels"]["grafana_dashboard"], "1")
        dash = json.loads(cm["data"]["device-descheduler.json"])
        self.assertEqual(dash["uid"], "device-descheduler")
        titles = [p["title"] for p in dash["panels"]]
        for want in ("Unhealthy devices", "Evictions by result", "Event to eviction latency", "Quarantined",
                     "Circuit breaker", "Memory", "CPU"):
            self.assertIn(want, titles)
        sm = next(o for o in objs if o["kind"] == "ServiceMonitor")
        self.assertEqual(sm["spec"]["endpoints"][0]["port"], "metrics")
        rule = next(o for o in objs if o["kind"] == "PrometheusRule")
        alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
        self.assertEqual(len(alerts), len(set(alerts)), alerts)
        for r in (r for g in rule["spec"]["groups"] for r in g["rules"]):
            self.assertIn(r["labels"]["severity"], ("warning", "critical"), r["alert"])
            for k in ("summary", "description", "runbook_url"):
                self.assertTrue(r["annotations"].get(k), "%s: %s" % (r["alert"], k))

    def test_every_alert_has_a_runbook(self):
        """Each alert has a heading of its own under "Alerts and runbooks" in the README, which
        its runbook_url points at, with an example of the alert."""
        with open(README) as f:
            readme = f.read()
        self.assertTrue("\n## Alerts and runbooks\n" in readme, "README has no section 'Alerts and runbooks'")
        section = readme.split("## Alerts and runbooks", 1)[1].split("\n## ", 1)[0]
        rule = next(o for o in render_monitoring() if o["kind"] == "PrometheusRule")
        for r in (r for g in rule["spec"]["groups"] for r in g["rules"]):
            name = r["alert"]
            self.assertIn("\n#### %s\n" % name, section, "no runbook heading for %s" % name)
            self.assertTrue(r["annotations"]["runbook_url"].endswith("#" + name.lower()), name)
            body = section.split("\n#### %s\n" % name, 1)[1].split("\n#### ", 1)[0]
            self.assertIn("alertname=%s" % name, body, "no example firing of %s in its runbook" % name)


@unittest.skipUnless(shutil.which("kubectl"), "kubectl not on the PATH")
class MonitoringAgainstMetrics(ScenarioTest):
    maxDiff = None  # a failure shows every expression and what it lacks

    def scenario(self):
        """Makes every family the rule and the dashboard read appear on /metrics."""
        c = self.cluster
        c.node("gpu-node-1")
        c.node("gpu-node-2")
        rs = c.replicaset("trainer-7d9f8c6b5", "ml", replicas=2)
        ok = c.pod("trainer-7d9f8c6b5-x2k4q", "gpu-node-1", rs=rs, ns="ml")
        failing = c.pod("trainer-7d9f8c6b5-b7m9z", "gpu-node-1", rs=rs, ns="ml")
        serve = c.replicaset("serve-5c8d7f9b4", "inference", replicas=1)
        blocked = c.pod("serve-5c8d7f9b4-q4t8n", "gpu-node-2", rs=serve, ns="inference")
        c.pdb("serve", "inference", "serve-5c8d7f9b4", 1)
        ds = c.replicaset("dcgm-exporter", "gpu-operator", kind="DaemonSet")
        agent = c.pod("dcgm-exporter-h3w6d", "gpu-node-2", rs=ds, ns="gpu-operator")
        # A node condition on a third node: the node is quarantined (tainted) before its pod goes.
        c.node("gpu-node-3")
        batch = c.replicaset("batch-6f7d8c9b2", "ml", replicas=1)
        c.pod("batch-6f7d8c9b2-k8s2d", "gpu-node-3", rs=batch, ns="ml")
        # Every eviction of `failing` is refused with 403 (an error, not a budget).
        self.srv.add_fault(method="POST", path_regex=r"/pods/%s/eviction$" % failing.name, count=1000,
                           status=403, reason="Forbidden", message="injected by test_monitoring")
        ctl = self.controller(base_policy(signals={"nodeConditions": [
            {"type": "GPUXIDErrors", "status": "True", "resources": ["nvidia.com/gpu"], "for": "0s"}]}))
        for p in (ok, failing, blocked, agent):
            c.set_device_health(p, p.devices[0])
        c.set_node_condition("gpu-node-3", "GPUXIDErrors", "True", "XID 79")
        ctl.wait_metric("quarantine_actions_total", 1.0, timeout=10.0, action="taint")
        wait_evictions(self.srv, 1, ctl=ctl, name=ok.name, status=201)
        wait_evictions(self.srv, 1, ctl=ctl, name=blocked.name, status=429)
        wait_evictions(self.srv, 1, ctl=ctl, name=failing.name, status=403)
        # Dropped watches (restarts), then a compaction with 410 Gone (relists).
        self.srv.drop_watches()
        wait_for(lambda: (ctl.metric("watch_restarts_total", resource="pods") or 0) >= 1, 5.0,
                 "a counted watch restart", ctl=ctl)
        self.srv.compact(http_410=True, cut_watches="")
        wait_for(lambda: (ctl.metric("relists_total", resource="pods") or 0) >= 1, 5.0, "a counted relist",
                 ctl=ctl)
        return ctl

    def test_expressions_use_only_exposed_metrics_and_labels(self):
        exprs = expressions(render_monitoring())
        self.assertGreaterEqual(len(exprs), 20)
        ctl = self.scenario()
        state = {}

        def all_fine():
            index, _ = scrape_index(ctl.metrics_text())
            state["index"] = index
            state["problems"] = {}
            for where, expr in exprs:
                p = check_expression(expr, index)
                if p:
                    state["problems"][(where, expr)] = p
            return not state["problems"]
        try:
            wait_for(all_fine, 10.0, "every expression to find its metrics", interval=0.2, ctl=ctl)
        except AssertionError:
            pass
        self.assertEqual(state["problems"], {}, "expressions that read what /metrics does not show")
        # Every family the rule and the dashboard read, the quarantine ones included, was checked.
        read = {n for _, expr in exprs for n, _ in parse_promql(expr)[0]}
        for name in ("device_descheduler_quarantined_nodes", "device_descheduler_quarantine_actions_total",
                     "device_descheduler_quarantine_cap_reached", "device_descheduler_eviction_loops_total",
                     "device_descheduler_api_request_duration_seconds_bucket", "process_resident_memory_bytes",
                     "process_cpu_seconds_total"):
            self.assertIn(name, read)
        # The standard process metrics are there with plausible values.
        m = ctl.metrics()
        rss = m.get(("process_resident_memory_bytes", frozenset()))
        self.assertTrue(rss and rss > 1e6, rss)
        self.assertGreater(m.get(("process_open_fds", frozenset())), 3)
        self.assertGreaterEqual(m.get(("process_max_fds", frozenset())), m.get(("process_open_fds", frozenset())))
        start = m.get(("process_start_time_seconds", frozenset()))
        self.assertLessEqual(abs(start - time.time()), 120, "process_start_time_seconds %s" % start)
        self.assertIsNotNone(m.get(("process_cpu_seconds_total", frozenset())))
        self.assertGreaterEqual(m.get(("device_descheduler_api_request_duration_seconds_count",
                                       frozenset({("verb", "create"), ("resource", "pods/eviction")}))), 3)
        self.assertStopsCleanly(ctl)


tearDownModule = stop_shared_servers

if __name__ == "__main__":
    unittest.main()
