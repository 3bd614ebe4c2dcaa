# Two commands do all set-up: `make run` (the product) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint install install-dev worker prod-release prod-static prod-web prod-worker prod-smoke

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/activate
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(VENV)/bin/activate
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(VENV)/.installed $@

# The official Sinch SDK, apart from our own `sinch` package (same import name),
# for the contract tests: see requirements-sdk.txt.
SDK := $(VENV)/sinch-sdk

$(SDK)/.installed: requirements-sdk.txt | $(VENV)/bin/activate
	rm -rf $(SDK)
	$(PY) -m pip install -q --target $(SDK) -r requirements-sdk.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev $(SDK)/.installed

.env:
	cp .env.example .env
	echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" >> .env

# The app's webhook, where the simulator sends callbacks when it stands in for Sinch.
SINCH_WEBHOOK_URL ?= http://127.0.0.1:8000/webhooks/sinch

run: install .env
	mkdir -p var/static
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_demo
	@echo "Starting the web server on http://127.0.0.1:8000/admin/ and a worker (login above, also in var/admin-login.txt), and the Sinch simulator when no Sinch credentials are configured; Ctrl-C stops them all."
	@$(PY) -m config.run \
		"$(PY) manage.py sinch_simulator --if-needed --webhook-url $(SINCH_WEBHOOK_URL)" \
		"$(PY) manage.py qcluster" \
		"$(PY) manage.py runserver 127.0.0.1:8000"

worker: install .env
	$(PY) manage.py qcluster

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .

# --- production (README "Deploying to production") ----------------------------
# The environment (or .env) holds the production settings: DEBUG=false,
# SECRET_KEY, ERASURE_HASH_KEY, SINCH_*, DATABASE_URL (PostgreSQL), REDIS_URL.
# These targets install nothing and download nothing: `make install` (or the
# image build) did that beforehand.

# Once per release, before the new web and worker processes start.
prod-release:
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0

prod-static:
	$(PY) manage.py collectstatic --noinput -v0

# The web process: gunicorn with config/gunicorn.conf.py (GUNICORN_BIND,
# WEB_CONCURRENCY, ...), static files served by the app (WhiteNoise).
prod-web: prod-static
	exec $(VENV)/bin/gunicorn -c config/gunicorn.conf.py config.wsgi

# A worker: django-q2's cluster (Q_WORKERS processes), which also runs the
# periodic schedules; several may run against one database and Redis.
prod-worker:
	exec $(PY) manage.py qcluster

# The production configuration started on this machine and checked end to end
# (PostgreSQL at BENCH_POSTGRES_URL, Redis at SMOKE_REDIS_URL; see the script).
prod-smoke: install-dev
	$(PY) bench/production_smoke.py
