# Two commands on a fresh machine:
#   make sample   set up .venv, then load the bundled sample dumps into warehouse/
#   make test     set up .venv and headless Chromium (for tests/test_ui.py), then run the tests
# Set-up installs exactly what uv.lock pins (uv itself comes from PyPI into .venv).
# Chromium is a system package: installed with apt-get when missing (as root, else with sudo).

PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9

.PHONY: setup chromium sample test clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv sync --frozen --compile-bytecode --python $(VENV)/bin/python
	touch $@

sample: setup
	$(VENV)/bin/gleaner run --raw data/raw --warehouse warehouse

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	@chromium --version 2>/dev/null

test: setup chromium
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) warehouse/lake.sqlite* warehouse/lake warehouse/.gleaner* warehouse/parquet warehouse/search warehouse/data_docs
