# The real control plane (issue 11). test/cluster/ is a Go module that builds etcd,
# kube-apiserver, kube-scheduler and kube-controller-manager from the upstream modules
# into one launcher, cached under ~/.cache/device-descheduler (build.sh); test/realcluster/
# runs the controller against it. Included by the Makefile.

CLUSTER_STATE ?= $(BUILD)/cluster

.PHONY: cluster-build cluster-up cluster-down realtest

# Builds the launcher (cold: compiles Kubernetes; warm: returns at once) and prints its path.
cluster-build:
	@test/cluster/build.sh

# Starts a control plane in the background; prints `export KUBECONFIG=...` (admin token).
cluster-up:
	@test/cluster/cluster-up.sh $(CLUSTER_STATE)

cluster-down:
	@test/cluster/cluster-down.sh $(CLUSTER_STATE)

# The scenarios against the real control plane (each run starts its own cluster).
realtest: $(BIN)
	@bin=$$(test/cluster/build.sh) && DD_KUBE_CLUSTER=$$bin DD_BIN=$(CURDIR)/$(BIN) \
		$(PYTHON) -m unittest discover -s test/realcluster -p 'real_*.py' -t . -v
