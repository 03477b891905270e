"""Test helper for the test API server: start it as a subprocess and talk to it.

    from harness import ApiServer          # sys.path must include test/apiserver
    srv = ApiServer.start(tmpdir)          # or: srv = ApiServer(); srv.start(tmpdir)
    srv.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    srv.add_fault(method="POST", path_regex="/eviction$", count=2, status=429, retry_after=1)
    ...
    srv.stop()

Everything uses urllib/http.client with the server's CA (or plain HTTP with plain=True).
HTTP errors raise ApiError carrying the Status body. Paths are URL paths such as
"/api/v1/namespaces/default/pods/p1"; path_for() builds them from an object.
"""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import resources  # noqa: E402

SERVER = os.path.join(HERE, "kube_apiserver.py")


class ApiError(Exception):
    """A non-2xx answer. .code is the HTTP status, .status the decoded Status body (or None)."""

    def __init__(self, code, status, headers=None):
        self.code = code
        self.status = status
        self.headers = headers or {}
        msg = status.get("message") if isinstance(status, dict) else status
        super().__init__("HTTP %d: %s" % (code, msg))

    @property
    def reason(self):
        return self.status.get("reason") if isinstance(self.status, dict) else None


class WatchDropped(ConnectionError):
    """The server closed a watch stream abruptly (no final chunk): drop-watches, restart, crash."""


class _hybrid:
    """Lets ApiServer.start(...) work on the class (creating an instance) and on an instance."""

    def __init__(self, f):
        self.f = f

    def __get__(self, obj, cls):
        def bound(*a, **kw):
            return self.f(obj if obj is not None else cls(), *a, **kw)
        bound.__doc__ = self.f.__doc__
        return bound


def path_for(obj=None, kind=None, namespace=None, name=None, api_version=None, subresource=None):
    """URL path of an object (or of a collection when name is None).

    path_for(pod_dict), path_for(kind="Pod", namespace="ns"), path_for(kind="Node", name="n1",
    subresource="status"). api_version defaults to the one the server serves for the kind.
    """
    if obj is not None:
        kind = obj.get("kind", kind)
        api_version = obj.get("apiVersion", api_version)
        md = obj.get("metadata", {})
        namespace = md.get("namespace", namespace)
        name = md.get("name", name)
    res = None
    for r in resources.RESOURCES:
        if r.kind == kind and (api_version is None or r.api_version == api_version):
            res = r
            break
    if res is None:
        raise ValueError("unknown kind %s %s" % (api_version, kind))
    p = "/api/v1" if not res.group else "/apis/%s/%s" % (res.group, res.version)
    if res.namespaced:
        p += "/namespaces/%s" % (namespace or "default")
    p += "/" + res.plural
    if name:
        p += "/" + name
        if subresource:
            p += "/" + subresource
    return p


class ApiServer:
    """A running test API server.

    Attributes after start(): url, dir, port, kubeconfig (service-account token user,
    current context), kubeconfig_admin, kubeconfig_cert (client certificate), admin_token,
    token (the service account's), ca_file (None with plain=True), wrong_ca_file, proc.
    """

    def __init__(self):
        self.proc = None
        self.url = None

    # ------------------------------------------------------------------ lifecycle
    @_hybrid
    def start(self, tmpdir, plain=False, **opts):
        """Spawn the server with its files in tmpdir and wait for READY; returns self.

        opts map to flags: host, port, bookmark_interval_ms, history, pod_termination_ms,
        enforce_rbac (bool), simulate (bool). stdout/stderr go to tmpdir/server.log.
        """
        self.dir = os.path.abspath(tmpdir)
        os.makedirs(self.dir, exist_ok=True)
        cmd = [sys.executable, SERVER, "--dir", self.dir]
        if plain:
            cmd.append("--plain")
        for k, v in opts.items():
            flag = "--" + k.replace("_", "-")
            if isinstance(v, bool):
                if v:
                    cmd.append(flag)
            elif v is not None:
                cmd += [flag, str(v)]
        self.log_path = os.path.join(self.dir, "server.log")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log)
        line = b""
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(b"READY ") or not line:
                break
        if not line.startswith(b"READY "):
            self.stop()
            raise RuntimeError("test API server did not start; see %s" % self.log_path)
        self.url = line.decode().split()[1]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.plain = plain
        def rd(n):
            with open(os.path.join(self.dir, n)) as f:
                return f.read().strip()
        self.admin_token = rd("admin-token")
        self.token = rd("token")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.kubeconfig_admin = os.path.join(self.dir, "kubeconfig-admin")
        self.kubeconfig_cert = os.path.join(self.dir, "kubeconfig-cert")
        self.ca_file = None if plain else os.path.join(self.dir, "ca.crt")
        self.wrong_ca_file = None if plain else os.path.join(self.dir, "wrong-ca.crt")
        self._ctx = None if plain else ssl.create_default_context(cafile=self.ca_file)
        return self

    def stop(self):
        """Terminate the server (SIGTERM, then SIGKILL after 5 s)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ raw HTTP
    def request(self, method, path, body=None, token="admin", content_type="application/json",
                headers=None, timeout=30, raw=False):
        """One request. token: "admin" (default), "sa", None (no Authorization) or a literal token.
        Returns the decoded JSON body (bytes if raw=True); raises ApiError on HTTP >= 400."""
        url = self.url + path
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"Accept": "application/json"}
        if data is not None:
            h["Content-Type"] = content_type
        tok = {"admin": self.admin_token, "sa": self.token}.get(token, token)
        if tok:
            h["Authorization"] = "Bearer " + tok
        h.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._ctx) as r:
                out = r.read()
        except urllib.error.HTTPError as e:
            b = e.read()
            try:
                st = json.loads(b)
            except ValueError:
                st = b.decode(errors="replace")
            raise ApiError(e.code, st, dict(e.headers)) from None
        if raw:
            return out
        return json.loads(out) if out.strip() else None

    def _admin(self, method, op, body=None):
        return self.request(method, "/_test/" + op, body if body is not None else ({} if method == "POST" else None))

    # ------------------------------------------------------------------ CRUD helpers
    def create(self, obj, token="admin"):
        """POST obj to its collection (namespace from metadata, default "default"); returns the stored object."""
        md = obj.get("metadata", {})
        coll = path_for(kind=obj["kind"], api_version=obj.get("apiVersion"), namespace=md.get("namespace"))
        return self.request("POST", coll, obj, token=token)

    def get(self, path, token="admin"):
        """GET a path (object, list or anything else) and return the JSON."""
        return self.request("GET", path, token=token)

    def exists(self, path):
        """True if GET path answers 200, False on 404."""
        try:
            self.get(path)
            return True
        except ApiError as e:
            if e.code == 404:
                return False
            raise

    def list(self, path, token="admin", **query):
        """GET a collection with query parameters (labelSelector=..., limit=..., continue_=... for "continue")."""
        q = {("continue" if k == "continue_" else k): v for k, v in query.items() if v is not None}
        return self.request("GET", path + ("?" + urllib.parse.urlencode(q) if q else ""), token=token)

    def list_all(self, path, limit=100, **query):
        """Follow continue tokens; returns (items, pages)."""
        items, pages, cont = [], 0, None
        while True:
            r = self.list(path, limit=limit, continue_=cont, **query)
            pages += 1
            items += r["items"]
            cont = r["metadata"].get("continue")
            if not cont:
                return items, pages

    def update(self, obj, subresource=None, token="admin"):
        """PUT obj (409 Conflict if its metadata.resourceVersion is stale)."""
        return self.request("PUT", path_for(obj, subresource=subresource), obj, token=token)

    def patch(self, path, patch, type="merge", token="admin"):
        """PATCH with type "merge", "strategic" or "json" (RFC 6902 list)."""
        ct = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json",
              "json": "application/json-patch+json"}[type]
        return self.request("PATCH", path, patch, content_type=ct, token=token)

    def patch_status(self, target, status, type="merge", token="admin"):
        """Merge-patch .status of an object: target is an object dict or its path (without /status)."""
        path = path_for(target) if isinstance(target, dict) else target
        body = status if type == "json" else {"status": status}
        return self.patch(path + "/status", body, type=type, token=token)

    def delete(self, path, grace_period=None, preconditions=None, token="admin"):
        """DELETE with optional gracePeriodSeconds and preconditions {"uid":..., "resourceVersion":...}."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        if preconditions:
            body["preconditions"] = preconditions
        return self.request("DELETE", path, body, token=token)

    def evict(self, namespace, name, grace_period=None, token="admin"):
        """POST a policy/v1 Eviction for a pod; returns the Status (raises ApiError 429 when a PDB blocks)."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        if grace_period is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace_period}
        return self.request("POST", "/api/v1/namespaces/%s/pods/%s/eviction" % (namespace, name), body, token=token)

    def watch(self, path, token="admin", timeout=10, **query):
        """Open a watch (watch=1 is added) and yield events as dicts until the server ends the stream.
        Query parameters as in list(), e.g. resourceVersion="0", allowWatchBookmarks="true".
        Raises ApiError when the server answers with an HTTP error, WatchDropped when the stream
        is cut without the final chunk, TimeoutError when nothing arrives for `timeout` seconds."""
        q = dict(query)
        q["watch"] = "1"
        full = path + "?" + urllib.parse.urlencode(q)
        u = urllib.parse.urlsplit(self.url)
        if self.plain:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        else:
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=self._ctx)
        tok = {"admin": self.admin_token, "sa": self.token}.get(token, token)
        conn.request("GET", full, headers={"Authorization": "Bearer " + tok} if tok else {})
        r = conn.getresponse()
        try:
            if r.status >= 400:
                b = r.read()
                raise ApiError(r.status, json.loads(b) if b else None)
            # Read the chunked framing ourselves to tell a clean end (final chunk) from a drop.
            fp, buf = r.fp, b""
            while True:
                line = fp.readline()
                if not line:
                    raise WatchDropped("watch stream closed without the final chunk")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    fp.readline()
                    return
                data = fp.read(size)
                if len(data) < size:
                    raise WatchDropped("watch stream closed inside a chunk")
                fp.readline()
                buf += data
                while b"\n" in buf:
                    ln, buf = buf.split(b"\n", 1)
                    if ln.strip():
                        yield json.loads(ln)
        finally:
            conn.close()

    # ------------------------------------------------------------------ admin API
    def reset(self):
        """Delete everything except the initial namespaces; clear faults, stall, 410 mode and the request log."""
        return self._admin("POST", "reset")

    def create_objects(self, items):
        """Bulk create-or-replace (fast path): returns {"count","resourceVersion","items":[{kind,namespace,name,uid,resourceVersion}]}.
        Missing namespaces are created."""
        return self._admin("POST", "objects", {"items": items})

    def add_fault(self, path_regex, method="", count=1, status=None, retry_after=None, delay_ms=0,
                  query_regex=None, message=None, reason=None):
        """The next `count` requests matching method (empty = any) and path_regex (re.search on the
        URL path; query_regex on the raw query) get `status` (Status body, Retry-After if given)
        and/or wait delay_ms first."""
        f = {"method": method, "path_regex": path_regex, "count": count, "delay_ms": delay_ms}
        for k, v in (("status", status), ("retry_after", retry_after), ("query_regex", query_regex),
                     ("message", message), ("reason", reason)):
            if v is not None:
                f[k] = v
        return self._admin("POST", "faults", f)

    def clear_faults(self):
        return self._admin("DELETE", "faults")

    def drop_watches(self, path_regex=None):
        """Abruptly close open watch streams (optionally only those whose request path matches)."""
        return self._admin("POST", "drop-watches", {"path_regex": path_regex} if path_regex else {})

    def set_watch_list(self, enabled=True):
        """Serves WatchList (sendInitialEvents=true) when enabled; refuses it with 422 otherwise
        (the default, unless the server was started with watch_list=True)."""
        return self._admin("POST", "watch-list", {"enabled": enabled})

    def stall_watches(self, enabled=True):
        """While enabled, open watches send nothing (no events, no bookmarks) but stay open."""
        return self._admin("POST", "stall-watches", {"enabled": enabled})

    def compact(self, http_410=None, cut_watches=None):
        """Forget history up to the current RV. http_410=True: expired watches then get HTTP 410
        instead of 200 + an ERROR event (False switches back). cut_watches (a path regex, "" for
        all): in the same step, write once (nothing watches it) before compacting and cut the
        open watches that match, so every resourceVersion a client holds is too old and each
        cut watch must relist. (A write, a compaction and drop_watches() as three calls leave
        room for a bookmark carrying the new floor in between: that watch then resumes.)"""
        body = {} if http_410 is None else {"http_410": http_410}
        if cut_watches is not None:
            body["cut_watches"] = cut_watches
        return self._admin("POST", "compact", body)

    def restart(self, down_ms=500, wait=True):
        """Close the listener and every connection; listen again on the same port after down_ms.
        With wait=True, return once /healthz answers again."""
        r = self._admin("POST", "restart", {"down_ms": down_ms})
        if wait:
            time.sleep(down_ms / 1000.0)
            self.wait_ready()
        return r

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while True:
            try:
                self.request("GET", "/healthz", raw=True, timeout=2)
                return
            except (OSError, ApiError, http.client.HTTPException):
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def set_dra(self, version=None, aggregated=None):
        """Serve ResourceClaims and ResourceSlices as resource.k8s.io/VERSION (v1, v1beta2, v1beta1)
        or not at all ("none") from now on; aggregated: whether /apis offers aggregated discovery."""
        body = {}
        if version is not None:
            body["version"] = version
        if aggregated is not None:
            body["aggregated"] = aggregated
        return self._admin("POST", "dra", body)

    def set_tokens(self, tokens):
        """Replace the accepted non-admin tokens: {"TOKEN": "user-name"}."""
        return self._admin("POST", "tokens", {"tokens": tokens})

    def requests(self, **match):
        """The request log (admin /_test/ calls excluded), oldest first; keyword args filter by equality,
        e.g. requests(verb="create", subresource="eviction"). Fields: seq, time, user, verb,
        subresource, method, path, query, status, duration_ms, watch, namespace, resource, name."""
        items = self._admin("GET", "requests")["items"]
        return [e for e in items if all(e.get(k) == v for k, v in match.items())]

    def clear_requests(self):
        return self._admin("DELETE", "requests")

    def state(self):
        """{"resourceVersion", "floor", "history", "watches", "stalled", "http_410"}."""
        return self._admin("GET", "state")

    # ------------------------------------------------------------------ kubectl
    def kubectl(self, *args, kubeconfig=None, binary="kubectl", timeout=60, check=True, input=None):
        """Run kubectl against this server (admin kubeconfig by default, private discovery cache).
        Returns the CompletedProcess (text); raises CalledProcessError if check and it fails."""
        exe = binary if os.path.isabs(binary) else (shutil.which(binary) or binary)
        cmd = [exe, "--kubeconfig", kubeconfig or self.kubeconfig_admin,
               "--cache-dir", os.path.join(self.dir, "kubectl-cache")] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check, input=input)
