# gradwalk: `make run` serves the app, `make test` runs the whole suite.
# Both set everything up first, on a fresh Debian/Ubuntu machine, and are quick when nothing changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages the app and its tests use: the torchviz baseline of `make bench` (graphviz),
# browser tests and teacher exports (chromium, CJK fonts), the scale-out storage tests (postgresql).
APT_PACKAGES := graphviz chromium fonts-noto-cjk postgresql
APT_COMMANDS := /usr/bin/dot /usr/bin/chromium /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

.PHONY: setup system python frontend run test test-py test-js bench schema clean

setup: system python frontend

# apt-get only when something is missing, so a ready machine does not touch the network.
# Also, only where missing: Node and npm (the front-end build), and Debian's venv module for $(PYTHON).
system:
	@missing=""; packages="$(APT_PACKAGES)"; for f in $(APT_COMMANDS); do [ -e $$f ] || missing=1; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1; \
	command -v npm >/dev/null 2>&1 || { missing=1; packages="$$packages nodejs npm"; }; \
	$(PYTHON) -c "import ensurepip" >/dev/null 2>&1 || { missing=1; packages="$$packages python3-venv"; }; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages: $$packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$packages; \
	fi

python: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

frontend: static/dist/.built

static/dist/.built: frontend/package.json $(wildcard frontend/package-lock.json frontend/*.mjs frontend/*.js) $(wildcard static/js/*.js static/css/*.css)
	@if [ -f frontend/package.json ] && grep -q '"build"' frontend/package.json; then \
	  cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build; \
	fi
	mkdir -p static/dist && touch $@

run: setup
	$(BIN)/gradwalk serve --host $(HOST) --port $(PORT)

test: setup test-py test-js

test-py:
	CI=$${CI:-} $(BIN)/python -m pytest

test-js:
	@if ls tests/js/*.test.mjs >/dev/null 2>&1; then node --test tests/js/; fi

schema: python
	$(BIN)/python -m app.schema > docs/trace.schema.json

bench: setup
	$(BIN)/python scripts/bench_trace.py
	$(BIN)/python scripts/bench_page.py
	$(BIN)/python scripts/bench_sandbox.py
	$(BIN)/python scripts/bench_api.py

clean:
	rm -rf $(VENV) frontend/node_modules static/dist
