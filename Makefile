# The two commands that matter: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test ui benchmark clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/llm-platform demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

ui: $(STAMP)
	DAGSTER_HOME=$${DAGSTER_HOME:-$$PWD/.llm_platform/dagster} $(VENV)/bin/dagster dev

benchmark: $(STAMP)
	$(VENV)/bin/python benchmarks/index_pipeline.py

clean:
	rm -rf .llm_platform

.PHONY: serve
serve: $(STAMP)
	$(VENV)/bin/llm-platform serve
