# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make demo   the exporter against the built-in simulator, http://localhost:9877/metrics
#   make test   lint, type checks and the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint typecheck unit audit bench clean

$(VENV)/.runtime: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime
	$(PY) exporter.py --demo

lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.dev
	$(PY) -m mypy

unit: $(VENV)/.dev
	$(PY) -m pytest

test: lint typecheck unit

# The performance benchmark (minutes, not part of `make test`); ARGS=--write updates
# bench/RESULTS.md.
bench: $(VENV)/.dev
	$(PY) bench/run.py $(ARGS)

# Known vulnerabilities in the pinned runtime dependencies. Needs PyPI's JSON API or OSV, which
# the project's own CI machines cannot reach; run it where they can.
audit: $(VENV)/.dev
	$(PY) -m pip install --quiet --disable-pip-version-check pip-audit
	$(PY) -m pip_audit --requirement requirements.txt --strict --progress-spinner off

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
