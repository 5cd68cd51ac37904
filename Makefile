# The verbs people type. Everything installs itself into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SERVICES := orders inventory customers reporting gateway

WEB_DEPS := web/node_modules/.package-lock.json
WEB_SOURCES := $(shell find web/src web/scripts web/index.html web/vite.config.ts web/tsconfig.json web/package.json -type f 2>/dev/null)

.PHONY: streams web web-deps web-test web-client web-client-check web-e2e install run test test-fast proto proto-check lint format migrate migration dead-letters outbox bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start NATS, the four services and the gateway with demo data; Ctrl-C stops them all.
## Builds the web console first when it is missing or stale and npm is there to build it.
## REPLICAS=orders=2,reporting=2: that many replicas of those services (DATABASE_URL=postgresql://...).
run: install
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory web; \
	else echo "npm not found: the web console is not built (the API works without it)"; fi
	REPLICAS="$(REPLICAS)" $(PY) -m devtools.run

## The whole suite: unit, integration (real NATS and database) and end-to-end (real processes).
## TEST_DATABASE_URL=postgresql://... runs the database parts against PostgreSQL.
test: install
	$(PY) -m pytest -q

## Unit and integration tests only, without starting the whole system.
test-fast: install
	$(PY) -m pytest -q -m "not e2e"

proto: install
	$(PY) scripts/gen_protos.py

proto-check: install
	$(PY) scripts/gen_protos.py --check

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy servicekit services devtools scripts tests

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Apply every service's migrations without serving (DATABASE_URL/DB_SCHEMA as for a run).
migrate: install
	for service in $(SERVICES); do DB_SCHEMA=$${DB_SCHEMA_PREFIX}$$service $(PY) -m services.$$service migrate || exit 1; done

## The JetStream streams at this version's settings (servicekit.streams; the streams Job in k8s),
## as each service's NATS user: NATS_URL, passwords in NATS_PASSWORDS/<user>, NATS_SIZING=national
## for the chain's sizes.
streams: install
	for service in orders inventory customers reporting; do NATS_USER=$$service NATS_PASSWORD_FILE=$${NATS_PASSWORDS:+$$NATS_PASSWORDS/$$service} $(PY) -m servicekit.streams $$service --sizing $${NATS_SIZING:-local} || exit 1; done

## A new migration from model changes: make migration SERVICE=orders MSG="add closed_at"
migration: install
	$(PY) scripts/new_migration.py $(SERVICE) "$(MSG)"

## Messages a service's consumers gave up on: make dead-letters SERVICE=customers [ARGS="list"]
## ARGS: list | show <seq> | replay <seq> | replay --all (same NATS_URL as the service), as
## the NATS operator user (only it may replay; make run keeps its password in .data/nats/users)
dead-letters: install
	NATS_USER=$${NATS_USER-operator} \
	NATS_PASSWORD_FILE=$${NATS_PASSWORD_FILE-$${DATA_DIR:-.data}/nats/users/operator} \
	$(PY) -m services.$(SERVICE) dead-letters $(or $(ARGS),list)

## Events the broker kept refusing, parked: make outbox SERVICE=orders [ARGS="parked"]
## ARGS: parked | unpark <seq> | unpark --all (same DATABASE_URL as the service)
outbox: install
	DB_SCHEMA=$${DB_SCHEMA-$${DB_SCHEMA_PREFIX}$(SERVICE)} $(PY) -m services.$(SERVICE) outbox $(or $(ARGS),parked)

## Throughput, latency and CPU per request through the gateway, against a bare FastAPI → gRPC
## hop; issue 12's targets, and CPU per order against tests/bench/recorded.json.
## BENCH_RECORD=1 records this run's figures there; BENCH_PROFILE=1 adds py-spy's profiles.
bench: install
	$(PY) -m tests.bench.run_bench

## The web console (web/): its npm packages exactly as web/package-lock.json pins them.
$(WEB_DEPS): web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $(WEB_DEPS)

web-deps: $(WEB_DEPS)

## Build the console into web/dist, which the gateway serves; nothing to do when it is newer
## than its sources.
web/dist/index.html: $(WEB_DEPS) $(WEB_SOURCES)
	cd web && npm run build

web: web/dist/index.html

## The console's unit tests (Vitest): forms' logic, IMEI check, menus by role, client layer.
web-test: $(WEB_DEPS)
	cd web && npx vitest run

## The console's API types from the gateway's OpenAPI; -check fails when they are stale.
web-client: install $(WEB_DEPS)
	$(PY) scripts/gen_web_client.py

web-client-check: install $(WEB_DEPS)
	$(PY) scripts/gen_web_client.py --check

## Browser tests: Playwright drives Debian's Chromium (apt-get install -y chromium) against the
## whole system started as tests/e2e start it; screenshots land in web/e2e-results/.
web-e2e: install web
	$(PY) scripts/run_web_e2e.py

clean:
	rm -rf .data bench-results .pytest_cache .mypy_cache .ruff_cache

## The alert rules and dashboards of k8s/components/monitoring: promtool checks the rules (made
## a plain rules file, .data/monitoring/rules.yaml, which ops/prometheus/prometheus.yml loads)
## and runs their unit tests (tests/alerts); every dashboard's PromQL is checked.
## Needs promtool (Debian: apt-get install prometheus).
.PHONY: alerts-test
alerts-test: install
	mkdir -p .data/monitoring
	$(PY) -c "import yaml; rule = yaml.safe_load(open('k8s/components/monitoring/prometheus-rule.yaml')); yaml.safe_dump({'groups': rule['spec']['groups']}, open('.data/monitoring/rules.yaml', 'w'), sort_keys=False)"
	promtool check rules .data/monitoring/rules.yaml
	promtool check config ops/prometheus/prometheus.yml
	$(PY) -m pytest -q tests/test_alerts.py tests/test_dashboards_json.py servicekit/tests/test_metrics_names.py
