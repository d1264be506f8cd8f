# The two commands users need: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test deps lint fmt build release demo bench check-config stack-test schema-test stack compose-test

## Installs what the tests need (Debian packages) when it is missing.
deps:
	@scripts/install-deps.sh

## Everything CI runs: unit, property and integration tests on real servers.
test: deps
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi
	python3 -m pytest -q -p no:cacheprovider tests/config
	@$(MAKE) --no-print-directory stack-test
	scripts/schemathesis.sh

## The deployment configs without Docker (compose and dashboard structure, promtool on the
## Prometheus configs, rules and dashboard PromQL, nginx -t): tests/config, about 1 s.
check-config:
	python3 -m pytest -q -p no:cacheprovider tests/config

## The whole stack on loopback, brought up by drift-stack (redis, 3 APIs behind NGINX,
## workers, exporter, Prometheus; Locust through the gateway): tests/stack/test_stack.py.
stack-test:
	$(CARGO) build -p drift-testkit --bin drift-stack
	DRIFT_BIN_DIR="$${CARGO_TARGET_DIR:-target}/debug" python3 -m pytest -q -p no:cacheprovider tests/stack

## docker-compose.yml for real on the Docker engine (tests/compose): local stand-in images
## when no registry answers (scripts/offline-images.sh), the image build, the stack with
## --scale api=10 --scale worker=4, drift through :8002 seen in Prometheus on :9090, kills,
## scaling, a Redis restart and a network cut under load, `down -v`; prints a timeline.
compose-test:
	python3 -m pytest -q -s -p no:cacheprovider tests/compose

## Schemathesis against a live drift-api and redis-server: every answer to generated
## requests must match api/openapi.json (statuses, content types, bodies), no 5xx.
schema-test: deps
	scripts/schemathesis.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p drift-api -p drift-worker -p drift-sim

## The local stack (Redis, APIs, workers, exporter, NGINX, Prometheus) until Ctrl-C, as
## `make demo` and tests/stack bring it up.
stack:
	$(CARGO) run -q -p drift-testkit --bin drift-stack -- $(ARGS)

## The whole stack on loopback without Docker (see README): drift-sim streams the default
## monitor, then the penguins monitor of data/monitors.toml (categories, missing values),
## each without then with drift (settings: DEMO_* variables, listed in scripts/demo.sh).
demo:
	@scripts/demo.sh

bench:
	$(CARGO) bench -p drift-core --bench ks
