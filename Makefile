# The two commands of the README. Both create .venv on first use and install the project into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test check bench

$(BIN)/testmode-proxy: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# Serve on $(HOST):$(PORT) with every policy in policies/. On first run, issue a Sent test key
# (printed, and kept in .demo-key) so the README's curl example works at once.
run: $(BIN)/testmode-proxy
	@test -s .demo-key || $(BIN)/testmode-proxy keys --file keys.json create --policy sent --mode test --label demo > .demo-key
	@echo "demo test key: $$(cat .demo-key)"
	$(BIN)/testmode-proxy serve --host $(HOST) --port $(PORT) --policies policies --keys keys.json

# Everything CI checks: policies, lint, types, the whole test suite.
test: $(BIN)/testmode-proxy
	$(BIN)/testmode-proxy check policies/
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(BIN)/testmode-proxy
	$(BIN)/python -m bench
