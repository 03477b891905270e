"""The resource table of the test API server and the discovery documents built from it.

Every kind the server stores is described once here (group, version, plural, kind,
scope, short names, subresources); the HTTP layer, the RBAC check and discovery all read
this table, so adding a resource is one line.
"""

ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]


class Resource:
    """One served resource, e.g. core/v1 pods."""

    def __init__(self, group, version, plural, kind, namespaced, short=(), subresources=(),
                 singular=None, categories=(), verbs=None):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.short = list(short)
        self.subresources = list(subresources)
        self.singular = singular or kind.lower()
        self.categories = list(categories)
        self.verbs = verbs or ALL_VERBS + ["deletecollection"]
        self.virtual = verbs == ["create"]  # reviews: answered, never stored

    @property
    def api_version(self):
        return self.version if not self.group else "%s/%s" % (self.group, self.version)

    @property
    def key(self):
        """Storage key: the same plural in two groups (events) is stored apart."""
        return "%s/%s/%s" % (self.group, self.version, self.plural)

    @property
    def qualified(self):
        """The group-qualified resource name used in error messages ("pods", "leases.coordination.k8s.io")."""
        return self.plural if not self.group else "%s.%s" % (self.plural, self.group)

    def __repr__(self):
        return "Resource(%s)" % self.key


RESOURCES = [
    Resource("", "v1", "pods", "Pod", True, ["po"], ["status", "eviction"], categories=["all"]),
    Resource("", "v1", "nodes", "Node", False, ["no"], ["status"]),
    Resource("", "v1", "namespaces", "Namespace", False, ["ns"], ["status"]),
    Resource("", "v1", "events", "Event", True, ["ev"]),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    Resource("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    Resource("", "v1", "services", "Service", True, ["svc"], ["status"], categories=["all"]),
    Resource("events.k8s.io", "v1", "events", "Event", True, ["ev"]),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"], ["status"]),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
    Resource("resource.k8s.io", "v1", "resourceclaims", "ResourceClaim", True, [], ["status"]),
    Resource("resource.k8s.io", "v1", "resourceslices", "ResourceSlice", False),
    # KEP-5055 device taints (GA in 1.37; v1beta2 in 1.36, v1alpha3 before): see
    # serve_device_taint_rules() for serving an older version, or none.
    Resource("resource.k8s.io", "v1", "devicetaintrules", "DeviceTaintRule", False),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], ["status"], categories=["all"]),
    Resource("apps", "v1", "deployments", "Deployment", True, ["deploy"], ["status"], categories=["all"]),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], ["status"], categories=["all"]),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False, verbs=["create"]),
    Resource("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, verbs=["create"]),
]

# Lookups used on every request.
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_GVK = {(r.api_version, r.kind): r for r in RESOURCES}
# Eviction bodies may come as policy/v1 or policy/v1beta1.
EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")

GROUP_ORDER = []


def _rebuild():
    BY_PATH.clear()
    BY_PATH.update({(r.group, r.version, r.plural): r for r in RESOURCES})
    BY_GVK.clear()
    BY_GVK.update({(r.api_version, r.kind): r for r in RESOURCES})
    del GROUP_ORDER[:]
    for r in RESOURCES:
        if (r.group, r.version) not in GROUP_ORDER:
            GROUP_ORDER.append((r.group, r.version))


_rebuild()

DRA_VERSIONS = ("v1", "v1beta2", "v1beta1")


def serve_dra(version):
    """Serves ResourceClaims and ResourceSlices as resource.k8s.io/VERSION only (v1, v1beta2 or
    v1beta1), or not at all ("none"), like a server of an older Kubernetes release or one with DRA
    turned off. May be called while serving: discovery and routing follow at once; objects stored
    under another version stay stored but are not served."""
    if version != "none" and version not in DRA_VERSIONS:
        raise ValueError("unknown DRA version %r" % version)
    new = [r for r in RESOURCES if r.plural not in ("resourceclaims", "resourceslices")]
    if version != "none":
        at = next((i for i, r in enumerate(new) if r.group == "coordination.k8s.io"), len(new)) + 1
        new[at:at] = [Resource("resource.k8s.io", version, "resourceclaims", "ResourceClaim", True, [], ["status"]),
                      Resource("resource.k8s.io", version, "resourceslices", "ResourceSlice", False)]
    RESOURCES[:] = new
    _rebuild()


def served_dra_version():
    """The version ResourceClaims are served in, or "none"."""
    return next((r.version for r in RESOURCES if r.plural == "resourceclaims"), "none")


DEVICE_TAINT_RULE_VERSIONS = ("v1", "v1beta2", "v1alpha3")


def serve_device_taint_rules(version):
    """Serves DeviceTaintRules as resource.k8s.io/VERSION only (v1, v1beta2 or v1alpha3), or not
    at all ("none"), like a server of an older Kubernetes release. Call before serving."""
    if version != "none" and version not in DEVICE_TAINT_RULE_VERSIONS:
        raise ValueError("unknown DeviceTaintRule version %r" % version)
    RESOURCES[:] = [r for r in RESOURCES if r.plural != "devicetaintrules"]
    if version != "none":
        RESOURCES.append(Resource("resource.k8s.io", version, "devicetaintrules", "DeviceTaintRule", False))
    _rebuild()


def resource_for_object(obj):
    """The Resource for a JSON object, by apiVersion and kind, or None."""
    return BY_GVK.get((obj.get("apiVersion", ""), obj.get("kind", "")))


def api_versions():
    """/api: the legacy group's APIVersions document."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}


def _group_entry(group):
    versions = [v for g, v in GROUP_ORDER if g == group]
    gvs = [{"groupVersion": "%s/%s" % (group, v), "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list():
    """/apis: every named group (the legacy core group is served under /api)."""
    groups = []
    for g, _v in GROUP_ORDER:
        if g and g not in [x["name"] for x in groups]:
            groups.append(_group_entry(g))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group):
    """/apis/GROUP, or None for an unknown group."""
    if not any(g == group for g, _ in GROUP_ORDER) or not group:
        return None
    d = _group_entry(group)
    d.update({"kind": "APIGroup", "apiVersion": "v1"})
    return d


def api_group_discovery_list(legacy=False):
    """/apis (legacy: /api) as aggregated discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList):
    every named group (legacy: the core group, named "") with its versions and their resources, in
    one document. client-go uses it only when /api and /apis both answer this way."""
    items = []
    for g, _v in GROUP_ORDER:
        if bool(g) == legacy or any(i["metadata"]["name"] == g for i in items):
            continue
        versions = []
        for gg, v in GROUP_ORDER:
            if gg != g:
                continue
            res = []
            for r in RESOURCES:
                if r.group != g or r.version != v:
                    continue
                e = {"resource": r.plural, "responseKind": {"group": g, "version": v, "kind": r.kind},
                     "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
                     "verbs": r.verbs}
                if r.short:
                    e["shortNames"] = r.short
                if r.categories:
                    e["categories"] = r.categories
                subs = [{"subresource": s, "responseKind": {"group": g, "version": v, "kind": r.kind},
                         "verbs": ["create"] if s == "eviction" else STATUS_VERBS} for s in r.subresources]
                if subs:
                    e["subresources"] = subs
                res.append(e)
            versions.append({"version": v, "resources": res, "freshness": "Current"})
        items.append({"metadata": {"name": g, "creationTimestamp": None}, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def api_resource_list(group, version):
    """/api/v1 or /apis/GROUP/VERSION: the APIResourceList, or None if not served."""
    rs = [r for r in RESOURCES if r.group == group and r.version == version]
    if not rs:
        return None
    out = []
    for r in rs:
        e = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
             "kind": r.kind, "verbs": r.verbs}
        if r.short:
            e["shortNames"] = r.short
        if r.categories:
            e["categories"] = r.categories
        e["storageVersionHash"] = ("%s%s" % (r.kind, r.plural))[:11]
        out.append(e)
        for sub in r.subresources:
            if sub == "eviction":
                out.append({"name": "pods/eviction", "singularName": "", "namespaced": True,
                            "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]})
            else:
                out.append({"name": "%s/%s" % (r.plural, sub), "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": STATUS_VERBS})
    gv = version if not group else "%s/%s" % (group, version)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}
