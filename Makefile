# The two commands that matter: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo lint test ui dagster mlflow-ui benchmark clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/llm-platform demo

# Layout (ruff format, 120 columns), style and likely bugs (ruff), then types (mypy); settings in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff format --check llm_platform llm_platform_tests benchmarks
	$(VENV)/bin/ruff check llm_platform llm_platform_tests benchmarks
	$(VENV)/bin/mypy llm_platform

test: lint
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

# The UI on the local instance (DAGSTER_HOME, default .llm_platform/dagster, holding llm_platform/dagster.yaml),
# with the config in $$LLM_PLATFORM_CONFIG (default: the demo's). Another port: make ui ARGS="-p 3001"
ui: $(STAMP)
	$(VENV)/bin/llm-platform dagster dev $(ARGS)

# Any dagster CLI command on that same instance: make dagster ARGS="asset list -m llm_platform.definitions"
dagster: $(STAMP)
	$(VENV)/bin/llm-platform dagster $(ARGS)

# The MLflow UI on the local store (runs, metrics, the registered model): http://127.0.0.1:5000
mlflow-ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$${LLM_PLATFORM_HOME:-$$PWD/.llm_platform}/mlflow/mlflow.db --host 127.0.0.1 --port 5000

benchmark: $(STAMP)
	$(VENV)/bin/python benchmarks/index_pipeline.py

clean:
	rm -rf .llm_platform

.PHONY: serve
serve: $(STAMP)
	$(VENV)/bin/llm-platform serve
