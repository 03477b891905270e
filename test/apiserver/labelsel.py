"""Label and field selectors, and the JSON patch flavours, as the real API server reads them.

Parsers raise ValueError with the message the HTTP layer returns in a 400 Status.
"""

import copy
import re

_LABEL_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _split_top(s):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(s):
    """Parse a label selector string into a list of (op, key, values) requirements.

    ops: "=", "!=", "in", "notin", "exists", "!".
    """
    reqs = []
    if not s:
        return reqs
    for part in _split_top(s):
        m = re.match(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", part)
        if m:
            key, op, vals = m.group(1), m.group(2), m.group(3)
            values = [v.strip() for v in vals.split(",")]
            reqs.append((op, _check_key(key), set(values)))
            continue
        if part.startswith("!"):
            reqs.append(("!", _check_key(part[1:].strip()), None))
            continue
        m = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$", part)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append((op, _check_key(m.group(1)), m.group(3)))
            continue
        if re.match(r"^[^=!\s()]+$", part):
            reqs.append(("exists", _check_key(part), None))
            continue
        raise ValueError("unable to parse requirement: found '%s', expected: identifier" % part)
    return reqs


def _check_key(k):
    if not _LABEL_KEY.match(k):
        raise ValueError("unable to parse requirement: invalid label key \"%s\"" % k)
    return k


def label_match(reqs, labels):
    """True if a labels dict satisfies every requirement."""
    labels = labels or {}
    for op, key, val in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=":
            if not has or v != val:
                return False
        elif op == "!=":
            if has and v == val:
                return False
        elif op == "in":
            if not has or v not in val:
                return False
        elif op == "notin":
            if has and v in val:
                return False
        elif op == "exists":
            if not has:
                return False
        elif op == "!":
            if has:
                return False
    return True


def label_selector_from_object(sel):
    """Requirements from a metav1.LabelSelector (matchLabels/matchExpressions), or None for "match nothing".

    A null selector matches nothing; an empty one matches everything (PDB semantics in policy/v1).
    """
    if sel is None:
        return None
    reqs = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append(("=", k, v))
    for e in sel.get("matchExpressions") or []:
        op = e.get("operator")
        vals = set(e.get("values") or [])
        if op == "In":
            reqs.append(("in", e.get("key"), vals))
        elif op == "NotIn":
            reqs.append(("notin", e.get("key"), vals))
        elif op == "Exists":
            reqs.append(("exists", e.get("key"), None))
        elif op == "DoesNotExist":
            reqs.append(("!", e.get("key"), None))
    return reqs


# Field selectors the real server supports, per plural (metadata.name and metadata.namespace always).
FIELD_LABELS = {
    "pods": {"spec.nodeName", "status.phase", "spec.schedulerName", "spec.serviceAccountName",
             "spec.restartPolicy", "status.podIP", "status.nominatedNodeName", "spec.hostNetwork"},
    "nodes": {"spec.unschedulable"},
    "events": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
               "regarding.kind", "regarding.name", "regarding.namespace", "regarding.uid"},
    "namespaces": {"status.phase"},
    "replicasets": {"status.replicas"},
    "resourceslices": {"spec.nodeName", "spec.driver"},
}


def parse_field_selector(s, plural):
    """Parse a field selector into (op, path, value) triples; unknown fields raise ValueError."""
    reqs = []
    if not s:
        return reqs
    allowed = {"metadata.name", "metadata.namespace"} | FIELD_LABELS.get(plural, set())
    for part in _split_top(s):
        m = re.match(r"^([^=!]+)(==|=|!=)(.*)$", part)
        if not m:
            raise ValueError("invalid selector: '%s'; can't understand '%s'" % (s, part))
        field = m.group(1).strip()
        if field not in allowed:
            raise ValueError("field label not supported: %s" % field)
        reqs.append(("!=" if m.group(2) == "!=" else "=", field, m.group(3).strip()))
    return reqs


def field_value(obj, path):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
        if cur is None:
            return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_match(reqs, obj):
    for op, path, val in reqs:
        v = field_value(obj, path)
        if path == "spec.unschedulable" and v == "":
            v = "false"
        if (v == val) != (op == "="):
            return False
    return True


# ---------------------------------------------------------------------------- patches

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# Lists that strategic merge patch merges by a key instead of replacing (the common ones).
SMP_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "conditions": "type", "ownerReferences": "uid", "imagePullSecrets": "name",
    "ports": "containerPort", "addresses": "type", "podIPs": "ip", "hostIPs": "ip",
    "resourceClaims": "name", "resourceClaimStatuses": "name", "tolerations": None,
    "finalizers": "$primitive",
}


def strategic_merge_patch(target, patch, field=None):
    """A reduced strategic merge patch: merge keys for the well-known lists, $patch, $retainKeys,
    $setElementOrder and $deleteFromPrimitiveList directives understood; everything else is a
    JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        p = {k: v for k, v in patch.items() if not k.startswith("$")}
        return copy.deepcopy(p)
    if patch.get("$patch") == "delete":
        return None
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            if isinstance(out.get(name), list):
                out[name] = [x for x in out[name] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and k in SMP_MERGE_KEYS and SMP_MERGE_KEYS[k] and isinstance(out.get(k), list):
            out[k] = _smp_list(out[k], v, SMP_MERGE_KEYS[k], k)
        elif isinstance(v, dict):
            r = strategic_merge_patch(out.get(k), v, k)
            if r is None:
                out.pop(k, None)
            else:
                out[k] = r
        else:
            out[k] = copy.deepcopy(v)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _smp_list(cur, patch, key, name):
    if key == "$primitive":
        out = list(cur)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    out = [copy.deepcopy(x) for x in cur]
    for item in patch:
        if not isinstance(item, dict):
            continue
        kv = item.get(key)
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == kv), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append({k: v for k, v in item.items() if not k.startswith("$")})
        else:
            out[idx] = strategic_merge_patch(out[idx], item, name)
    return out


def _ptr(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError("invalid JSON pointer %r" % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts):
    cur = doc
    for p in parts:
        if isinstance(cur, list):
            cur = cur[int(p)]
        elif isinstance(cur, dict):
            if p not in cur:
                raise KeyError(p)
            cur = cur[p]
        else:
            raise KeyError(p)
    return cur


def json_patch(doc, ops):
    """RFC 6902 JSON patch; raises ValueError on a failed op (the server answers 422/500 then)."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ValueError("json patch must be a list of operations")
    for op in ops:
        kind = op.get("op")
        try:
            parts = _ptr(op.get("path", ""))
            if kind == "test":
                if _walk(doc, parts) != op.get("value"):
                    raise ValueError("testing value %s failed" % op.get("path"))
                continue
            if kind in ("move", "copy"):
                src = _ptr(op.get("from", ""))
                val = copy.deepcopy(_walk(doc, src))
                if kind == "move":
                    doc = _remove(doc, src)
                doc = _add(doc, parts, val)
            elif kind == "add":
                doc = _add(doc, parts, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                doc = _remove(doc, parts)
            elif kind == "replace":
                _walk(doc, parts)
                doc = _remove(doc, parts)
                doc = _add(doc, parts, copy.deepcopy(op.get("value")))
            else:
                raise ValueError("Unexpected kind: %s" % kind)
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError("jsonpatch %s operation does not apply: doc is missing path: %s" % (kind, op.get("path"))) from e
    return doc


def _add(doc, parts, val):
    if not parts:
        return val
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(val)
        else:
            i = int(last)
            if i < 0 or i > len(parent):
                raise IndexError(i)
            parent.insert(i, val)
    elif isinstance(parent, dict):
        parent[last] = val
    else:
        raise KeyError(last)
    return doc


def _remove(doc, parts):
    if not parts:
        return None
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        parent.pop(int(last))
    else:
        del parent[last]
    return doc
