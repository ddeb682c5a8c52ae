# Set-up, tests and demo of the LFR van appliance. Everything the project needs is installed from here:
# Debian packages with apt-get (through sudo when not root), Python packages from setup.cfg into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# python3-venv makes .venv on a fresh Debian; systemd-analyze and udevadm check the units and udev rules;
# chromium runs the browser tests.
APT_PACKAGES := python3 python3-venv systemd udev chromium
LFR_TEST_DATA ?= ../shared/data
export LFR_TEST_DATA

.PHONY: all deps venv test test-fast demo lint models bench compare-deps compare check-wheels arm64-check clean

all: test

deps: $(VENV)/.deps
$(VENV)/.deps: Makefile
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@mkdir -p $(VENV) && touch $@

venv: $(VENV)/.installed
# constraints.txt pins every package (the same set CI and scripts/install.sh use on the van).
$(VENV)/.installed: setup.cfg setup.py pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --constraint constraints.txt -e '.[test]'
	touch $@

test: deps venv
	$(BIN)/python -m pytest -q

# The edit loop: everything not marked slow (browser, demo, eval, wake, wheel, full-data and multi-process
# runs). CI and the final check before landing run `make test`.
test-fast: deps venv
	$(BIN)/python -m pytest -q -m "not slow"

lint: venv
	$(BIN)/ruff check firmware tests scripts
	$(BIN)/mypy firmware

demo: deps venv
	$(BIN)/lfr demo $(DEMO_ARGS)

models: venv
	$(BIN)/pip install -q --constraint constraints.txt -e '.[build]'
	$(BIN)/python scripts/build_models.py

# The optional peer comparison (face_recognition on dlib-bin); see the [compare] extra in setup.cfg.
compare-deps: venv
	$(BIN)/pip install -q -e '.[compare]'
	$(BIN)/pip install -q --no-deps face_recognition==1.3.0

# Every pin has an aarch64 wheel for CPython 3.11 and 3.13 (about a minute; PyPI).
check-wheels: venv
	scripts/check_wheels.sh

# The firmware on an emulated Pi 5 core against x86 (about 20 minutes; root; docs/appliance.md).
arm64-check: venv
	scripts/arm64_check.sh

compare: compare-deps
	$(BIN)/python scripts/compare_dlib.py --plot docs/img/roc_ours_vs_dlib.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache
