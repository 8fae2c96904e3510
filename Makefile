# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The `cue` the policies run on: the real current CLI, built with Go into the project
# where Go is present (issue 18); else CUE v0.4 in WebAssembly, run by node. A cue of
# the caller's own (GITOPS_CUE) wins. v0.17.1: the newest release the Go module proxy
# offers that builds with the Go here (1.26), with the new evaluator users run.
CUE_DIR := tools/cue-wasm
CUE_STAMP := $(CUE_DIR)/node_modules/.installed
GO ?= go
CUE_VERSION := v0.17.1
NATIVE_CUE := tools/cue-native/bin/cue
HAVE_GO := $(shell command -v $(GO) 2>/dev/null)
ifneq ($(HAVE_GO),)
export GITOPS_CUE ?= $(CURDIR)/$(NATIVE_CUE)
else
export GITOPS_CUE ?= $(CURDIR)/$(CUE_DIR)/cue
endif
# A second DynamoDB implementation for the tests (issue 18): dynalite, pinned by its lock
# file, started by tests/conftest.py on 127.0.0.1 beside moto's server.
DYNALITE_DIR := tools/dynalite
DYNALITE_STAMP := $(DYNALITE_DIR)/node_modules/.installed
# Wheels of every dependency, so the hook tests' `pre-commit try-repo` installs the
# hooks' environment offline (PIP_NO_INDEX): tests never download.
WHEELHOUSE := .wheelhouse
WHEEL_STAMP := $(WHEELHOUSE)/.built

.PHONY: demo test bench lint format golden clean native-cue

# (Re)install when the project's dependencies change. Then bytecode, as pip writes it
# for an installed wheel: an editable checkout under PYTHONDONTWRITEBYTECODE (as on this
# project's machines) would compile every module again in every process, hooks included.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q compiler >/dev/null
	touch $(STAMP)

$(CUE_STAMP): $(CUE_DIR)/package.json $(CUE_DIR)/package-lock.json
	npm ci --prefix $(CUE_DIR) --no-audit --no-fund --loglevel=error
	touch $(CUE_STAMP)

# Builds only when Go is present and the binary is missing or says another version.
# GOTOOLCHAIN=local: the Go here builds it, none is downloaded.
native-cue:
ifneq ($(HAVE_GO),)
	@$(NATIVE_CUE) version 2>/dev/null | head -n 1 | grep -qx 'cue version $(CUE_VERSION)' || { \
	  echo "building cue $(CUE_VERSION) into $(NATIVE_CUE) (go install, ~2 min)"; \
	  rm -f $(NATIVE_CUE); \
	  GOBIN=$(CURDIR)/$(dir $(NATIVE_CUE)) GOTOOLCHAIN=local GOFLAGS=-mod=mod \
	    $(GO) install cuelang.org/go/cmd/cue@$(CUE_VERSION); }
endif
$(DYNALITE_STAMP): $(DYNALITE_DIR)/package.json $(DYNALITE_DIR)/package-lock.json
	npm ci --prefix $(DYNALITE_DIR) --no-audit --no-fund --loglevel=error
	touch $(DYNALITE_STAMP)

$(WHEEL_STAMP): pyproject.toml $(STAMP)
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) . 'setuptools>=77' wheel
	rm -rf $(WHEELHOUSE)/gitops_compiler-*.whl build
	touch $(WHEEL_STAMP)

demo: $(STAMP) $(CUE_STAMP) native-cue
	$(BIN)/python -m compiler.demo out

# Lint and types first: CI keeps them clean, and a style slip fails in seconds, not minutes.
test: $(STAMP) $(CUE_STAMP) $(WHEEL_STAMP) $(DYNALITE_STAMP) native-cue
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The benchmark (bench/): seeds the local DynamoDB server with synthetic fleets and
# prints per-stage timings against the YAML floor. BENCH_ARGS="--size 100x10" for one size.
bench: $(STAMP) $(CUE_STAMP) native-cue
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

golden: $(STAMP) $(CUE_STAMP) native-cue
	$(BIN)/gitops-compiler golden update

clean:
	rm -rf $(VENV) $(CUE_DIR)/node_modules $(DYNALITE_DIR)/node_modules tools/cue-native $(WHEELHOUSE) out build *.egg-info .pytest_cache .mypy_cache .ruff_cache