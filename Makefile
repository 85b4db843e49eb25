# Every target installs what it needs: a fresh clone with nothing but Python works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The console's browser tests drive Debian's Chromium (Playwright cannot download its own browsers here).
CHROMIUM := /usr/bin/chromium

.PHONY: install chromium run test test-shards lint bench-ingest bench-query bench-gateway bench-abuse clean

# Benchmarks on N embedded ClickHouse shards: SHARDS=2 make bench-query
SHARDS ?= 1

install: $(STAMP) chromium

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing Debian's chromium for the console's browser tests"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "make: the console's browser tests need Chromium at $(CHROMIUM):" \
	         "run 'sudo apt-get install -y chromium' (Debian/Ubuntu), then make test again" >&2; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,test]'
	touch $(STAMP)

run: $(STAMP)  # the stack needs no browser
	$(BIN)/trilha up --demo

test: install
	$(BIN)/ruff check services ingest query schemas tests
	$(BIN)/python -m pytest -q -ra

# The same suite against a 2-shard ClickHouse cluster on this machine (answers must be identical).
test-shards: install
	TRILHA_TEST_CLICKHOUSE_SHARDS=2 $(BIN)/python -m pytest -q -ra

lint: $(STAMP)
	$(BIN)/ruff check services ingest query schemas tests

bench-ingest: $(STAMP)
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_ingest
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_proofs --ingest

bench-query: $(STAMP)
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_query
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_reports
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_proofs --query

bench-gateway: $(STAMP)
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_gateway

bench-abuse: $(STAMP)
	TRILHA_TEST_CLICKHOUSE_SHARDS=$(SHARDS) $(BIN)/python -m tests.bench.bench_abuse

clean:
	rm -rf $(VENV) var .pytest_cache
