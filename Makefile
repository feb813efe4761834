# The front door. `make help` lists every target; CI calls these same targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv is the only tool needed up front: it is installed from PyPI into .local/uv/bin when no `uv`
# is on the PATH (README.md says how to put that folder on yours).
UV_VERSION ?= 0.13.9
LOCAL_UV := $(CURDIR)/.local/uv/bin/uv
UV ?= $(or $(shell command -v uv 2>/dev/null),$(LOCAL_UV))
# The pre-commit hooks' entries call `uv`: appended (not prepended, so the python3 found stays the
# same), it lets `make hooks` find the uv this Makefile installed when none is on the PATH.
export PATH := $(PATH):$(patsubst %/,%,$(dir $(UV)))

MEMBERS := $(wildcard packages/* services/*)
# Checked by mypy beside the members: the repository's own scripts and tests.
TYPED_DIRS := $(MEMBERS) tools tests bench
SERVICES := $(notdir $(wildcard services/*))
PYTEST_ARGS ?=
# `make test` spreads its tests over pytest-xdist workers, one per physical core (docs/speed.md);
# PYTEST_WORKERS=0 runs them all in one process (for --pdb, or to read one test's output).
PYTEST_WORKERS ?= auto
# pytest with bytecode caching on, even where PYTHONDONTWRITEBYTECODE is set (as on this project's
# CI machines): otherwise each pytest process of a run (xdist's workers, the pytest runs tests
# start) compiles again, and rewrites the asserts of, the same few hundred modules, about 2 s of
# CPU each (docs/speed.md). The caches go to __pycache__ folders, which git ignores.
PYTEST := PYTHONDONTWRITEBYTECODE= $(UV) run --no-sync pytest
BENCH_ARGS ?=
# `make up`: auto finds a Docker engine or runs natively; MODE=docker|native forces one.
MODE ?= auto
STACK := $(UV) run --no-sync python tools/stack.py

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(LOCAL_UV):
	@echo "uv not found: installing uv $(UV_VERSION) from PyPI into .local/uv/bin"
	@python3 -m venv $(CURDIR)/.local/uv
	@$(CURDIR)/.local/uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@echo "to type uv yourself: export PATH=\"$(CURDIR)/.local/uv/bin:\$$PATH\""

.PHONY: uv
uv: $(if $(filter $(LOCAL_UV),$(UV)),$(LOCAL_UV))

.PHONY: uv-version
uv-version: ## The uv version this Makefile installs (CI installs the same one)
	@echo $(UV_VERSION)

.PHONY: sync
sync: uv ## Install the locked workspace (every member and the dev tools) into .venv
	@$(UV) sync --locked --all-packages --check --quiet 2>/dev/null \
		|| $(UV) sync --locked --all-packages --compile-bytecode

.PHONY: install
install: sync ## Set up a development checkout, with the pre-commit git hook
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
		$(UV) run --no-sync pre-commit install; \
	else \
		echo "not a git checkout: pre-commit hook not installed"; \
	fi
	@echo "Ready: try 'make test'."

# Debian's pgbouncer, haproxy and prometheus, which devstack runs (`make up POOLER=1 REPLICAS=3
# OBSERVABILITY=1`, the tests of its pooler, balancer and scraper, the suites through PgBouncer):
# installed when missing, as `make bench` installs wrk. `make test` needs none of them.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
SYSTEM_PROGRAMS ?= pgbouncer haproxy
.PHONY: system-packages
system-packages:
	@missing=""; for program in $(SYSTEM_PROGRAMS); do \
		command -v $$program >/dev/null || [ -x /usr/sbin/$$program ] || missing="$$missing $$program"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "not found:$$missing: installing Debian's$$missing"; \
		$(SUDO) apt-get install -y --no-install-recommends $$missing \
			|| { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $$missing; }; \
	fi

.PHONY: test
test: sync ## Run every test of every member against a real Postgres
	$(PYTEST) -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Its tests stop the benchmarks halfway: it installs Debian's wrk when missing, as `make bench` does.
.PHONY: test-processes
test-processes: SYSTEM_PROGRAMS = wrk
test-processes: sync system-packages ## The stack, services, benchmarks and migration commands as real processes (a few minutes)
	$(PYTEST) -m processes tests $(PYTEST_ARGS)

.PHONY: test-affected
test-affected: sync ## Test only the members a change affects: make test-affected BASE=main
	@test -n "$(BASE)" || { echo "usage: make test-affected BASE=<git ref> [HEAD=<git ref>]"; exit 2; }
	@folders="$$($(UV) run --no-sync python tools/affected.py --base "$(BASE)" \
		$(if $(HEAD),--head "$(HEAD)") --format tests)" || exit $$?; \
	if [ -z "$$folders" ]; then \
		echo "No workspace member is affected since $(BASE): nothing to test."; \
		exit 0; \
	fi; \
	echo "Affected:" $$folders; \
	$(PYTEST) $(PYTEST_ARGS) $$folders

# BASE is the previous release: the merge base with main unless given (CI gives the pull request's
# base). Its worktree and environment are kept in .local/compat/<sha>/.
.PHONY: test-compat
test-compat: sync ## The previous release's tests on this change's schema: make test-compat SERVICE=things-svc [BASE=<ref>]
	@test -n "$(SERVICE)" || { echo "usage: make test-compat SERVICE=<service> [BASE=<git ref>]"; exit 2; }
	@UV="$(UV)" $(UV) run --no-sync python tools/compat.py "$(SERVICE)" $(if $(BASE),--base "$(BASE)")

.PHONY: test-browser
test-browser: sync ## Each service's /docs in headless Chromium (needs Debian's chromium)
	$(PYTEST) -m browser tests $(PYTEST_ARGS)

.PHONY: test-scaffold
test-scaffold: sync ## Generate a service and a domain in a copy of the repository, check it all
	$(PYTEST) -m scaffold tests $(PYTEST_ARGS)

.PHONY: test-docs
test-docs: sync ## Every command README.md and docs/ show, run on a fresh copy (several minutes)
	$(PYTEST) -m docs tests/test_docs_commands.py $(PYTEST_ARGS)
.PHONY: test-observability
test-observability: SYSTEM_PROGRAMS = prometheus
test-observability: sync system-packages ## Debian's prometheus scraping the native stack
	$(PYTEST) -m observability tests $(PYTEST_ARGS)

.PHONY: test-reliability
test-reliability: sync system-packages ## Break Postgres and the services under load on purpose (a few minutes)
	$(PYTEST) -m reliability tests/reliability $(PYTEST_ARGS)

# `make test-pgbouncer`: the two suites with their traffic through PgBouncer in transaction mode
# (Debian's pgbouncer): one in front of PGBOUNCER_UPSTREAM for `make test`; the reliability suite
# puts one of its own in front of its own Postgres (TEST_DATABASE_POOLER).
PGBOUNCER_UPSTREAM ?= postgresql://postgres@127.0.0.1:5432/postgres
.PHONY: test-pgbouncer
test-pgbouncer: sync system-packages ## The pooler's own tests, then make test and make test-reliability through PgBouncer
	$(PYTEST) -m pooler $(PYTEST_ARGS)
	$(UV) run --no-sync python -m devstack.pgbouncer --upstream "$(PGBOUNCER_UPSTREAM)" \
		--folder $(CURDIR)/.local/pgbouncer-tests -- \
		$(MAKE) --no-print-directory test test-reliability PYTEST_ARGS="$(PYTEST_ARGS)"

.PHONY: lint
lint: sync ## Check lint and formatting (ruff), the CI workflow (zizmor, offline), each migration's SQL (squawk)
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync zizmor --offline .github/workflows
	$(UV) run --no-sync python tools/migration_lint.py

.PHONY: format
format: sync ## Fix what ruff can fix, and format
	$(UV) run --no-sync ruff check --fix .
	$(UV) run --no-sync ruff format .

.PHONY: typecheck
typecheck: sync ## mypy --strict on every member: sources, tests and migrations
	@set -e; for member in $(TYPED_DIRS); do \
		echo "mypy $$member"; $(UV) run --no-sync mypy $$member; \
	done

.PHONY: hooks
hooks: sync ## Run every pre-commit hook on every file (what the git hook runs on a commit)
	$(UV) run --no-sync pre-commit run --all-files --show-diff-on-failure

.PHONY: openapi
openapi: sync ## Write each service's OpenAPI document, services/<svc>/openapi.json (reviewed, tested)
	$(UV) run --no-sync python tools/generated_files.py openapi

.PHONY: event-schema
event-schema: sync ## Write the events' envelope JSON schema, packages/common/events.schema.json (reviewed, tested)
	$(UV) run --no-sync python tools/generated_files.py event-schema

.PHONY: env-examples
env-examples: sync ## Regenerate each service's .env.example from its settings classes
	$(UV) run --no-sync python tools/generated_files.py env-examples

.PHONY: manifests-check
manifests-check: sync ## Every overlay of deploy/kubernetes rendered, validated (each Kubernetes version), linted, budgeted
	$(UV) run --no-sync python tools/render_manifests.py
	$(UV) run --no-sync python tools/connection_budget.py --overlay prod >/dev/null
	$(UV) run --no-sync yamllint --strict deploy/ .yamllint.yaml tools/checkov/config.yaml

# checkov pins libraries the workspace needs newer: it has a locked environment of its own.
CHECKOV_OUT := $(CURDIR)/.local/rendered-manifests
.PHONY: manifests-checkov
manifests-checkov: sync ## checkov on every rendered overlay, offline, in its own locked environment
	$(UV) sync --locked --quiet --project tools/checkov
	rm -rf $(CHECKOV_OUT)
	$(UV) run --no-sync python tools/render_manifests.py --out $(CHECKOV_OUT) --versions 1.37.0
	tools/checkov/.venv/bin/checkov --config-file tools/checkov/config.yaml --directory $(CHECKOV_OUT)
	@echo "checkov: no failed check in" $$(cd $(CHECKOV_OUT) && ls *.yaml)

.PHONY: manifests-budget
manifests-budget: sync ## The Postgres connection budget of an overlay, from what it renders: make manifests-budget [OVERLAY=prod]
	@$(UV) run --no-sync python tools/connection_budget.py --overlay $(or $(OVERLAY),prod)

.PHONY: check
check: lint typecheck test hooks ## Everything CI checks: lint, types, tests, hooks

.PHONY: check-member
check-member: uv ## One member alone, as its CI job checks it: make check-member MEMBER=things-svc
	@test -n "$(MEMBER)" || { echo "usage: make check-member MEMBER=<member>"; exit 2; }
	@UV="$(UV)" python3 tools/member_check.py "$(MEMBER)"

.PHONY: bench
bench: sync ## Benchmark the services against a raw asyncpg floor: make bench BENCH_ARGS="--seconds 5"
	@command -v wrk >/dev/null || { \
		echo "wrk not found: installing Debian's wrk"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y wrk || { \
			$(if $(filter 0,$(shell id -u)),,sudo) apt-get update && \
			$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y wrk; }; }
	$(UV) run --no-sync python bench/run.py $(BENCH_ARGS)

.PHONY: bench-events
bench-events: sync ## Events users-svc → things-svc: events/s relay → consumer, p50/p99 commit → applied
	$(UV) run --no-sync python bench/events.py $(BENCH_ARGS)

.PHONY: migrate
migrate: sync ## Apply migrations on the make-up database: every service, or SERVICE=things-svc
	@$(STACK) migrate $(if $(SERVICE),--service "$(SERVICE)")

.PHONY: revision
revision: sync ## New autogenerated migration: make revision SERVICE=things-svc m="add colour"
	@test -n "$(SERVICE)" || { echo "usage: make revision SERVICE=<service> m=\"message\""; exit 2; }
	@test -n "$(m)" || { echo "give the revision a message: m=\"...\""; exit 2; }
	@$(STACK) revision --service "$(SERVICE)" -m "$(m)"

.PHONY: psql
psql: sync ## psql on a service's database in the make-up stack: make psql SERVICE=things-svc
	@test -n "$(SERVICE)" || { echo "usage: make psql SERVICE=<service>"; exit 2; }
	@$(STACK) psql --service "$(SERVICE)"

.PHONY: dev
dev: sync ## One service with auto-reload against the stack: make dev SERVICE=things-svc [PORT=8100]
	@test -n "$(SERVICE)" || { echo "usage: make dev SERVICE=<service> [PORT=<port>]"; exit 2; }
	@$(STACK) dev --service "$(SERVICE)" $(if $(PORT),--port "$(PORT)")

.PHONY: env
env: sync ## The variables that point one service at the stack: eval "$$(make -s env SERVICE=things-svc)"
	@test -n "$(SERVICE)" || { echo "usage: make env SERVICE=<service>"; exit 2; }
	@$(STACK) env --service "$(SERVICE)"

.PHONY: admin
admin: sync ## Create an administrator, or promote an account with its password: make admin EMAIL=ada@example.com [FORCE=1]
	@test -n "$(EMAIL)" || { echo "usage: make admin EMAIL=<email> [FORCE=1]  (asks the password, or reads it from stdin; FORCE=1 promotes an existing account without it)"; exit 2; }
	@$(STACK) python --service users-svc -- -m users_svc.admin --email "$(EMAIL)"$(if $(FORCE), --force)

.PHONY: seed
seed: sync ## A few users and things in the stack, through the public APIs (idempotent)
	@$(UV) run --no-sync python tools/seed_stack.py

.PHONY: up
up: SYSTEM_PROGRAMS = $(if $(filter-out 0,$(POOLER)),pgbouncer) \
	$(if $(filter-out 1,$(REPLICAS)),haproxy) $(if $(filter-out 0,$(OBSERVABILITY)),prometheus)
up: sync system-packages ## Start every service with its database, print each URL (MODE=docker|native, ATTACH=1, POOLER=1, REPLICAS=3, OBSERVABILITY=1)
	@$(STACK) up --mode $(MODE) $(if $(filter-out 0,$(ATTACH)),--attach) \
		$(if $(filter-out 0,$(POOLER)),--pooler) $(if $(REPLICAS),--replicas $(REPLICAS)) \
		$(if $(filter-out 0,$(OBSERVABILITY)),--observability)

.PHONY: down
down: sync ## Stop everything `make up` started (the data stays)
	@$(STACK) down

.PHONY: ps
ps: sync ## What `make up` runs, and where
	@$(STACK) ps

.PHONY: rollout
rollout: sync ## Replace a service's replicas one at a time (make up REPLICAS=3 first): make rollout SERVICE=things-svc
	@test -n "$(SERVICE)" || { echo "usage: make rollout SERVICE=<service>"; exit 2; }
	@$(STACK) rollout --service "$(SERVICE)"

.PHONY: events
events: sync ## Each service's events: outbox backlog, consumer lag, dead letters (on the make-up stack)
	@$(STACK) events

.PHONY: logs
logs: sync ## Follow the services' logs (Ctrl-C stops following, not the services)
	@$(STACK) logs

.PHONY: new-service
new-service: sync ## New service with a first domain: make new-service NAME=orders-svc [DOMAIN=orders]
	@test -n "$(NAME)" || { echo "usage: make new-service NAME=<name>-svc [DOMAIN=<plural>] [SINGULAR=<singular>]"; exit 2; }
	@UV="$(UV)" $(UV) run --no-sync python tools/scaffold.py new-service "$(NAME)" \
		$(if $(DOMAIN),--domain "$(DOMAIN)") $(if $(SINGULAR),--singular "$(SINGULAR)")
	@$(UV) sync --locked --all-packages --compile-bytecode --quiet
	@$(UV) run --no-sync python tools/generated_files.py openapi --service "$(NAME)"
	@$(UV) run --no-sync python tools/generated_files.py env-examples
	@echo "Next:"
	@echo "  make up   # starts it, with its database made and migrated, in the stack (running or not)"
	@echo "  make test PYTEST_ARGS=services/$(NAME)   # its tests, green from the start"
	@echo "  git add -A && git commit -qm 'make new-service NAME=$(NAME)'   # what copier update starts from"
	@echo "Then, for each change of its models or routes: make revision, make migrate, make openapi,"
	@echo "make test (docs/development.md, \"Changing an API\")."

.PHONY: new-domain
new-domain: sync ## New domain in a service: make new-domain SERVICE=things-svc NAME=widgets
	@test -n "$(SERVICE)" -a -n "$(NAME)" || { echo "usage: make new-domain SERVICE=<service> NAME=<plural> [SINGULAR=<singular>]"; exit 2; }
	@$(UV) run --no-sync python tools/scaffold.py new-domain "$(SERVICE)" "$(NAME)" \
		$(if $(SINGULAR),--singular "$(SINGULAR)")
	@$(UV) run --no-sync python tools/generated_files.py openapi --service "$(SERVICE)"
	@echo "Next:"
	@echo "  make migrate SERVICE=$(SERVICE)   # its revision, on the stack's database"
	@echo "  make up   # the stack's $(SERVICE) serves it (started again, when the stack runs)"
	@echo "  make test PYTEST_ARGS=services/$(SERVICE)   # its tests, green from the start"
	@echo "  git add -A && git commit -qm 'make new-domain SERVICE=$(SERVICE) NAME=$(NAME)'   # what copier update starts from"
	@echo "Then, for each change of its models or routes: make revision, make migrate, make openapi,"
	@echo "make test (docs/development.md, \"Changing an API\")."
