# Embedding Workbench: the README's commands.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lab bench lint clean

setup: $(STAMP)

# Re-run only when the dependency list changes; fast when already done.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: setup
	WORKBENCH_CACHE_DIR=$${WORKBENCH_CACHE_DIR:-data/cache} $(PY) -m workbench.cli demo

PYTEST_ARGS ?= -q
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

lint: setup
	$(VENV)/bin/ruff check workbench tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache data/stores reports
