# Gregor: a Kafka-wire-compatible broker.
#
#   make run     start a broker on 127.0.0.1:9092 with data in ./data
#   make test    every test: unit, property, and black-box against the real binary
#   make bench   load test of a release broker with a librdkafka client
#   make deps    install what the black-box tests need (kcat, kafka-python, …)
#   make lint    rustfmt and clippy, warnings as errors
#   make docker  build the gregor:latest image (FROM scratch, static binary)

CARGO ?= cargo
PYTHON ?= python3
export CARGO_TERM_COLOR ?= never

.PHONY: run build release test test-rust test-python bench deps lint fmt clean docker

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
	$(PYTHON) -m pytest -q -rs -p no:warnings tests/python

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

STATIC_TARGET := x86_64-unknown-linux-gnu
DOCKER_CONTEXT := target/docker

docker:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target $(STATIC_TARGET) -p gregor-server --bin gregor
	rm -rf $(DOCKER_CONTEXT) && mkdir -p $(DOCKER_CONTEXT)/data $(DOCKER_CONTEXT)/tmp
	cp docker/Dockerfile $(DOCKER_CONTEXT)/
	strip -o $(DOCKER_CONTEXT)/gregor target/$(STATIC_TARGET)/release/gregor
	printf 'root:x:0:0:root:/root:/sbin/nologin\ngregor:x:10001:10001:gregor:/var/lib/gregor:/sbin/nologin\n' > $(DOCKER_CONTEXT)/passwd
	printf 'root:x:0:\ngregor:x:10001:\n' > $(DOCKER_CONTEXT)/group
	docker build -t gregor:latest $(DOCKER_CONTEXT)
