# abs-pipeline — every target sets up .venv itself (created or refreshed only when
# pyproject.toml or constraints.txt changed), installing the pinned set in constraints.txt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data

# The demo book: about 50,000 loans originated over 18 months from January 2024.
DEMO_LOANS  ?= 50000
DEMO_START  ?= 2024-01
DEMO_MONTHS ?= 18
DEMO_SEED   ?= 20240101
DEMO_END    ?= 2025-06-30

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false

.PHONY: demo test test-slow lint format golden clean-data help

help:
	@echo "make demo       generate the demo tape (if none) and run the pipeline end to end"
	@echo "make test       run the test suite (fast tests; slow scale tests: make test-slow)"
	@echo "make lint       ruff and mypy"
	@echo "make golden     refresh golden files after an intended change"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/abs-pipeline generate --out $(DATA)/landing --loans $(DEMO_LOANS) \
		--start $(DEMO_START) --months $(DEMO_MONTHS) --seed $(DEMO_SEED) --if-empty
	$(BIN)/abs-pipeline backfill --start $(DEMO_START)-01 --end $(DEMO_END) --data-root $(DATA)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

golden: $(STAMP)
	$(BIN)/python -m data_contracts.compile --write-golden tests/data_contracts/golden

clean-data:
	rm -rf $(DATA)
