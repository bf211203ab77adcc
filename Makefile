# Sluice: the two commands.
#   make run   installs what is missing, builds in release and runs the server on ./data, 127.0.0.1:8080
#   make test  installs what is missing, then fmt, clippy and every test
# The build cache lives outside the clone so fresh clones (and CI) do not rebuild the world.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/sluice-target
export CARGO_TERM_COLOR ?= never

.PHONY: run test setup-run setup-test setup-bench check fmt bench

run: setup-run
	cargo build --release --locked --quiet
	$(CARGO_TARGET_DIR)/release/sluice serve

test: setup-test
	cargo fmt --check
	cargo clippy --locked --all-targets --quiet -- -D warnings
	cargo test --locked --doc --quiet
	cargo nextest run --locked --no-fail-fast

setup-run:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

check:
	cargo check --all-targets

fmt:
	cargo fmt

setup-bench:
	@scripts/setup.sh bench

# Benchmarks (not part of `make test`): figures are quoted in docs/benchmarks.md.
bench: setup-bench
	cargo bench --bench log
	cargo bench --bench rollover
	scripts/bench-ingest.sh
	scripts/bench-segments.sh
	scripts/bench-llhls.sh
	scripts/bench-kinesis.sh
	scripts/bench-frames.sh
	scripts/bench-rtsp.sh
	scripts/bench-latency.sh
	scripts/bench-kvs-media.sh
	scripts/bench-firehose.sh
	scripts/bench-tier.sh
