# The two commands a newcomer needs: `make demo` (render the dev stack offline) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime ## set up, then render the dev stack to out/dev (no cloud, no Pulumi CLI)
	$(PY) -m plexictl render --stack dev --out out/dev

test: $(VENV)/.dev ## set up, then run the whole test suite
	$(PY) -m pytest

bench: $(VENV)/.dev ## render timings against the engine floor (not a test)
	$(PY) bench/render_bench.py

clean:
	rm -rf $(VENV) out
