# The targets people expect. `make test` is the README's test command and what CI runs.
CARGO ?= cargo

.PHONY: run test test-integration bench bench-files bench-webhooks bench-notifications bench-gateway coverage check deploy-check fmt schema

## Run the whole supergraph in one process (zero configuration).
run:
	$(CARGO) run --release -- serve

## Every test: unit, subgraph services, end to end (one process and separate processes).
test:
	$(CARGO) test --workspace --locked

## Only the end-to-end tests under tests/.
test-integration:
	$(CARGO) test --locked -p pyairtable --test '*'

## Router benchmark (release build); prints figures to paste into the README.
bench:
	$(CARGO) bench --locked --bench router

## Files benchmark (release build): upload/download throughput through the files service vs a
## plain copy to the same store, and peak memory.
bench-files:
	$(CARGO) bench --locked --bench files

## Webhooks benchmark (release build): sustained deliveries per second to a local receiver with
## 1, 4 and 16 endpoints, and event commit to first attempt (p50, p99).
bench-webhooks:
	$(CARGO) bench --locked --bench webhooks

## Notifications benchmark (release build): 10,000 WebSocket subscribers on one router, fan-out
## latency p50/p99 from the event's commit to each socket's receipt, memory per connection.
bench-notifications:
	$(CARGO) bench --locked --bench notifications

## Gateway benchmark: The Guild's federation benchmark shape (4 subgraphs, nested query) through
## our router, Hive Router, Apollo Gateway and Hive Gateway side by side (DURATION=30 s each).
bench-gateway:
	bash benches/gateway/run.sh

## Line coverage with cargo-llvm-cov (installed from crates.io when missing).
coverage:
	@command -v cargo-llvm-cov >/dev/null || $(CARGO) install cargo-llvm-cov --locked
	$(CARGO) llvm-cov --workspace --locked --html
	@echo "report: target/llvm-cov/html/index.html"

## Formatting, lints and the schema check, as CI runs them.
check:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) run --locked -- schema check

## The deployment files (Dockerfile, compose, k8s, Helm, dashboard), with pinned tools fetched once.
deploy-check:
	bash .ci/check-deploy

fmt:
	$(CARGO) fmt --all

## Regenerate schema/ after changing a subgraph's GraphQL types.
schema:
	$(CARGO) run --locked -- schema print
