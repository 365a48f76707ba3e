# aigc-commerce: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Use the active virtual environment if there is one, else create ./.venv.
ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := $(CURDIR)/.venv
endif
PY := $(VENV)/bin/python
PYTHON ?= python3.11
STAMP := $(VENV)/.aigc-installed
SOURCE ?= simulated
SCALE ?= small
DAYS ?= 14
# Open-loop demo: the most days one run covers; longer ranges run in parts with the bundle retention between
RUN_DAYS ?= 28
LOOP ?= $(or $(AIGC_SHOP_LOOP),open)
# Assets a CLI backfill materialises (Dagster selection syntax, e.g. supply/service_levels or 'supply/service_levels+')
SELECT ?= *
PORT ?= 3000
API_PORT ?= 8000
# Test processes: the suite is mostly single-threaded Python, so one worker per core (pytest-xdist); whole test
# files go to one worker, so a module's end-to-end fixture is built once, and the files that share a session
# warehouse go to the same one (tests/conftest.py).
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: help setup demo test test-e2e test-spark test-full test-fast ui api bench-forecast bench-forecast-env bench-forecast-two-years lint dbt-docs clean backfill

help:
	@echo "make demo [SOURCE=simulated|online_retail] [DAYS=14] [RUN_DAYS=28] [LOOP=open|closed] [RESUME=1]  install, then materialise DAYS days (RESUME: skip the days done)"
	@echo "make test                                            install, then run the test suite"
	@echo "make test-e2e                                        the UI in headless Chromium (apt chromium) + the race test"
	@echo "make test-spark                                      install the spark extra, then dbt on Spark against DuckDB"
	@echo "make ui [LOOP=open|closed]                           Dagster UI on http://127.0.0.1:$(PORT)"
	@echo "make api                                             read API on http://127.0.0.1:$(API_PORT) (recommendations, forecasts, plan)"
	@echo "make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [SELECT=..]  materialise a range (all assets, or SELECT) as one run"
	@echo "make lint | dbt-docs | contract-macros | clean | test-full"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency files change.
$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# The dbt manifest must exist before the Dagster definitions are imported.
setup: $(STAMP)
	cd dbt_project && $(VENV)/bin/dbt parse --quiet --profiles-dir .

demo: setup
	$(PY) -m orchestration.demo --source $(SOURCE) --scale $(SCALE) --days $(DAYS) --run-days $(RUN_DAYS) --loop $(LOOP) $(if $(RESUME),--resume)

# The browser tests need Chromium (apt-get install chromium), the race test a daemon and the prod-instance test
# Debian's PostgreSQL: `make test-e2e`, which .ci/run also runs.
test: setup
	$(PY) -m pytest -q -m "not browser and not daemon and not postgres and not spark" $(XDIST)

# The Dagster UI in a real browser (Playwright + Debian's Chromium): graph, partitions, a launch, checks, queueing;
# and the schedule racing two backfills against a real `dagster dev` (tests/test_concurrency.py).
test-e2e: setup
	$(PY) -m pytest -q -m "browser or daemon or postgres"

# Both Online Retail years through the pipeline on top of the suite (the README says how long it takes and the
# disk it needs).
test-full: setup
	AIGC_TEST_RETAIL_DAYS=739 $(PY) -m pytest -q -m "not browser and not daemon and not postgres and not spark" $(XDIST)
	$(PY) -m pytest -q -m "browser or daemon or postgres"

# dbt on Spark: the `spark` extra (PySpark and dbt-spark, about 450 MB; Java 17 must be on the machine) in its own
# environment, .venv-spark (with PySpark installed, Great Expectations' import of its Spark support exits under the
# test workers), then checks that Spark builds every model equal to DuckDB (tests/test_spark.py).
SPARK_VENV := $(CURDIR)/.venv-spark
test-spark:
	test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(SPARK_VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"
	cd dbt_project && $(SPARK_VENV)/bin/dbt parse --quiet --profiles-dir .
	$(SPARK_VENV)/bin/python -m pytest -q -m spark

test-fast: setup
	$(PY) -m pytest -q -m "not e2e" $(XDIST)

api: setup
	$(PY) -m api.app --host 127.0.0.1 --port $(API_PORT)

ui: setup
	AIGC_SHOP_LOOP=$(LOOP) DAGSTER_HOME=$$($(PY) -m orchestration.instance) \
	  $(VENV)/bin/dagster dev -h 127.0.0.1 -p $(PORT) -w workspace.yaml

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# sqlfluff's dbt templater opens the warehouse: a throwaway one, so linting works before any demo ran
	cd dbt_project && AIGC_WAREHOUSE_PATH=$$(mktemp -d)/lint.duckdb $(VENV)/bin/sqlfluff lint models tests macros

# The landing contract's vocabularies and limits as a dbt macro file (tests/test_contracts.py fails while stale).
.PHONY: contract-macros
contract-macros: $(STAMP)
	$(PY) -m ml.sources.dbt_macros > dbt_project/macros/contract_vocabularies.sql

dbt-docs: setup
	cd dbt_project && AIGC_WAREHOUSE_PATH=$$($(PY) -m ml.settings warehouse-path) \
	  $(VENV)/bin/dbt docs generate --profiles-dir .

# The forecast benchmark with its peers in the same run (they need pandas < 3: a separate environment).
PEERS := $(CURDIR)/.venv-peers
bench-forecast-env:
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet "pandas>=2.2,<3" "numpy>=2" "scikit-learn>=1.5" scipy pyarrow tqdm \
	  statsforecast==2.1.1 mlforecast==1.1.0 lightgbm==4.7.0

bench-forecast: bench-forecast-env
	PYTHONPATH=$(CURDIR) $(PEERS)/bin/python -m bench.forecast --data data/online_retail/online_retail.csv.gz \
	  --out bench/results/forecast_online_retail.json

# The second edition (both Online Retail years; docs/benchmarks/forecast.md): about 15 minutes.
bench-forecast-two-years: bench-forecast-env
	PYTHONPATH=$(CURDIR) $(PEERS)/bin/python -m bench.forecast --data data/online_retail/online_retail.csv.gz \
	  --year-before data/online_retail_ii/online_retail_ii_2009_2010.parquet \
	  --validation-days 2010-10-06,2010-11-08,2011-07-31,2011-09-02,2011-10-05 \
	  --level-factor-days 2010-10-06,2010-11-08 --score-history-from 2010-12-01 \
	  --out bench/results/forecast_online_retail_two_years.json

clean:
	rm -rf .data dbt_project/target dbt_project/logs

backfill: setup
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [SELECT=supply/service_levels]"; exit 2; }
	AIGC_SHOP_LOOP=$(LOOP) DAGSTER_HOME=$$($(PY) -m orchestration.instance) \
	  $(VENV)/bin/dagster asset materialize -m orchestration.definitions --select '$(SELECT)' --partition-range $(FROM)...$(TO)
