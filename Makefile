# Developer entry points. `make test` builds its own virtual environment (.venv) first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test check lint typecheck fmt run emulator bench soak audit pins clean

PINS := -c constraints.txt -c constraints-test.txt

# Installs only pinned versions: a new release upstream changes nothing until `make pins`.
$(STAMP): pyproject.toml constraints.txt constraints-test.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(PINS) --upgrade pip
	$(BIN)/pip install -q $(PINS) -e '.[test,dev]'
	touch $(STAMP)

venv: $(STAMP)

## test: the whole test suite (unit, API, emulator, observability, end-to-end with Claude Code)
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## check: lint and type check
check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check app emulator devtools tests bench scripts
	$(BIN)/ruff format --check app

typecheck: $(STAMP)
	$(BIN)/mypy app

fmt: $(STAMP)
	$(BIN)/ruff format app emulator devtools tests bench
	$(BIN)/ruff check --fix app emulator devtools tests bench

## run: the gateway on :8000 with config/gateway.yaml (start `make emulator` for the demo upstream)
run: $(STAMP)
	$(BIN)/python -m app

## emulator: the OCI emulator on :9999, no signature check (the demo upstream; emulator/README.md)
emulator: $(STAMP)
	$(BIN)/oci-emulator --port 9999 --no-verify

## bench: the performance benchmark (prints a table, writes bench/results/latest.json);
##   PEERS=litellm also measures LiteLLM's proxy side by side (installed once in .bench-peers/)
## soak: a bounded soak with injected faults (SOAK_ARGS="--duration 120")
soak: $(STAMP)
	$(BIN)/python scripts/soak.py $(SOAK_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(PEERS),--peers $(PEERS)) $(BENCH_ARGS)

audit: $(STAMP)
	$(BIN)/pip-audit --skip-editable --progress-spinner off

## pins: re-resolve pyproject.toml from PyPI into constraints.txt + constraints-test.txt
pins:
	bash scripts/refresh-pins.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
