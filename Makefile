# gradwalk: `make run` serves the app, `make test` runs the whole suite.
# Both set everything up first, on a fresh Debian/Ubuntu machine, and are quick when nothing changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages the app and its tests use: the torchviz baseline of `make bench` (graphviz),
# browser tests and teacher exports (chromium, CJK fonts), the scale-out storage tests (postgresql),
# the sandbox's cgroup v2 check in a VM (qemu-system-x86).
APT_PACKAGES := graphviz chromium fonts-noto-cjk postgresql qemu-system-x86
APT_COMMANDS := /usr/bin/dot /usr/bin/chromium /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc /usr/bin/qemu-system-x86_64

# The tracer's per-node work in C++ (app/tracer/native.cpp), built against the installed torch.
NATIVE := app/tracer/_native$(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))" 2>/dev/null || echo .so)

.PHONY: setup system python native frontend dist run test lint test-py test-js bench schema clean vm-kernel

setup: system python native frontend

# apt-get only when something is missing, so a ready machine does not touch the network.
# Also, only where missing: Node and npm (the front-end build), Debian's venv module for $(PYTHON),
# and a C++ compiler with Python's headers (app/tracer/native.cpp).
system:
	@missing=""; packages="$(APT_PACKAGES)"; for f in $(APT_COMMANDS); do [ -e $$f ] || missing=1; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1; \
	command -v npm >/dev/null 2>&1 || { missing=1; packages="$$packages nodejs npm"; }; \
	$(PYTHON) -c "import ensurepip" >/dev/null 2>&1 || { missing=1; packages="$$packages python3-venv"; }; \
	command -v g++ >/dev/null 2>&1 || { missing=1; packages="$$packages g++"; }; \
	$(PYTHON) -c "import os, sysconfig; assert os.path.exists(sysconfig.get_paths()['include'] + '/Python.h')" >/dev/null 2>&1 \
	  || { missing=1; packages="$$packages python3-dev"; }; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages: $$packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$packages; \
	fi

# Debian's own kernel and busybox for the sandbox's cgroup v2 check (tests/sandbox/test_cgroup_v2.py):
# unpacked into .cache/vm (the kernel and the few modules the VM loads), never installed.
VM_CACHE := .cache/vm
VM_MODULES := virtio virtio_ring virtio_pci virtio_pci_legacy_dev virtio_pci_modern_dev fscache netfs 9pnet 9pnet_virtio 9p overlay

vm-kernel: $(VM_CACHE)/.fetched

$(VM_CACHE)/.fetched:
	rm -rf $(VM_CACHE) && mkdir -p $(VM_CACHE)/deb
	cd $(VM_CACHE)/deb && { apt-get download -q linux-image-amd64 busybox-static 2>/dev/null \
	  || { apt-get update -q && apt-get download -q linux-image-amd64 busybox-static; }; } \
	  && apt-get download -q $$(dpkg-deb -f linux-image-amd64_*.deb Depends | cut -d' ' -f1)
	dpkg-deb -x $$(ls $(VM_CACHE)/deb/linux-image-[0-9]*.deb) $(VM_CACHE)/kernel
	dpkg-deb -x $$(ls $(VM_CACHE)/deb/busybox-static_*.deb) $(VM_CACHE)/busybox
	find $(VM_CACHE)/kernel/lib/modules -name '*.ko' $(foreach m,$(VM_MODULES),! -name $(m).ko) -delete
	rm -rf $(VM_CACHE)/deb
	touch $@

python: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

native: $(NATIVE)

$(NATIVE): app/tracer/native.cpp scripts/build_native.py $(VENV)/.installed
	$(BIN)/python scripts/build_native.py

frontend: static/dist/.built

static/dist/.built: frontend/package.json $(wildcard frontend/package-lock.json frontend/*.mjs frontend/*.js) $(wildcard static/js/*.js static/css/*.css)
	@if [ -f frontend/package.json ] && grep -q '"build"' frontend/package.json; then \
	  cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build; \
	fi
	mkdir -p static/dist && touch $@

# The wheel (dist/gradwalk-*.whl): the package with the front end bundled, so installing it needs no
# Node. Pure Python: the tracer's C++ part stays out (see pyproject.toml). build/ is setuptools' own
# staging, removed first so that a file deleted from app/ does not linger in the next wheel.
dist: python frontend
	rm -rf build dist/gradwalk-*.whl
	$(BIN)/pip wheel -q --disable-pip-version-check --no-deps -w dist .
	rm -rf build

run: setup
	$(BIN)/gradwalk serve --host $(HOST) --port $(PORT)

test: setup vm-kernel lint test-py test-js

# ruff (rules and the 130-column format in pyproject.toml) on the whole tree, mypy on app/: a few
# seconds once their caches (.ruff_cache, .mypy_cache) are warm.
lint: python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/check_sizes.py  # modules <= 400 lines, functions <= 60
	@# every ignore in app/ says why after its code (ruff and mypy ask only for the code)
	@! grep -rnE '# (type: ignore\[[^]]*\]|noqa: [A-Z0-9, ]+)\s*$$' app --include='*.py' || { echo "an ignore without its reason (above)"; exit 1; }

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
	rm -rf $(VENV) frontend/node_modules static/dist $(NATIVE) dist build $(VM_CACHE)
