# Every target installs what it needs: a fresh clone with nothing but Python works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench-ingest bench-query bench-gateway bench-abuse clean

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

lint: install
	$(BIN)/ruff check services ingest query schemas tests

bench-ingest: install
	$(BIN)/python -m tests.bench.bench_ingest

bench-query: install
	$(BIN)/python -m tests.bench.bench_query
	$(BIN)/python -m tests.bench.bench_reports

bench-gateway: install
	$(BIN)/python -m tests.bench.bench_gateway

bench-abuse: install
	$(BIN)/python -m tests.bench.bench_abuse

clean:
	rm -rf $(VENV) var .pytest_cache
