# opgraph: every target does its own set-up on a fresh machine and is safe to run again.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-stamp
OUT ?= demo-out
# The suite runs on every core, whole files per worker (pytest-xdist): about half the wall time on 2 cores. The 25
# slowest tests are listed at the end (CI's limit is 30 minutes: the list says where the time goes).
PYTEST_ARGS ?= -n auto --dist loadfile --durations=25

.PHONY: demo test lint venv sysdeps bench clean

# Debian packages the tests need: chromium (browser test of the report page) and dataset-fashion-mnist (the real
# Fashion-MNIST idx files that opgraph.ffa reads by default).
DEBS := chromium dataset-fashion-mnist
sysdeps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing (not root): the tests that need them will be skipped"; \
	  fi; \
	fi

$(PY):
	python3 -m venv $(VENV)

# torch goes in first, pinned, so that pip never resolves an unpinned torch (a multi-GB CUDA build).
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "torch==2.13.*"
	$(PIP) install -q -e ".[all,dev]"
	# data only: 20 real CIFAR-10 images for the ffa smoke test (foolbox's code and its deps are not needed)
	$(PIP) install -q --no-deps "foolbox==3.3.4"
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
