# Embedding Workbench: the README's commands.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup browser demo test lab bench lint clean screenshots

setup: $(STAMP)

# Re-run only when the dependency list changes; fast when already done.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: setup
	WORKBENCH_CACHE_DIR=$${WORKBENCH_CACHE_DIR:-$(CURDIR)/data/cache} $(PY) -m workbench.cli demo

# The real-browser widget tests need Debian's Chromium; install it when we can (root).
browser:
	@if [ ! -x "$${WORKBENCH_CHROMIUM:-/usr/bin/chromium}" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and not root: the browser tests will be skipped"; fi; \
	fi

PYTEST_ARGS ?= -q
test: setup browser
	$(PY) -m pytest $(PYTEST_ARGS)

# The README's widget screenshots: tests/browser/test_screenshots.py drives each widget on the
# demo corpus (the escaping tests' hostile fixtures never reach the README) and writes
# reports/screenshots/; the README shows the copies in data/screenshots/.
screenshots: setup browser
	@for f in data/screenshots/*.png; do rm -f "reports/screenshots/$$(basename $$f)"; done
	WORKBENCH_SCREENSHOTS=1 WORKBENCH_CACHE_DIR=$${WORKBENCH_CACHE_DIR:-$(CURDIR)/data/cache} $(PY) -m pytest -q tests/browser/test_screenshots.py
	@for f in data/screenshots/*.png; do cp "reports/screenshots/$$(basename $$f)" "$$f"; done
	@echo "data/screenshots/ updated"

lab: setup
	WORKBENCH_CACHE_DIR=$${WORKBENCH_CACHE_DIR:-$(CURDIR)/data/cache} $(VENV)/bin/jupyter lab notebooks/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

bench: setup
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

lint: setup
	$(VENV)/bin/ruff check workbench tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache data/stores reports
