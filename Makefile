# podnet: `make demo` and `make test` work on a fresh Debian machine as root.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := python3 python3-venv python3-pip nftables iproute2 iperf3 procps
PYTEST_ARGS ?=

.PHONY: all debs venv test lint unit datapath suites demo bench clean

all: test

# Debian packages podnet needs (only the missing ones are installed).
debs:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml | debs
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: debs $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

unit: venv
	$(VENV)/bin/pytest -q -m "not datapath" $(PYTEST_ARGS)

suites: venv
	$(PY) ../shared/suites/nca/run.py --podnet "$(abspath $(VENV))/bin/podnet" ../shared/suites/nca

test: venv lint
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

demo: venv
	$(VENV)/bin/podnet analyze -f examples/shop -o table

bench: venv
	$(PY) bench/analyze_bench.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
