# Developer entry points. `make test` builds its own virtual environment (.venv) first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test check lint typecheck fmt run emulator bench soak audit clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $(STAMP)

venv: $(STAMP)

## test: the whole test suite (unit, API, emulator, observability, end-to-end with Claude Code)
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## check: lint and type check
check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check app tests bench scripts
	$(BIN)/ruff format --check app

typecheck: $(STAMP)
	$(BIN)/mypy app

fmt: $(STAMP)
	$(BIN)/ruff format app tests bench
	$(BIN)/ruff check --fix app tests bench

## run: the gateway on :8000 with config/gateway.yaml (start `make emulator` for the demo upstream)
run: $(STAMP)
	$(BIN)/python -m app

emulator: $(STAMP)
	$(BIN)/python -m tests.fake_oci --port 9999 --no-verify

## bench: the performance benchmark (prints a table, writes bench/results/latest.json)
## soak: a bounded soak with injected faults (SOAK_ARGS="--duration 120")
soak: $(STAMP)
	$(BIN)/python scripts/soak.py $(SOAK_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

audit: $(STAMP)
	$(BIN)/pip-audit --skip-editable --progress-spinner off

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
