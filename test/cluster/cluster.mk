# The real control plane (issue 11). test/cluster/ is a Go module that builds etcd,
# kube-apiserver, kube-scheduler and kube-controller-manager from the upstream modules
# into one launcher, cached under ~/.cache/device-descheduler (build.sh); test/realcluster/
# runs the controller against it. Included by the Makefile.

CLUSTER_STATE ?= $(BUILD)/cluster

.PHONY: cluster-build cluster-up cluster-down realtest pb-fixtures pb-fixtures-check

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

# The protobuf Pod fixtures of test/fixtures/pb/ (see its README): regenerated with the
# Kubernetes Go libraries of this module, then checked (each .pb decodes like its JSON
# twin; the real-*.pb captures re-encode byte for byte). Committed: the C tests read them
# and need no Go. pb-fixtures-check only checks.
PBFIX_GO = cd test/cluster && GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
	$$(command -v go || echo /usr/local/go/bin/go) run ./pbfixtures -in ../fixtures -out ../fixtures/pb
pb-fixtures:
	@$(PBFIX_GO)
	@$(PBFIX_GO) -verify

pb-fixtures-check:
	@$(PBFIX_GO) -verify
