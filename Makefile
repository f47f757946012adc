# The two commands of the README: `make test` and `make demo`.
# Both install what they need: Debian packages (as root) and a local virtualenv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MODE   ?= auth_request
STAMP  := $(VENV)/.installed

.PHONY: test demo bench lint typecheck system-deps venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Python packages into $(VENV)"
	@$(BIN)/python -m pip install --quiet --upgrade pip 2> $(VENV)/pip.log || { cat $(VENV)/pip.log; exit 1; }
	@$(BIN)/python -m pip install --quiet -e '.[test]' 2>> $(VENV)/pip.log || { cat $(VENV)/pip.log; exit 1; }
	@touch $(STAMP)

system-deps:
	@scripts/install-system-deps nginx chromium wrk openssl

lint: venv
	@echo "==> ruff"
	@$(BIN)/ruff check gateway backend_app devtools tests bench
	@echo "==> mypy --strict"
	@$(BIN)/mypy

test: system-deps venv lint
	@echo "==> pytest (includes a smoke run of the benchmark: tests/test_bench_smoke.py)"
	@$(BIN)/python -m pytest

demo: venv
	@scripts/install-system-deps nginx
	@$(BIN)/python -m devtools.demo --mode $(MODE)

bench: system-deps venv
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) state test-output .pytest_cache .mypy_cache .ruff_cache
