# opgraph: every target does its own set-up on a fresh machine and is safe to run again.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-stamp
OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: demo test lint venv sysdeps bench clean

# Debian packages the tests need: chromium for the browser test of the report page.
sysdeps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium missing and not root: the browser test will be skipped"; \
	  fi; \
	fi

$(PY):
	python3 -m venv $(VENV)

# torch goes in first, pinned, so that pip never resolves an unpinned torch (a multi-GB CUDA build).
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "torch==2.13.*"
	$(PIP) install -q -e ".[all,dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	MPLBACKEND=Agg $(VENV)/bin/opgraph demo --out $(OUT)
	@echo "report: $(OUT)/index.html"

# pytest exits 5 when a marker selects no test: that is not a failure of the code.
test: venv sysdeps
	@MPLBACKEND=Agg $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no test selected (pytest exit 5): not a failure"; exit 0; fi; exit $$rc

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src/opgraph/graph

bench: venv
	@echo "benchmarks are scripts: see README (benchmarks/<system>/run.py)"

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
