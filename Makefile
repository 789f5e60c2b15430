# Gregor: a Kafka-wire-compatible broker.
#
#   make run     start a broker on 127.0.0.1:9092 with data in ./data
#   make test    every test: unit, property, and black-box against the real binary
#   make bench   load test of a release broker with a librdkafka client
#   make deps    install what the black-box tests need (kcat, kafka-python, …)
#   make lint    rustfmt and clippy, warnings as errors

CARGO ?= cargo
PYTHON ?= python3
export CARGO_TERM_COLOR ?= never

.PHONY: run build release test test-rust test-python bench deps lint fmt clean

run:
	$(CARGO) run --release -p gregor-server --bin gregor -- --config config/gregor.toml

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p gregor-server --bin gregor -p gregor-blackbox --bin gregor-loadgen

test: build
	@command -v kcat >/dev/null || { echo "kcat not found: run 'make deps'"; exit 1; }
	@$(PYTHON) -c "import kafka, pytest" 2>/dev/null || { echo "kafka-python/pytest not found: run 'make deps'"; exit 1; }
	$(CARGO) test --workspace
	$(PYTHON) -m pytest -q -p no:warnings tests/python

bench: release
	$(PYTHON) tests/bench/run.py

deps:
	@if ! command -v kcat >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; \
	fi
	$(PYTHON) -m pip install -q -r tests/python/requirements.txt

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
