# Two commands do everything: `make run` and `make test` (see README.md).
.PHONY: run test bench deps fmt lint

deps:
	@scripts/deps.sh

test:
	@scripts/test.sh

bench: deps
	cargo bench -p sutra-engine --bench engine

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets --all-features -- -D warnings
