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
# A second pool, delivered by another servicer as a month-end loan tape (GBK, own mapping).
DEMO_SECOND_SERVICER_LOANS ?= 5000
# A revolving pool of Huabei-style card accounts (no schedule), a month-end statement tape.
DEMO_REVOLVING_ACCOUNTS ?= 3000
DEMO_END    ?= 2025-06-30

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false

.PHONY: pdf-deps demo test test-slow test-browser lint format golden clean-data help prefect-server serve bench-orchestration
.PHONY: bench-engine bench-engine-10m bench-contracts scaling-plot

help:
	@echo "make demo       generate the demo tape (if none) and run the pipeline end to end"
	@echo "make test       run the test suite (fast tests; slow scale tests: make test-slow)"
	@echo "make lint       ruff, mypy and vulture (dead code)"
	@echo "make golden     refresh golden files (contract suites; the pipeline on a small book)"
	@echo "make test-browser  load the reports in headless Chromium (installs it when missing)"
	@echo "make prefect-server / make serve   the Prefect server on loopback, then the nightly and backfill deployments"
	@echo "make bench-orchestration  orchestration overhead of a 365-day backfill"
	@echo "make bench-engine / bench-engine-10m / bench-contracts   scale benchmarks (docs/SCALING.md)"
	@echo "make scaling-plot  redraw docs/scaling.svg from benchmarks/results/engine.jsonl"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP) pdf-deps
	$(BIN)/abs-pipeline generate --out $(DATA)/landing --loans $(DEMO_LOANS) \
		--start $(DEMO_START) --months $(DEMO_MONTHS) --seed $(DEMO_SEED) --if-empty \
		--bad-rows --second-servicer-loans $(DEMO_SECOND_SERVICER_LOANS) --servicer-tape \
		--revolving-accounts $(DEMO_REVOLVING_ACCOUNTS)
	$(BIN)/abs-pipeline backfill --start $(DEMO_START)-01 --end $(DEMO_END) --data-root $(DATA)

# The archive PDFs (WeasyPrint) need Pango, HarfBuzz's subsetter (fast, reproducible font
# subsets) and a CJK font (Debian fonts-noto-cjk): installed here when missing.
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk

pdf-deps:
	@if ! fc-list :lang=zh 2>/dev/null | grep -q . || \
		! ldconfig -p 2>/dev/null | grep -q libharfbuzz-subset || \
		! ldconfig -p 2>/dev/null | grep -q libpangoft2; then \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends $(PDF_PACKAGES); \
	fi

# The fast suite runs on TEST_WORKERS processes (pytest-xdist), a test file per worker at a
# time so module fixtures are built once, the costliest files first (tests/conftest.py
# orders them by their seconds in the last run); TEST_WORKERS=0 runs it in this process.
# Property tests whose examples each cost a pipeline stage take their count from the
# "ci" profile (tests/conftest.py). The fast suite reads no task runs back (the Dask tests
# that do are slow), so its shared Prefect test server does not record them. Each test
# process (the workers, the command lines the tests start) imports the project afresh:
# its bytecode and pytest's rewritten test modules are kept in __pycache__ even where the
# environment says not to write bytecode (PYTHONDONTWRITEBYTECODE), seconds a process.
TEST_WORKERS ?= 2

test: $(STAMP) pdf-deps
	PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED=false PYTHONDONTWRITEBYTECODE= \
		$(BIN)/python -m pytest -m "not slow" -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--hypothesis-profile=ci

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/vulture

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

golden: $(STAMP) pdf-deps
	$(BIN)/python -m data_contracts.compile --write-golden tests/data_contracts/golden
	$(BIN)/python -m tests.reports.golden

# The browser test loads every report of a small generated book in headless Chromium
# (Debian packages `chromium`, and `fonts-noto-cjk` for the Chinese pages), offline, and
# fails on console errors or requests to non-local URLs. Screenshots go to BROWSER_OUT.
CHROMIUM    ?= /usr/bin/chromium
BROWSER_OUT ?= build/browser
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

test-browser: $(STAMP) pdf-deps
	@if [ ! -x $(CHROMIUM) ] || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends chromium fonts-noto-cjk; \
	fi
	ABS_PIPELINE_BROWSER_TEST=1 ABS_PIPELINE_BROWSER_OUT=$(BROWSER_OUT) \
		$(BIN)/python -m pytest tests/reports/test_browser.py -q -s

# Scheduling (README, "Scheduling"): the Prefect server on loopback, then in another
# shell the nightly and backfill deployments served against it.
PREFECT_PORT ?= 4200

prefect-server: $(STAMP)
	PREFECT_HOME=$(abspath $(DATA))/.prefect $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

serve: $(STAMP)
	PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api $(BIN)/abs-pipeline serve --data-root $(DATA)

bench-orchestration: $(STAMP)
	$(BIN)/python benchmarks/orchestration.py

# Scale benchmarks (docs/SCALING.md). Each appends its results to BENCH_RESULTS;
# run one at a time on a quiet machine.
BENCH_RESULTS ?= benchmarks/results/engine.jsonl
BENCH_BATCH   ?= 100000

bench-engine: $(STAMP)
	$(BIN)/python benchmarks/engine.py --loans 100000 1000000 --batch-loans $(BENCH_BATCH) \
		--json $(BENCH_RESULTS)

bench-engine-10m: $(STAMP)
	$(BIN)/python benchmarks/engine.py --loans 10000000 --no-reference --batch-loans $(BENCH_BATCH) \
		--json $(BENCH_RESULTS)

bench-contracts: $(STAMP)
	$(BIN)/python benchmarks/contracts.py --rows 1000000 --gx

scaling-plot: $(STAMP)
	$(BIN)/python benchmarks/plot_scaling.py $(BENCH_RESULTS) docs/scaling.svg

clean-data:
	rm -rf $(DATA)
