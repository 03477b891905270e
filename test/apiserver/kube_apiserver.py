#!/usr/bin/env python3
"""A small Kubernetes API server for tests: TLS with bearer tokens and client certificates,
JSON over HTTP/1.1, list/watch with the real server's resourceVersion semantics, the Eviction
subresource with PodDisruptionBudgets, optional RBAC, and a fault-injection admin API under
/_test/. Python standard library only; see README.md in this directory.

Usage: kube_apiserver.py --dir DIR [--plain] [--host 127.0.0.1] [--port 0]
       [--bookmark-interval-ms 1000] [--history 10000] [--pod-termination-ms 100]
       [--enforce-rbac] [--simulate] [--device-taint-rule-version v1|v1beta2|v1alpha3|none]
"""

import argparse
import base64
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import labelsel as sel  # noqa: E402
import resources  # noqa: E402
import tables  # noqa: E402
from cluster import Cluster, NAMESPACE  # noqa: E402
from store import ApiError, Store, Watcher  # noqa: E402

MAX_BODY = 3 * 1024 * 1024
VERSION = {"major": "1", "minor": "34", "gitVersion": "v1.34.0", "gitCommit": "0000000000000000000000000000000000000000",
           "gitTreeState": "clean", "buildDate": "2025-08-27T00:00:00Z", "goVersion": "go1.24.6",
           "compiler": "gc", "platform": "linux/amd64", "emulationMajor": "1", "emulationMinor": "34",
           "minCompatibilityMajor": "1", "minCompatibilityMinor": "33"}
SA_USER = "system:serviceaccount:kube-system:device-descheduler"
ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz", "/version")
CONTINUE_EXPIRED = ("The provided continue parameter is too old to display a consistent list result. You can start a new "
                    "list without the continue parameter, or use the continue token in this response to retrieve the "
                    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
           429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def dumps(o):
    return json.dumps(o, separators=(",", ":"))


def groups_for(user):
    if user.startswith("system:serviceaccount:"):
        ns = user.split(":")[2]
        return ["system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"]
    return ["system:authenticated"]


# --------------------------------------------------------------------------- certificates / kubeconfigs

def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(d):
    """CA, server cert (127.0.0.1, localhost), client cert (CN=client-cert-user, O=system:masters), unrelated CA.
    Independent openssl runs go in parallel to keep start-up short."""
    p = lambda n: os.path.join(d, n)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def ca(name, cn):
        _openssl("req", "-x509", *ec, "-keyout", p(name + ".key"), "-out", p(name + ".crt"), "-days", "3650",
                 "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def leaf(name, subj, serial):
        _openssl("req", *ec, "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", subj)
        _openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
                 "-set_serial", str(serial), "-out", p(name + ".crt"), "-days", "3650", "-extfile", p(name + ".ext"))

    with open(p("server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n")
    with open(p("client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n")
    wrong = threading.Thread(target=ca, args=("wrong-ca", "unrelated-ca"))
    wrong.start()
    ca("ca", "test-apiserver-ca")
    ts = [threading.Thread(target=leaf, args=("server", "/CN=kube-apiserver", 2)),
          threading.Thread(target=leaf, args=("client", "/O=system:masters/CN=client-cert-user", 3))]
    for t in ts:
        t.start()
    for t in ts + [wrong]:
        t.join()
    for k in ("ca.key", "wrong-ca.key", "server.key", "client.key"):
        if not os.path.exists(p(k[:-4] + ".crt")):
            raise RuntimeError("openssl failed to make %s" % k)
        os.chmod(p(k), 0o600)


def _write_kubeconfig_by_hand(path, url, ca, user, cred):
    lines = ["apiVersion: v1", "kind: Config", "clusters:", "- cluster:"]
    if ca:
        lines.append("    certificate-authority: %s" % ca)
    lines += ["    server: %s" % url, "  name: test", "contexts:", "- context:", "    cluster: test",
              "    user: %s" % user, "  name: test", "current-context: test", "users:", "- name: %s" % user, "  user:"]
    for k, v in cred.items():
        lines.append("    %s: %s" % (k, v))
    lines.insert(lines.index("kind: Config") + 1, "preferences: {}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def write_kubeconfig(path, url, ca, user, cred_args, cred_hand):
    """Write a kubeconfig with real `kubectl config` (falls back to a hand-written file without kubectl)."""
    if os.path.exists(path):
        os.unlink(path)
    kubectl = shutil.which("kubectl")
    if not kubectl:
        _write_kubeconfig_by_hand(path, url, ca, user, cred_hand)
        return
    base = [kubectl, "config", "--kubeconfig", path]
    cluster = ["set-cluster", "test", "--server", url]
    if ca:
        cluster += ["--certificate-authority", ca]
    for cmd in (cluster, ["set-credentials", user] + cred_args,
                ["set-context", "test", "--cluster", "test", "--user", user], ["use-context", "test"]):
        subprocess.run(base + cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# --------------------------------------------------------------------------- the server state

class ApiServerState:
    """Everything that outlives a listener restart."""

    def __init__(self, args):
        self.args = args
        self.dir = os.path.abspath(args.dir)
        self.store = Store(args.history)
        self.cluster = Cluster(self.store, args.pod_termination_ms)
        self.admin_token = secrets.token_hex(24)
        self.tokens = {secrets.token_hex(24): SA_USER}
        self.faults = []
        self.flock = threading.Lock()
        self.log = []
        self.seq = 0
        self.stalled = False
        self.http_410 = False
        # WatchList (sendInitialEvents): off by default, as on a server without the feature, so the
        # suite's LIST scenarios keep the paged path; --watch-list or /_test/watch-list turns it on.
        self.watch_list = bool(getattr(args, "watch_list", False))
        self.aggregated_discovery = bool(getattr(args, "aggregated_discovery", False))
        self.conns = set()
        self.httpd = None
        self.port = args.port
        self.ssl_ctx = None
        self.scheme = "http" if args.plain else "https"
        self.simulator = None

    def url(self):
        return "%s://%s:%d" % (self.scheme, self.args.host, self.port)

    def authenticate(self, handler):
        """(user, groups) for a request, None for anonymous, or raise ApiError 401/403.
        Impersonate-User/-Group headers are honoured for system:masters users only."""
        ident = self._authenticate(handler)
        imp = handler.headers.get("Impersonate-User")
        if imp and ident:
            if "system:masters" not in ident[1]:
                raise ApiError(403, "Forbidden", 'users "%s" is forbidden: User "%s" cannot impersonate resource "users" in API group "" at the cluster scope'
                               % (imp, ident[0]), {"name": imp, "kind": "users"})
            groups = handler.headers.get_all("Impersonate-Group") or []
            return (imp, list(groups) + [g for g in groups_for(imp) if g not in groups])
        return ident

    def _authenticate(self, handler):
        auth = handler.headers.get("Authorization")
        if auth:
            parts = auth.split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "bearer":
                tok = parts[1].strip()
                if secrets.compare_digest(tok, self.admin_token):
                    return ("admin", ["system:masters", "system:authenticated"])
                user = self.tokens.get(tok)
                if user:
                    return (user, groups_for(user))
            raise ApiError(401, "Unauthorized", "Unauthorized")
        cert = getattr(handler, "peer_cert", None)
        if cert:
            cn, orgs = None, []
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
                    elif k == "organizationName":
                        orgs.append(v)
            if cn:
                return (cn, orgs + ["system:authenticated"])
        if self.args.plain:
            # Like the old insecure port: kubectl sends no bearer token over plain HTTP.
            return ("admin", ["system:masters", "system:authenticated"])
        return None

    def take_fault(self, method, path, query):
        with self.flock:
            for f in self.faults:
                if f["count"] <= 0:
                    continue
                if f["method"] and f["method"].upper() != method:
                    continue
                if not f["path_re"].search(path):
                    continue
                if f["query_re"] and not f["query_re"].search(query):
                    continue
                f["count"] -= 1
                return f
        return None


# --------------------------------------------------------------------------- HTTP

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-kube-apiserver"
    sys_version = ""
    state = None  # set on the class by main()

    def setup(self):
        st = self.state
        self.peer_cert = None
        if st.ssl_ctx is not None:
            self.request.settimeout(10)
            try:
                self.request = st.ssl_ctx.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError):
                self.request.close()
                raise
            self.request.settimeout(None)
            try:
                self.peer_cert = self.request.getpeercert()
            except (ValueError, ssl.SSLError):
                self.peer_cert = None
        with st.flock:
            st.conns.add(self.request)
        super().setup()

    def finish(self):
        with self.state.flock:
            self.state.conns.discard(self.request)
        try:
            super().finish()
        except OSError:
            pass

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, OSError):
            pass

    def log_message(self, fmt, *args):  # quiet: the request log is the admin API's
        pass

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    # -------------------------------------------------------------- responses
    def send_body(self, code, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.status_code = code

    def send_error_status(self, e):
        h = dict(e.headers)
        self.send_body(e.code, e.status(), headers=h)

    # -------------------------------------------------------------- dispatch
    def dispatch(self):
        st = self.state
        t0 = time.time()
        self.status_code = 0
        u = urllib.parse.urlsplit(self.path)
        path, rawq = u.path, u.query
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(rawq, keep_blank_values=True).items()}
        entry = None
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                left = length
                while 0 < left and length <= 16 * MAX_BODY:  # drain it so the client reads our answer
                    n = len(self.rfile.read(min(left, 65536)))
                    if n == 0:
                        break
                    left -= n
                raise ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is %d" % MAX_BODY)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raw = self._read_chunked()
            else:
                raw = self.rfile.read(length) if length else b""
            if path.startswith("/_test/") or path == "/_test":
                ident = st.authenticate(self)
                if not ident or ident[0] != "admin":
                    if not ident:
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                    raise ApiError(403, "Forbidden", "the admin API needs the admin token")
                return self.admin(path, q, raw)
            req = self.classify(path, q)
            entry = {"seq": 0, "time": t0, "user": "", "verb": req["verb"], "subresource": req.get("sub") or "",
                     "method": self.command, "path": path, "query": rawq, "status": 0, "duration_ms": 0.0,
                     "watch": req["verb"] == "watch", "namespace": req.get("ns") or "",
                     "resource": req["res"].plural if req.get("res") else "", "name": req.get("name") or ""}
            with st.flock:
                st.seq += 1
                entry["seq"] = st.seq
                st.log.append(entry)
                if len(st.log) > 200000:  # bounded for long demo runs
                    del st.log[:20000]
            ident = st.authenticate(self)
            if ident is None and path not in ANONYMOUS_PATHS:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            user, groups = ident or ("system:anonymous", ["system:unauthenticated"])
            self.ident = (user, groups)
            entry["user"] = user
            fault = st.take_fault(self.command, path, rawq)
            if fault:
                if fault.get("delay_ms"):
                    time.sleep(fault["delay_ms"] / 1000.0)
                if fault.get("status"):
                    code = int(fault["status"])
                    hdrs = {}
                    details = None
                    if fault.get("retry_after") is not None:
                        hdrs["Retry-After"] = str(int(fault["retry_after"]))
                        details = {"retryAfterSeconds": int(fault["retry_after"])}
                    msg = fault.get("message") or "injected fault: %d %s" % (code, REASONS.get(code, ""))
                    raise ApiError(code, fault.get("reason") or REASONS.get(code, "Unknown"), msg, details, hdrs)
            if st.args.enforce_rbac and "system:masters" not in groups:
                self.check_rbac(user, groups, req, path)
            self.route(req, q, raw, path)
        except ApiError as e:
            try:
                self.send_error_status(e)
            except OSError:
                self.close_connection = True
        except (ConnectionError, ssl.SSLError, BrokenPipeError):
            self.close_connection = True
        except OSError:
            self.close_connection = True
        except Exception as e:  # a bug here must still answer like a server
            import traceback
            traceback.print_exc(file=sys.stderr)
            try:
                self.send_error_status(ApiError(500, "InternalError", "Internal error occurred: %s" % e))
            except OSError:
                self.close_connection = True
        finally:
            if entry is not None:
                entry["status"] = self.status_code
                entry["duration_ms"] = round((time.time() - t0) * 1000.0, 3)

    def _read_chunked(self):
        out = bytearray()
        while True:
            line = self.rfile.readline()
            n = int(line.split(b";")[0].strip() or b"0", 16)
            if n == 0:
                self.rfile.readline()
                return bytes(out)
            out += self.rfile.read(n)
            self.rfile.readline()
            if len(out) > MAX_BODY:
                self.close_connection = True
                raise ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is %d" % MAX_BODY)

    def classify(self, path, q):
        """Split a URL path into the request attributes (verb, resource, namespace, name, subresource)."""
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        req = {"verb": self.command.lower(), "res": None, "path": path}
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            req["nonresource"] = True
            req["verb"] = {"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}.get(self.command, "get")
            return req
        watch = False
        if rest[:1] == ["watch"]:
            watch, rest = True, rest[1:]
        if not rest:
            req["nonresource"] = True
            req["verb"] = "get"
            return req
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in resources.BY_PATH:
            ns, rest = rest[1], rest[2:]
        res = resources.BY_PATH.get((group, version, rest[0]))
        if res is None:
            req["unknown"] = (group, version, rest[0])
            req["verb"] = "get"
            return req
        req["res"] = res
        req["ns"] = ns
        req["name"] = rest[1] if len(rest) > 1 else None
        req["sub"] = rest[2] if len(rest) > 2 else None
        req["extra"] = rest[3:]
        if q.get("watch") in ("1", "true", "True") or watch:
            watch = True
        m = self.command
        if m in ("GET", "HEAD"):
            req["verb"] = "watch" if watch else ("get" if req["name"] else "list")
        elif m == "POST":
            req["verb"] = "create"
        elif m == "PUT":
            req["verb"] = "update"
        elif m == "PATCH":
            req["verb"] = "patch"
        elif m == "DELETE":
            req["verb"] = "delete" if req["name"] else "deletecollection"
        return req

    def check_rbac(self, user, groups, req, path):
        st = self.state
        res = req.get("res")
        if res is None or res.virtual:
            return  # discovery, health, version, openapi and self reviews are open to every authenticated user
        if st.cluster.authorize(user, groups, req["verb"], res.group, res.plural, req.get("sub"), req.get("ns"), req.get("name")):
            return
        rname = res.plural + ("/" + req["sub"] if req.get("sub") else "")
        if req.get("ns"):
            why = 'User "%s" cannot %s resource "%s" in API group "%s" in the namespace "%s"' % (user, req["verb"], rname, res.group, req["ns"])
        else:
            why = 'User "%s" cannot %s resource "%s" in API group "%s" at the cluster scope' % (user, req["verb"], rname, res.group)
        details = {"kind": res.plural}
        if res.group:
            details["group"] = res.group
        if req.get("name"):
            details["name"] = req["name"]
            msg = '%s "%s" is forbidden: %s' % (res.qualified, req["name"], why)
        else:
            msg = "%s is forbidden: %s" % (res.qualified, why)
        raise ApiError(403, "Forbidden", msg, details)

    # -------------------------------------------------------------- routing
    def route(self, req, q, raw, path):
        if req.get("nonresource"):
            return self.nonresource(path)
        if req.get("unknown"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        res, ns, name, sub, verb = req["res"], req.get("ns"), req.get("name"), req.get("sub"), req["verb"]
        if req.get("extra") or (sub and sub not in res.subresources):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if res.namespaced and verb in ("create",) and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if not res.namespaced and ns is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if res.namespaced and name and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        nsv = ns or ""
        cl = self.state.cluster
        dry = q.get("dryRun") == "All"
        if verb == "list":
            return self.do_list(res, ns, q)
        if verb == "watch":
            return self.do_watch(res, ns, q, name)
        if verb == "get":
            if sub == "eviction":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            with self.state.store.lock:
                obj = self.state.store.get(res, nsv, name)
            if obj is None:
                raise_not_found(res, name)
            return self.send_obj(200, res, obj, q)
        if res.virtual:
            if verb != "create":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            if (self.headers.get("Content-Type") or "").startswith("application/vnd.kubernetes.protobuf"):
                try:
                    body = decode_review_protobuf(raw)
                except (ValueError, IndexError):
                    raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
            else:
                body = parse_json(raw)
            return self.send_body(201, self.review(res, body))
        if verb == "create":
            body = parse_json(raw)
            if sub == "eviction":
                if res.plural != "pods" or not name:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
                return self.send_body(201, cl.evict(nsv, name, body))
            if name or sub:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            obj = cl.create(res, nsv, body, dry_run=dry)
            return self.send_body(201, obj)
        if sub == "eviction":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if verb == "update":
            obj = cl.update(res, nsv, name, parse_json(raw), sub, dry_run=dry)
            return self.send_body(200, obj)
        if verb == "patch":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            kinds = {"application/merge-patch+json": "merge", "application/strategic-merge-patch+json": "strategic",
                     "application/json-patch+json": "json", "application/apply-patch+yaml": "apply"}
            ptype = kinds.get(ctype)
            if ptype == "apply":
                # Server-side apply, reduced: create if missing, else a merge patch (no field ownership).
                body = parse_json(raw)
                with self.state.store.lock:
                    exists = self.state.store.get(res, nsv, name) is not None
                if not exists and not sub:
                    if isinstance(body, dict):
                        body.setdefault("metadata", {})["name"] = name
                    return self.send_body(201, cl.create(res, nsv, body, dry_run=dry))
                if isinstance(body, dict):
                    body.pop("apiVersion", None)
                    body.pop("kind", None)
                obj = cl.patch(res, nsv, name, "merge", body, sub, dry_run=dry)
                return self.send_body(200, obj)
            if ptype is None:
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown format - accepted media types include: "
                               "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json")
            obj = cl.patch(res, nsv, name, ptype, parse_json(raw), sub, dry_run=dry)
            return self.send_body(200, obj)
        if verb == "delete":
            body = parse_json(raw) if raw.strip() else {}
            grace = body.get("gracePeriodSeconds") if isinstance(body, dict) else None
            if q.get("gracePeriodSeconds", "") != "":
                try:
                    grace = int(q["gracePeriodSeconds"])
                except ValueError:
                    raise ApiError(400, "BadRequest", "gracePeriodSeconds must be an integer")
            pre = body.get("preconditions") if isinstance(body, dict) else None
            dry = dry or (isinstance(body, dict) and body.get("dryRun") == ["All"])
            code, out = cl.delete(res, nsv, name, grace, pre, dry_run=dry)
            return self.send_body(code, out)
        if verb == "deletecollection":
            return self.do_deletecollection(res, ns, q)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def review(self, res, body):
        """SelfSubjectAccessReview (kubectl auth can-i) and SelfSubjectReview (kubectl auth whoami)."""
        user, groups = self.ident
        out = dict(body) if isinstance(body, dict) else {}
        out["apiVersion"], out["kind"] = res.api_version, res.kind
        out.setdefault("metadata", {})["creationTimestamp"] = None
        if res.kind == "SelfSubjectReview":
            out["status"] = {"userInfo": {"username": user, "groups": groups}}
            return out
        ra = (out.get("spec") or {}).get("resourceAttributes")
        if "system:masters" in groups or not self.state.args.enforce_rbac:
            allowed = True
        elif ra:
            allowed = self.state.cluster.authorize(user, groups, ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""),
                                                   ra.get("subresource") or None, ra.get("namespace") or None, ra.get("name") or None)
        else:
            nra = (out.get("spec") or {}).get("nonResourceAttributes") or {}
            allowed = self.state.cluster.authorize(user, groups, nra.get("verb", ""), "", None, None, None, nra.get("path", ""))
        out["status"] = {"allowed": allowed}
        return out

    def send_obj(self, code, res, obj, q):
        accept = self.headers.get("Accept") or ""
        if "as=Table" in accept:
            t = tables.table(res.kind, [obj], obj["metadata"].get("resourceVersion", ""), q.get("includeObject", "Metadata"))
            return self.send_body(code, t, ctype="application/json;as=Table;v=v1;g=meta.k8s.io")
        return self.send_body(code, obj)

    def nonresource(self, path):
        p = path.rstrip("/") or "/"
        if self.command not in ("GET", "HEAD"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if p in ("/healthz", "/livez", "/readyz"):
            return self.send_body(200, "ok", ctype="text/plain; charset=utf-8")
        if p == "/version":
            return self.send_body(200, VERSION)
        if p == "/openapi/v2":
            # An empty protobuf openapi_v2.Document: kubectl finds no schema for any kind, so its
            # client-side validation and apply patch computation fall back to built-in types.
            return self.send_body(200, b"", ctype="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        aggregated = self.state.aggregated_discovery and "as=APIGroupDiscoveryList" in (self.headers.get("Accept") or "")
        if p in ("/api", "/apis") and aggregated:
            # Aggregated discovery (Kubernetes 1.26+) only when the server was told to offer it and
            # the client asks for it, as client-go does; plain discovery otherwise.
            return self.send_body(200, resources.api_group_discovery_list(legacy=p == "/api"),
                                  ctype="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
        if p == "/api":
            return self.send_body(200, resources.api_versions())
        if p == "/apis":
            return self.send_body(200, resources.api_group_list())
        parts = p.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            d = resources.api_resource_list("", parts[1])
            if d:
                return self.send_body(200, d)
        if parts[0] == "apis" and len(parts) == 2:
            d = resources.api_group(parts[1])
            if d:
                return self.send_body(200, d)
        if parts[0] == "apis" and len(parts) == 3:
            d = resources.api_resource_list(parts[1], parts[2])
            if d:
                return self.send_body(200, d)
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    # -------------------------------------------------------------- list
    def do_list(self, res, ns, q):
        st = self.state
        try:
            lreq = sel.parse_label_selector(q.get("labelSelector", ""))
            freq = sel.parse_field_selector(q.get("fieldSelector", ""), res.plural)
        except ValueError as e:
            raise ApiError(400, "BadRequest", str(e))
        limit = 0
        if q.get("limit"):
            try:
                limit = max(0, int(q["limit"]))
            except ValueError:
                raise ApiError(400, "BadRequest", "limit must be an integer")
        rv_q = q.get("resourceVersion", "")
        if rv_q and not rv_q.isdigit():  # what the real server answers (checked against v1.37)
            raise ApiError(400, "BadRequest", 'invalid resource version: resourceVersion: Invalid value: "%s": '
                           'strconv.ParseUint: parsing "%s": invalid syntax' % (rv_q, rv_q))
        start = None
        store = st.store
        with store.lock:
            list_rv = store.rv
            changed = {}
            if q.get("continue"):
                try:
                    tok = json.loads(base64.urlsafe_b64decode(q["continue"] + "=" * (-len(q["continue"]) % 4)))
                    list_rv = int(tok["rv"])
                    start = tuple(tok["start"])
                except Exception:
                    raise ApiError(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
                try:
                    changed = store.state_at(res, list_rv)
                except ApiError:
                    raise ApiError(410, "Expired", CONTINUE_EXPIRED)
            keys = store.sorted_keys(res)
            if changed:
                keys = sorted(set(keys) | set(changed))
            import bisect
            if start is not None:
                i = bisect.bisect_right(keys, start)
            elif ns is not None:
                i = bisect.bisect_left(keys, (ns, ""))
            else:
                i = 0
            cur = store.objects[res.key]
            items, last, more, remaining = [], None, False, 0
            n = len(keys)
            while i < n:
                k = keys[i]
                i += 1
                if ns is not None and k[0] != ns:
                    if k[0] > ns:
                        break
                    continue
                o = changed[k] if k in changed else cur.get(k)
                if o is None:
                    continue
                if lreq and not sel.label_match(lreq, o["metadata"].get("labels")):
                    continue
                if freq and not sel.field_match(freq, o):
                    continue
                if limit and len(items) >= limit:
                    more = True
                    remaining += 1
                    if lreq or freq:
                        break
                    continue
                items.append(o)
                last = k
        meta = {"resourceVersion": str(list_rv)}
        if more:
            tok = {"v": "meta.k8s.io/v1", "rv": list_rv, "start": list(last)}
            meta["continue"] = base64.urlsafe_b64encode(dumps(tok).encode()).decode().rstrip("=")
            if not (lreq or freq):
                meta["remainingItemCount"] = remaining
        accept = self.headers.get("Accept") or ""
        if "as=Table" in accept:
            t = tables.table(res.kind, items, list_rv, q.get("includeObject", "Metadata"), meta.get("continue"))
            return self.send_body(200, t, ctype="application/json;as=Table;v=v1;g=meta.k8s.io")
        head = dumps({"kind": res.kind + "List", "apiVersion": res.api_version, "metadata": meta})[:-1]
        body = head + ',"items":[' + ",".join(dumps({k: v for k, v in o.items() if k not in ("kind", "apiVersion")}) for o in items) + "]}"
        return self.send_body(200, body)

    def do_deletecollection(self, res, ns, q):
        try:
            lreq = sel.parse_label_selector(q.get("labelSelector", ""))
            freq = sel.parse_field_selector(q.get("fieldSelector", ""), res.plural)
        except ValueError as e:
            raise ApiError(400, "BadRequest", str(e))
        cl = self.state.cluster
        with self.state.store.lock:
            objs = [o for o in self.state.store.items(res, ns)
                    if sel.label_match(lreq, o["metadata"].get("labels")) and sel.field_match(freq, o)]
            for o in objs:
                if res is NAMESPACE and o["metadata"]["name"] in ("default", "kube-system", "kube-public"):
                    continue
                cl.delete(res, o["metadata"].get("namespace", ""), o["metadata"]["name"])
            rv = self.state.store.rv
        return self.send_body(200, {"kind": "Status", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}, "status": "Success"})

    # -------------------------------------------------------------- watch
    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def do_watch(self, res, ns, q, name):
        st = self.state
        store = st.store
        try:
            lreq = sel.parse_label_selector(q.get("labelSelector", ""))
            freq = sel.parse_field_selector(q.get("fieldSelector", ""), res.plural)
        except ValueError as e:
            raise ApiError(400, "BadRequest", str(e))
        if name:  # legacy /watch/.../NAME form
            freq = freq + [("=", "metadata.name", name)]
        rv_s = q.get("resourceVersion", "")
        send_initial = q.get("sendInitialEvents") in ("true", "1")
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        if "sendInitialEvents" in q:
            # As kube-apiserver's ValidateListOptions: refused without the WatchList feature, and
            # with it only together with resourceVersionMatch=NotOlderThan and bookmarks.
            if not st.watch_list:
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
                               "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled")
            if q.get("resourceVersionMatch") != "NotOlderThan" or (send_initial and not bookmarks):
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: '
                               "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan "
                               "and allowWatchBookmarks")
        timeout = None
        if q.get("timeoutSeconds"):
            try:
                timeout = float(q["timeoutSeconds"])
            except ValueError:
                raise ApiError(400, "BadRequest", "timeoutSeconds must be an integer")
        table = "as=Table" in (self.headers.get("Accept") or "")
        include = q.get("includeObject", "Metadata")
        expired = None
        w = Watcher(res, ns, lreq, freq, urllib.parse.urlsplit(self.path).path, self.request)
        with store.lock:
            if rv_s not in ("", "0"):
                try:
                    rv = int(rv_s)
                except ValueError:
                    raise ApiError(400, "BadRequest", 'resourceVersion: Invalid value: "%s": must be a number' % rv_s)
                if rv < store.floor:
                    expired = "too old resource version: %d (%d)" % (rv, store.floor)
                elif not send_initial:
                    for ev in store.history:
                        if ev.rv > rv and ev.res == res.key:
                            item = w.translate(ev)
                            if item:
                                w.queue.append(item)
            if expired is None:
                if rv_s in ("", "0") or send_initial:
                    for o in store.items(res, ns):
                        if w.matches(o):
                            w.queue.append(("ADDED", o))
                    if send_initial and bookmarks:
                        w.queue.append(("BOOKMARK-INITIAL", store.rv))
                store.watchers.add(w)
        if expired is not None:
            if st.http_410:
                raise ApiError(410, "Expired", expired)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.status_code = 200
            ev = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                              "message": expired, "reason": "Expired", "code": 410}}
            self.write_chunk(dumps(ev).encode() + b"\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json;as=Table;v=v1;g=meta.k8s.io" if table else "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            self.status_code = 200
            self.stream(w, res, timeout, bookmarks, table, include)
        finally:
            with store.lock:
                store.watchers.discard(w)
            w.closed = True

    def stream(self, w, res, timeout, bookmarks, table, include):
        st = self.state
        interval = st.args.bookmark_interval_ms / 1000.0
        now = time.monotonic()
        end = now + timeout if timeout else None
        next_bm = now + interval
        first_table = True
        while True:
            with w.cond:
                if not w.queue and not w.dropped:
                    waits = [next_bm if bookmarks else now + 1.0]
                    if end:
                        waits.append(end)
                    w.cond.wait(max(0.0, min(waits) - time.monotonic()) + 0.001)
                if w.dropped:
                    self.close_connection = True
                    return
                batch = []
                if not st.stalled:
                    while w.queue:
                        batch.append(w.queue.popleft())
            if st.stalled:
                time.sleep(0.05)
                now = time.monotonic()
                continue
            out = []
            for etype, obj in batch:
                if etype == "BOOKMARK-INITIAL":
                    ev = {"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version,
                                                         "metadata": {"resourceVersion": str(obj),
                                                                      "annotations": {"k8s.io/initial-events-end": "true"}}}}
                    out.append(dumps(ev).encode() + b"\n")
                    continue
                if table:
                    obj = tables.table(res.kind, [obj], obj["metadata"].get("resourceVersion"), include, headers=first_table)
                    first_table = False
                out.append(b'{"type":"%s","object":%s}\n' % (etype.encode(), dumps(obj).encode()))
            for line in out:
                self.write_chunk(line)
            now = time.monotonic()
            if bookmarks and now >= next_bm:
                with st.store.lock:
                    bm_rv = st.store.rv if not w.queue else None
                if bm_rv is not None:
                    ev = {"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version,
                                                         "metadata": {"resourceVersion": str(bm_rv)}}}
                    self.write_chunk(dumps(ev).encode() + b"\n")
                next_bm = now + interval
            if end and now >= end:
                with w.cond:
                    pending = bool(w.queue)
                if not pending:
                    self.wfile.write(b"0\r\n\r\n")
                    return

    # -------------------------------------------------------------- admin API
    def admin(self, path, q, raw):
        st = self.state
        body = parse_json(raw) if raw.strip() else {}
        m = self.command
        op = path[len("/_test/"):].strip("/")
        if op == "reset" and m == "POST":
            with st.flock:
                st.faults = []
                st.log = []
            st.stalled = False
            st.http_410 = False
            st.watch_list = bool(st.args.watch_list)
            st.cluster.reset()
            return self.send_body(200, {"resourceVersion": str(st.store.rv)})
        if op == "objects" and m == "POST":
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise ApiError(400, "BadRequest", 'expected {"items": [...]}')
            out = st.cluster.bulk(items)
            short = [{"apiVersion": o["apiVersion"], "kind": o["kind"], "namespace": o["metadata"].get("namespace", ""),
                      "name": o["metadata"]["name"], "uid": o["metadata"]["uid"],
                      "resourceVersion": o["metadata"]["resourceVersion"]} for o in out]
            return self.send_body(200, {"count": len(out), "resourceVersion": str(st.store.rv), "items": short})
        if op == "faults":
            if m == "DELETE":
                with st.flock:
                    st.faults = []
                return self.send_body(200, {"faults": []})
            if m == "GET":
                with st.flock:
                    return self.send_body(200, {"faults": [{k: v for k, v in f.items() if not k.endswith("_re")} for f in st.faults]})
            if m == "POST":
                fl = body.get("faults") if isinstance(body, dict) and "faults" in body else [body]
                new = []
                for f in fl:
                    try:
                        f = dict(f)
                        f["path_re"] = re.compile(f.get("path_regex") or "")
                        f["query_re"] = re.compile(f["query_regex"]) if f.get("query_regex") else None
                    except re.error as e:
                        raise ApiError(400, "BadRequest", "bad regex: %s" % e)
                    f.setdefault("method", "")
                    f["count"] = int(f.get("count", 1))
                    new.append(f)
                with st.flock:
                    st.faults.extend(new)
                return self.send_body(200, {"added": len(new)})
        if op == "drop-watches" and m == "POST":
            rx = re.compile(body.get("path_regex") or "") if isinstance(body, dict) else re.compile("")
            with st.store.lock:
                n = drop_watches(st.store, rx)
            return self.send_body(200, {"dropped": n})
        if op == "watch-list" and m == "POST":
            st.watch_list = bool(body.get("enabled", True))
            return self.send_body(200, {"watchList": st.watch_list})
        if op == "stall-watches" and m == "POST":
            st.stalled = bool(body.get("enabled", True))
            with st.store.lock:
                ws = list(st.store.watchers)
            for w in ws:
                w.wake()
            return self.send_body(200, {"stalled": st.stalled})
        if op == "compact" and m == "POST":
            body = body if isinstance(body, dict) else {}
            if "http_410" in body:
                st.http_410 = bool(body["http_410"])
            cut = body.get("cut_watches")
            n = 0
            with st.store.lock:
                if cut is not None:
                    # In one step under the lock, so that no bookmark can hand a client the
                    # new floor before its watch is cut: a write nobody watches, the
                    # compaction, the cut. Every resourceVersion a client holds is then
                    # too old, and each cut watch must relist.
                    st.store.next_rv()
                st.store.compact()
                rv = st.store.rv
                if cut is not None:
                    n = drop_watches(st.store, re.compile(cut))
            return self.send_body(200, {"compactedTo": str(rv), "http_410": st.http_410, "dropped": n})
        if op == "restart" and m == "POST":
            down = int(body.get("down_ms", 500)) if isinstance(body, dict) else 500
            self.send_body(200, {"down_ms": down})
            self.wfile.flush()
            self.close_connection = True
            threading.Thread(target=restart_listener, args=(st, down), daemon=True).start()
            return
        if op == "tokens" and m == "POST":
            toks = body.get("tokens") if isinstance(body, dict) else None
            if not isinstance(toks, dict):
                raise ApiError(400, "BadRequest", 'expected {"tokens": {"TOKEN": "user"}}')
            st.tokens = {str(k): str(v) for k, v in toks.items()}
            return self.send_body(200, {"count": len(st.tokens)})
        if op == "requests":
            if m == "DELETE":
                with st.flock:
                    st.log = []
                return self.send_body(200, {"items": []})
            if m == "GET":
                with st.flock:
                    items = [dict(e) for e in st.log]
                return self.send_body(200, {"items": items})
        if op == "dra" and m == "POST":
            # {"version": "v1"|"v1beta2"|"v1beta1"|"none", "aggregated": bool}: which DRA version
            # is served from now on (like an upgrade), and whether /apis offers aggregated discovery.
            body = body if isinstance(body, dict) else {}
            try:
                if "version" in body:
                    resources.serve_dra(body["version"])
            except ValueError as e:
                raise ApiError(400, "BadRequest", str(e))
            if "aggregated" in body:
                st.aggregated_discovery = bool(body["aggregated"])
            return self.send_body(200, {"version": resources.served_dra_version(),
                                        "aggregated": st.aggregated_discovery})
        if op == "simulator" and m == "POST":
            # {"ignoreTaints": true}: the simulated scheduler places pods as if no node had taints
            # and none were cordoned (a scheduler that does not see the fence, for loop tests).
            if st.simulator is None:
                raise ApiError(400, "BadRequest", "the server runs without --simulate")
            if isinstance(body, dict) and "ignoreTaints" in body:
                st.simulator.ignore_taints = bool(body["ignoreTaints"])
                st.simulator.dirty.set()
            return self.send_body(200, {"ignoreTaints": st.simulator.ignore_taints})
        if op == "state" and m == "GET":
            with st.store.lock:
                return self.send_body(200, {"resourceVersion": str(st.store.rv), "floor": str(st.store.floor),
                                            "history": len(st.store.history), "watches": len(st.store.watchers),
                                            "stalled": st.stalled, "http_410": st.http_410})
        raise ApiError(404, "NotFound", "unknown admin operation %s %s" % (m, path))


def _pb_fields(buf):
    """Minimal protobuf wire-format reader: {field number: [values]} (bytes for length-delimited)."""
    out, i = {}, 0

    def varint():
        nonlocal i
        shift = v = 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v
    while i < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            val = varint()
        elif wt == 2:
            n = varint()
            val = bytes(buf[i:i + n])
            i += n
        elif wt == 1:
            val, i = bytes(buf[i:i + 8]), i + 8
        elif wt == 5:
            val, i = bytes(buf[i:i + 4]), i + 4
        else:
            raise ValueError("unsupported protobuf wire type %d" % wt)
        out.setdefault(num, []).append(val)
    return out


def decode_review_protobuf(raw):
    """A SelfSubjectAccessReview sent as application/vnd.kubernetes.protobuf (kubectl auth can-i does)."""
    if not raw.startswith(b"k8s\x00"):
        raise ValueError("not a kubernetes protobuf envelope")
    unknown = _pb_fields(raw[4:])
    obj = _pb_fields((unknown.get(2) or [b""])[0])
    spec = _pb_fields((obj.get(2) or [b""])[0])
    s = lambda f, n: f.get(n, [b""])[0].decode()  # noqa: E731
    out = {"spec": {}}
    if 1 in spec:
        ra = _pb_fields(spec[1][0])
        out["spec"]["resourceAttributes"] = {k: s(ra, n) for n, k in ((1, "namespace"), (2, "verb"), (3, "group"), (4, "version"),
                                                                     (5, "resource"), (6, "subresource"), (7, "name"))}
    if 2 in spec:
        nra = _pb_fields(spec[2][0])
        out["spec"]["nonResourceAttributes"] = {"path": s(nra, 1), "verb": s(nra, 2)}
    return out


def parse_json(raw):
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ApiError(400, "BadRequest", "the body of the request could not be decoded: %s" % e)


def raise_not_found(res, name):
    from store import not_found
    raise not_found(res, name)


# --------------------------------------------------------------------------- listener

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # TLS handshakes that fail (wrong CA tests) and dropped peers are expected


def start_listener(st):
    httpd = Server((st.args.host, st.port), Handler)
    st.port = httpd.server_address[1]
    st.httpd = httpd
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return httpd


def drop_watches(store, rx):
    """Cuts the open watches whose path matches rx (the caller holds store.lock)."""
    n = 0
    for w in [w for w in store.watchers if rx.search(w.path)]:
        w.dropped = True
        n += 1
        try:
            w.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        w.wake()
    return n


def restart_listener(st, down_ms):
    """Close the listener and every connection, then listen again on the same port after down_ms."""
    time.sleep(0.05)
    httpd = st.httpd
    httpd.shutdown()
    httpd.server_close()
    with st.flock:
        conns = list(st.conns)
    with st.store.lock:
        ws = list(st.store.watchers)
    for w in ws:
        w.dropped = True
    for c in conns:
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    for w in ws:
        w.wake()
    time.sleep(down_ms / 1000.0)
    for _ in range(100):
        try:
            start_listener(st)
            return
        except OSError:
            time.sleep(0.05)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="directory for certificates, tokens and kubeconfigs")
    ap.add_argument("--plain", action="store_true", help="serve HTTP without TLS")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (kept across /_test/restart)")
    ap.add_argument("--bookmark-interval-ms", type=int, default=1000)
    ap.add_argument("--history", type=int, default=10000, help="watch history size (events)")
    ap.add_argument("--pod-termination-ms", type=int, default=100)
    ap.add_argument("--enforce-rbac", action="store_true")
    ap.add_argument("--simulate", action="store_true", help="run a tiny ReplicaSet controller")
    ap.add_argument("--dra-version", default="v1",
                    help="the resource.k8s.io version serving resourceclaims and resourceslices "
                    "(v1, v1beta2, v1beta1) or none")
    ap.add_argument("--aggregated-discovery", action="store_true",
                    help="answer GET /api and /apis with aggregated discovery when the client asks for it")
    ap.add_argument("--watch-list", action="store_true",
                    help="serve WatchList (watch with sendInitialEvents=true); off: refuse it with 422")
    ap.add_argument("--device-taint-rule-version", default="v1",
                    help="the resource.k8s.io version that serves devicetaintrules (v1, v1beta2, v1alpha3) or none")
    args = ap.parse_args(argv)
    resources.serve_dra(args.dra_version)
    resources.serve_device_taint_rules(args.device_taint_rule_version)
    os.makedirs(args.dir, exist_ok=True)
    st = ApiServerState(args)
    Handler.state = st
    d = st.dir
    # Bind first so the URL is known, then make certificates and kubeconfigs in parallel.
    httpd = Server((args.host, args.port), Handler, bind_and_activate=True)
    st.port = httpd.server_address[1]
    st.httpd = httpd
    url = st.url()
    sa_token = next(iter(st.tokens))
    for name, tok in (("admin-token", st.admin_token), ("token", sa_token)):
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(tok)
        os.chmod(p, 0o600)
    with open(os.path.join(d, "url"), "w") as f:
        f.write(url + "\n")
    ca = None if args.plain else os.path.join(d, "ca.crt")
    jobs = [
        (os.path.join(d, "kubeconfig"), "device-descheduler", ["--token", sa_token], {"token": sa_token}),
        (os.path.join(d, "kubeconfig-admin"), "admin", ["--token", st.admin_token], {"token": st.admin_token}),
        (os.path.join(d, "kubeconfig-cert"), "client-cert-user",
         ["--client-certificate", os.path.join(d, "client.crt"), "--client-key", os.path.join(d, "client.key")],
         {"client-certificate": os.path.join(d, "client.crt"), "client-key": os.path.join(d, "client.key")}),
    ]
    errors = []

    def job(*a):
        try:
            write_kubeconfig(*a)
        except Exception as e:  # reported below; a test without kubeconfigs would fail confusingly
            errors.append(e)
    if not args.plain:
        make_certs(d)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
        ctx.load_verify_locations(os.path.join(d, "ca.crt"))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        st.ssl_ctx = ctx
    # Serve before running kubectl: the gcloud kubectl dispatcher asks the server for its version.
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    # The service-account kubeconfig is written by kubectl itself; the admin and client-certificate
    # ones are written in the same layout without it (four kubectl runs each would slow start-up).
    p0, u0, a0, h0 = jobs[0]
    job(p0, url, ca, u0, a0, h0)
    for p, u, _a, h in jobs[1:]:
        _write_kubeconfig_by_hand(p, url, "ca.crt" if ca else None, u, h)
    if errors:
        print("kubeconfig: %s" % errors[0], file=sys.stderr)
        return 1
    if args.simulate:
        import simulate
        st.simulator = simulate.Simulator(st.cluster)
        st.simulator.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    print("READY %s" % url, flush=True)
    while not stop.wait(1.0):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
