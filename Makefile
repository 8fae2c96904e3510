# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The `cue` for machines without one (CUE v0.4 in WebAssembly, run by node);
# a cue of the caller's own (GITOPS_CUE) wins.
CUE_DIR := tools/cue-wasm
CUE_STAMP := $(CUE_DIR)/node_modules/.installed
export GITOPS_CUE ?= $(CURDIR)/$(CUE_DIR)/cue
# A second DynamoDB implementation for the tests (issue 18): dynalite, pinned by its lock
# file, started by tests/conftest.py on 127.0.0.1 beside moto's server.
DYNALITE_DIR := tools/dynalite
DYNALITE_STAMP := $(DYNALITE_DIR)/node_modules/.installed
# Wheels of every dependency, so the hook tests' `pre-commit try-repo` installs the
# hooks' environment offline (PIP_NO_INDEX): tests never download.
WHEELHOUSE := .wheelhouse
WHEEL_STAMP := $(WHEELHOUSE)/.built

.PHONY: demo test bench lint format golden clean

# (Re)install when the project's dependencies change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CUE_STAMP): $(CUE_DIR)/package.json $(CUE_DIR)/package-lock.json
	npm ci --prefix $(CUE_DIR) --no-audit --no-fund --loglevel=error
	touch $(CUE_STAMP)

$(DYNALITE_STAMP): $(DYNALITE_DIR)/package.json $(DYNALITE_DIR)/package-lock.json
	npm ci --prefix $(DYNALITE_DIR) --no-audit --no-fund --loglevel=error
	touch $(DYNALITE_STAMP)

$(WHEEL_STAMP): pyproject.toml $(STAMP)
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) . 'setuptools>=77' wheel
	rm -rf $(WHEELHOUSE)/gitops_compiler-*.whl build
	touch $(WHEEL_STAMP)

demo: $(STAMP) $(CUE_STAMP)
	$(BIN)/python -m compiler.demo out

# Lint and types first: CI keeps them clean, and a style slip fails in seconds, not minutes.
test: $(STAMP) $(CUE_STAMP) $(WHEEL_STAMP) $(DYNALITE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The benchmark (bench/): seeds the local DynamoDB server with synthetic fleets and
# prints per-stage timings against the YAML floor. BENCH_ARGS="--size 100x10" for one size.
bench: $(STAMP) $(CUE_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

golden: $(STAMP) $(CUE_STAMP)
	$(BIN)/gitops-compiler golden update

clean:
	rm -rf $(VENV) $(CUE_DIR)/node_modules $(DYNALITE_DIR)/node_modules $(WHEELHOUSE) out build *.egg-info .pytest_cache .mypy_cache .ruff_cache
