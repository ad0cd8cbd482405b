# Two commands do all set-up: `make plan` and `make test` create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
SARIF_SCHEMA := $(VENV)/share/sarif-2.1.0.json

.PHONY: plan test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

plan: $(STAMP)
	$(VENV)/bin/fluxfleet plan

$(SARIF_SCHEMA): tests/tools/fetch_sarif_schema.py | $(STAMP)
	$(VENV)/bin/python tests/tools/fetch_sarif_schema.py $(SARIF_SCHEMA)

test: $(STAMP) $(SARIF_SCHEMA)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/plan_fleet.py

clean:
	rm -rf $(VENV) .pytest_cache
