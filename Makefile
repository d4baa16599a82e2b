# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck layers bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/controlplane demo

check: lint typecheck layers

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# the package layers and acyclic modules of docs/architecture.md
layers: $(STAMP)
	$(BIN)/lint-imports

test: $(STAMP) check
	$(BIN)/pytest

# every figure in BENCHMARKS.md; the peers are Debian's prometheus and prometheus-alertmanager
bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/memory.py --prometheus
	$(BIN)/python benchmarks/evaluation.py --prometheus
	$(BIN)/python benchmarks/query.py
	$(BIN)/python benchmarks/dash.py
	$(BIN)/python benchmarks/promqltest_report.py
	$(BIN)/python benchmarks/wallet.py
	$(BIN)/python benchmarks/aggregator.py
	$(BIN)/python benchmarks/alert_latency.py
	$(BIN)/python benchmarks/mttr.py
	$(BIN)/python benchmarks/hostile.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
