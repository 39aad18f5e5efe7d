# podnet: `make demo` and `make test` work on a fresh Debian machine as root.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := python3 python3-venv python3-pip nftables iproute2 iperf3 procps dnsutils dnsperf dnsmasq-base conntrack curl nginx wrk openssl chromium
PYTEST_ARGS ?=

.PHONY: all debs venv test lint unit datapath suites demo bench bench-live screenshots clean

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

# podnet's bytecode, compiled ahead: with PYTHONDONTWRITEBYTECODE set (as this machine's
# shells do), a module without a current .pyc is compiled again at every start of every
# command, ~50 ms of `podnet --help` (issue 8 point 4). Cheap when nothing changed.
venv: debs $(VENV)/.installed
	@$(PY) -m compileall -q src >/dev/null

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy src

unit: venv
	$(VENV)/bin/pytest -q -m "not datapath" $(PYTEST_ARGS)

suites: venv
	$(PY) ../shared/suites/nca/run.py --podnet "$(abspath $(VENV))/bin/podnet" ../shared/suites/nca

test: venv lint
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# The example application: what the manifests allow (static), then the same cluster built
# for real, probed with real packets against the engine's expectations, and torn down.
DEMO_CLUSTER ?= demo
demo: venv
	$(VENV)/bin/podnet analyze -f examples/shop --ports 8080/TCP,5432/TCP
	$(VENV)/bin/podnet explain -f examples/shop --from 'shop/frontend-*' --to shop/db-0 --port 5432/TCP
	@set -e; trap '$(VENV)/bin/podnet down --cluster $(DEMO_CLUSTER)' EXIT; \
	  $(VENV)/bin/podnet up -f examples/shop --cluster $(DEMO_CLUSTER) --replace; \
	  $(VENV)/bin/podnet get pods -A -o wide --cluster $(DEMO_CLUSTER); \
	  $(VENV)/bin/podnet probe --cluster $(DEMO_CLUSTER); \
	  $(VENV)/bin/podnet get networkpolicies -A --cluster $(DEMO_CLUSTER); \
	  $(VENV)/bin/podnet get services -A --cluster $(DEMO_CLUSTER); \
	  $(VENV)/bin/podnet probe --via service --cluster $(DEMO_CLUSTER); \
	  lb=$$($(VENV)/bin/podnet get services frontend -n shop --cluster $(DEMO_CLUSTER) | awk 'NR==2{print $$4}'); \
	  echo "# the internet client, through the frontend's LoadBalancer address $$lb:"; \
	  $(VENV)/bin/podnet curl --cluster $(DEMO_CLUSTER) http://$$lb/; echo; \
	  $(VENV)/bin/podnet get ingress -n shop --cluster $(DEMO_CLUSTER); \
	  echo "# the internet client, by name through the ingress (nginx in ingress-nginx) to the frontend:"; \
	  $(VENV)/bin/podnet curl --cluster $(DEMO_CLUSTER) http://shop.example.com/; echo; \
	  echo "# shop/db-0 resolves api.shop through cluster DNS; its egress policy rejects the request:"; \
	  ! $(VENV)/bin/podnet curl --cluster $(DEMO_CLUSTER) --from shop/db-0 --max-time 3 http://api.shop:8080/

bench: venv
	$(PY) bench/analyze_bench.py

# docs/img/*.png, taken by the browser tests that check what they show (docs/dashboard.md).
screenshots: venv
	PODNET_SCREENSHOTS=$(abspath docs/img) $(VENV)/bin/pytest -q -m browser \
	  tests/test_report_browser.py tests/test_dashboard_live.py

# Benchmarks of the live network (root): up/down, iperf3, policy sync, probes.
bench-live: venv
	$(PY) bench/up_bench.py
	$(PY) bench/iperf_bench.py
	$(PY) bench/policy_bench.py
	$(PY) bench/probe_bench.py
	$(PY) bench/dns_bench.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
