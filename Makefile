# The two commands of the README: `make test` and `make demo`.
# Both install what they need: Debian packages (as root) and a local virtualenv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MODE   ?= auth_request
STAMP  := $(VENV)/.installed

.PHONY: test check pythons mutate demo bench lint typecheck system-deps venv browser-deps clean lock upgrade-deps \
	test-latest dist differential-deps messages

# `make check`: the layer check (tests/architecture: no import circle, imports go one way; devtools/layers.py)
# and the unit tests, in-process (no servers, no nginx, no browser). Server tests
# (uvicorn on loopback, raw sockets), nginx and browser tests run in `make test`.
UNIT_TESTS := tests/architecture tests/store tests/fetch/test_addresses.py tests/signin/openid2/test_providers.py \
	tests/gate/test_redirects.py tests/signin/oidc/test_pkce.py tests/state/test_sessions.py tests/state/test_remember.py tests/state/test_revocation.py \
	tests/state/test_ratelimit.py tests/gate/test_clientaddr.py tests/gate/test_authenticate.py tests/test_settings.py \
	tests/gate/test_access.py tests/gate/test_answers.py tests/test_settings_files.py tests/test_paths.py \
	tests/gate/test_step_up.py tests/signin/test_step_up_answers.py \
	tests/pages/test_languages.py \
	tests/backend_app/test_database.py tests/backend_app/test_identity.py tests/backend_app/test_nicknames.py \
	tests/backend_app/test_pages.py tests/backend_app/test_settings.py \
	tests/devtools/test_openid_provider_pending.py tests/devtools/test_openid_provider_profiles.py \
	tests/devtools/test_openid_provider_refusals.py tests/devtools/test_image.py

venv: $(STAMP)

# Every Python package comes from the lock (requirements/dev.txt, with hashes): what was tested is what
# a fresh clone installs, whatever day it runs. pyproject.toml keeps the ranges a wheel's users get.
$(STAMP): requirements/dev.txt pyproject.toml scripts/install-venv
	@echo "==> installing the locked Python packages into $(VENV)"
	@scripts/install-venv $(VENV) $(PYTHON) requirements/dev.txt
	@touch $(STAMP)

# The lock: requirements/dev.txt (runtime + test/lint tools + build backend) and requirements/runtime.txt
# (what the wheel needs at run time: the container image and the production install), both universal
# (every Python >= 3.11, every platform) with hashes, made by uv. `make lock` keeps every pin it can
# (after a change to pyproject.toml); `make upgrade-deps` moves every pin to the newest allowed version.
UV_VERSION := 0.13.9
UV         := .venv-lock/bin/uv
LOCK_ARGS  := --universal --python-version 3.11 --generate-hashes --quiet

$(UV):
	@$(PYTHON) -m venv .venv-lock
	@.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

lock: $(UV)
	@$(UV) pip compile $(LOCK_ARGS) $(UPGRADE) pyproject.toml requirements/build.in --extra test -o requirements/dev.txt
	@$(UV) pip compile $(LOCK_ARGS) pyproject.toml -c requirements/dev.txt -o requirements/runtime.txt
	@echo "==> requirements/dev.txt: $$(grep -c '^[a-z]' requirements/dev.txt) packages;" \
	  "requirements/runtime.txt: $$(grep -c '^[a-z]' requirements/runtime.txt) packages"

# Languages (docs/customising.md): `make messages` extracts every text of the pages into
# gateway/pages/locale/messages.pot and updates each catalog from it; `make messages NEW_LANGUAGE=de`
# starts gateway/pages/locale/de/LC_MESSAGES/messages.po first. tests/pages/test_languages.py fails
# while a catalog misses a text.
LOCALE := gateway/pages/locale
messages: venv
	@$(BIN)/pybabel --quiet extract --no-location --sort-output --project openid-gateway \
	  -F $(LOCALE)/babel.cfg -o $(LOCALE)/messages.pot .
	@if [ -n "$(NEW_LANGUAGE)" ] && [ ! -f $(LOCALE)/$(NEW_LANGUAGE)/LC_MESSAGES/messages.po ]; then \
	  $(BIN)/pybabel --quiet init -i $(LOCALE)/messages.pot -d $(LOCALE) -l $(NEW_LANGUAGE); fi
	@$(BIN)/pybabel --quiet update --no-fuzzy-matching --ignore-obsolete -i $(LOCALE)/messages.pot -d $(LOCALE)

upgrade-deps:
	@$(MAKE) --no-print-directory lock UPGRADE=--upgrade

# The suite against the newest versions pyproject.toml allows, in a venv of its own (.venv-latest), so
# drift is seen on the day someone chooses to look, not on a newcomer's first `make test`.
test-latest: system-deps browser-deps differential-deps
	@test -x .venv-latest/bin/python || $(PYTHON) -m venv .venv-latest
	@echo "==> installing the newest allowed Python packages into .venv-latest"
	@.venv-latest/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@# requirements/build.in too: tests/test_release.py builds the wheel with this venv's build and setuptools.
	@.venv-latest/bin/python -m pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy eager -e '.[test]' -r requirements/build.in
	@.venv-latest/bin/python -m pip freeze --exclude-editable > .venv-latest/versions.txt
	@echo "==> versions that differ from the lock:"; \
	  grep -o '^[a-z0-9._-]*==[^ ;]*' requirements/dev.txt | sort > .venv-latest/locked.txt; \
	  tr 'A-Z_' 'a-z-' < .venv-latest/versions.txt | sort | comm -13 .venv-latest/locked.txt - || true
	@.venv-latest/bin/ruff check gateway backend_app devtools tests bench
	@.venv-latest/bin/mypy
	@.venv-latest/bin/python -m pytest

# The release in dist/: sdist and wheel (python -m build from the locked venv, no build isolation), the
# runtime lock beside them as openid_gateway-<version>-requirements.txt, SHA256SUMS (scripts/dist).
# docs/install.md installs exactly these files; tests/test_release.py does it in a fresh venv.
dist: venv
	@PYTHON=$(BIN)/python scripts/dist dist

# podman, runc and mmdebstrap: tests/test_container.py builds the image (Containerfile) from Debian's packages and runs it.
system-deps:
	@scripts/install-system-deps nginx chromium wrk openssl curl npm caddy redis-server systemd lemonldap-ng \
	  lemonldap-ng-fastcgi-server podman runc mmdebstrap apache2 libapache2-mod-auth-openidc

# axe-core (the browser tests' accessibility checks), pinned by tests/browser/package-lock.json.
browser-deps: tests/browser/node_modules/.package-lock.json

tests/browser/node_modules/.package-lock.json: tests/browser/package.json tests/browser/package-lock.json
	@echo "==> installing axe-core into tests/browser/node_modules"
	@cd tests/browser && npm ci --no-audit --no-fund --loglevel=error

# Express and method-override for the differential test's node app (tests/differential), pinned by its
# package-lock.json.
differential-deps: tests/differential/express/node_modules/.package-lock.json

tests/differential/express/node_modules/.package-lock.json: tests/differential/express/package.json \
		tests/differential/express/package-lock.json
	@echo "==> installing Express into tests/differential/express/node_modules"
	@cd tests/differential/express && npm ci --no-audit --no-fund --loglevel=error

lint: venv
	@echo "==> ruff"
	@$(BIN)/ruff check gateway backend_app devtools tests bench
	@echo "==> mypy --strict"
	@$(BIN)/mypy

# The quick loop: lint, types and the unit tests; no apt, no servers.
check: venv lint
	@echo "==> pytest (unit tests only; make test runs everything)"
	@$(BIN)/python -m pytest -q $(UNIT_TESTS)

# The unit and server tests on every Python >= 3.11 found (PATH, ~/.pyenv), each in .venv-3.X.
pythons:
	@scripts/test-pythons

test: system-deps venv browser-deps differential-deps lint
	@echo "==> pytest (includes a smoke run of the benchmark: tests/test_bench_smoke.py)"
	@$(BIN)/python -m pytest

# Hand-written security mutants (devtools/mutants.toml), each applied alone to a copy of the tree and the
# tests that guard it run; prints the kill rate per module. Not part of `make test`: several minutes.
mutate: venv
	@$(BIN)/python -m devtools.mutate

# `make demo INSTANCES=3 STORE=redis`: three gateway instances behind nginx on a Redis the demo starts.
INSTANCES ?= 1
STORE     ?= sqlite
# The demo needs the runtime packages only (devtools and the microblog import nothing else; the microblog's
# PyJWT is for its JWT mode, which the demo does not use): without a full .venv (`make venv`, `make test`)
# it makes .venv-demo from requirements/runtime.txt, without playwright, mypy, Django and the rest.
DEMO_VENV := $(if $(wildcard $(STAMP)),$(VENV),.venv-demo)

.venv-demo/.installed: requirements/runtime.txt scripts/install-venv
	@echo "==> installing the locked runtime packages into .venv-demo"
	@scripts/install-venv .venv-demo $(PYTHON) requirements/runtime.txt --run-from-clone
	@touch $@

demo: $(DEMO_VENV)/.installed
	@scripts/install-system-deps nginx $(if $(filter redis,$(STORE)),redis-server)
	@$(DEMO_VENV)/bin/python -m devtools.demo --mode $(MODE) --instances $(INSTANCES) --store $(STORE)

bench: system-deps venv
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-demo .venv-latest .venv-lock state test-output .pytest_cache .mypy_cache .ruff_cache dist build
