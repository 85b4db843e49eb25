# Every target installs what it needs: a fresh clone with nothing but Python works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-shards lint bench-ingest bench-query bench-gateway clean

# Benchmarks on N embedded ClickHouse shards: SHARDS=2 make bench-query
SHARDS ?= 1

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,test]'
	touch $(STAMP)

run: install
	$(BIN)/trilha up --demo

test: install
	$(BIN)/ruff check services ingest query schemas tests
	$(BIN)/python -m pytest -q -ra

# The same suite against a 2-shard ClickHouse cluster on this machine (answers must be identical).
test-shards: install
	TRILHA_TEST_CLICKHOUSE_SHARDS=2 $(BIN)/python -m pytest -q -ra

lint: install
	$(BIN)/ruff check services ingest query schemas tests

bench-ingest: install
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_ingest

bench-query: install
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_query
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_reports

bench-gateway: install
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_gateway

clean:
	rm -rf $(VENV) var .pytest_cache
