# dnsctl: the two set-up commands are `make demo` (run the system) and `make test` (pass the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench compose clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/dnsctl up

test: install
	$(BIN)/pytest -q -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check planner enactor services cli lab tests benchmarks

bench: install
	$(BIN)/python benchmarks/emulator_bench.py
	$(BIN)/python benchmarks/enactor_bench.py
	$(BIN)/python benchmarks/dns_bench.py

clean:
	rm -rf $(VENV) .dnsctl .pytest_cache .hypothesis
