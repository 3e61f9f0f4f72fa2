# Two commands do everything: `make run` and `make test` (see README.md).
.PHONY: run test bench bench-cluster bench-failover deps fmt lint docker

# A local three-node TLS cluster on loopback (data, ports and certificates kept in
# .sutra/local between runs); Ctrl-C stops it.
run: deps
	cargo build --release -p sutra-node -p sutra-cli
	$${CARGO_TARGET_DIR:-target}/release/sutra local run

deps:
	@scripts/deps.sh

# The sutra-node image (with the sutra CLI), built without any container registry:
# a debootstrap base imported once as sutra-base:<release>, then the release binaries
# (docs/deploy.md); then sutra-prometheus:dev, Debian's prometheus on the same base, for
# the compose file's monitoring profile. `BASE=debian:bookworm-slim make docker` builds
# on a pulled base.
docker: deps
	@deploy/docker/build.sh

test:
	@scripts/test.sh

# Benchmarks print throughput and latency percentiles (docs/benchmarks.md).
bench: deps
	cargo bench -p sutra-engine --bench engine
	cargo bench -p sutra-raft --bench log_store
	cargo bench -p sutra-node --bench replicated_writes

# `sutra bench` against fresh local three-node TLS clusters, in both shapes (pinned
# connections and the SDK's), with the nodes' CPU per operation.
bench-cluster:
	@scripts/bench-cluster.sh

# Timer stability (10 minutes of full load: no election) and failover (20 kill -9s of
# the leader under load: RTO) on fresh local three-node TLS clusters.
bench-failover:
	@scripts/bench-failover.sh

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets --all-features -- -D warnings
