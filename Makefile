# The front door. Every target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= secrets/config.json
DEMO_VENV := .venv-demo
DEMO_BIN  := $(DEMO_VENV)/bin

.PHONY: help install test test-pyairbyte soak bench demo demo-install sync probe image manifest-only catalogue catalogue-test cdk-venv clean

# Every target, with its usual time on our 2-core machines (the first run builds a venv), measured
# 2026-12-01 on a shared machine (load average 6 to 11): an idle one is faster.
help:
	@echo "make demo          - sample conversations from the API emulator, synced with PyAirbyte into DuckDB"
	@echo "                     (2 to 5 min the first time, to build .venv-demo; 40 s after that)"
	@echo "make sync CONFIG=secrets/config.json [WAREHOUSE=postgresql://user@host:port/db]"
	@echo "                   - the same sync against the real API, into DuckDB or PostgreSQL (as long as the sync)"
	@echo "make test          - unit, integration and acceptance tests, and the PyAirbyte tests: what CI runs"
	@echo "                     (the main suite alone took 16 min under load; less on an idle machine)"
	@echo "make test-pyairbyte - every stream through PyAirbyte into DuckDB and into PostgreSQL (1.5 to 2 min)"
	@echo "make install       - .venv with the connector and the test tools (1 to 1.5 min the first time, 15 s after)"
	@echo "make demo-install  - .venv-demo with PyAirbyte and the connector (2 to 5 min the first time, 30 s after)"
	@echo "make probe CONFIG=secrets/config.json - what the real API answers (shapes, no values): .cache/probe.json (seconds)"
	@echo "make bench         - throughput, requests, concurrency, memory and start-up figures into BENCHMARKS.md"
	@echo "                     (long: it prints each section as it starts, and the last full run's time first)"
	@echo "make soak          - the long reliability suite (faults, kills, load); writes RELIABILITY.md (an hour or more)"
	@echo "make image         - build airbyte/source-smstools:dev with podman (minutes: the base image first)"
	@echo "make manifest-only - build/manifest-only/ (the catalogue's form) and build/builder/manifest.yaml"
	@echo "                     (the Builder edition for Airbyte Cloud, no custom code) (seconds)"
	@echo "make catalogue [PR=12345] [SDM_DIGEST=sha256:...]"
	@echo "                   - build/catalogue/: what a pull request to airbytehq/airbyte adds (seconds)"
	@echo "make catalogue-test - that tree's standard tests (airbyte-cdk connector test) against the emulator,"
	@echo "                     and its unit tests of the shipped components.py (15 s)"
	@echo "make cdk-venv      - .cache/cdk-7.39.1 with airbyte-cdk alone, for the runtime tests (2 min the first time)"
	@echo "make clean         - remove the venvs and build files (seconds; .cache/ with the DuckDB file is kept)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Dependencies change rarely: installed once per change of setup.py.
$(VENV)/.deps: setup.py | $(BIN)/python
	@echo "== $(VENV): installing the connector's dependencies and the test tools (1 to 1.5 min, once per change of setup.py)"
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q '.[tests]'
	touch $@

# The package itself is installed as users get it (not editable), every time, so the tests see
# the manifest and schemas exactly as they ship.
install: $(VENV)/.deps
	flock $(VENV)/.install.lock $(BIN)/pip install -q --no-deps --force-reinstall .

# Three workers (pytest-xdist) on our two cores: many tests wait on the emulator's latency or on a
# process, so a third keeps the cores busy. PYTHONHASHSEED=0: the property tests' fixed seed gives
# the same examples on every run. Each test file runs whole on one worker (loadfile):
# the reliability suite computes its cases once in module fixtures and writes its figures once,
# the acceptance suite serves one emulator for its module, the image tests build the image once.
# The demo venv (PyAirbyte) and the airbyte-cdk-only venv are built beside the suite, not after it
# (mostly downloads; the suite's own runtime tests wait for the second, flock), and the PyAirbyte
# tests then run beside it too; their output is printed after the suite's.
# make catalogue-test runs beside the suite too (15 s, mostly one core).
test: install
	@mkdir -p .cache
	@$(BIN)/python -m release.catalogue_test > .cache/test-catalogue.log 2>&1 & catalogue=$$!; \
	{ $(MAKE) --no-print-directory demo-install cdk-venv && $(MAKE) --no-print-directory test-pyairbyte; } > .cache/test-side.log 2>&1 & side=$$!; \
	PYTHONHASHSEED=0 $(BIN)/python -m pytest -n 3 --dist loadfile --durations=15; status=$$?; \
	wait $$catalogue; catalogue_status=$$?; wait $$side; side_status=$$?; \
	echo "== beside the suite: make catalogue-test"; cat .cache/test-catalogue.log; \
	echo "== beside the suite: the demo and airbyte-cdk venvs, then make test-pyairbyte"; cat .cache/test-side.log; \
	[ $$status -eq 0 ] && [ $$catalogue_status -eq 0 ] && [ $$side_status -eq 0 ]

# airbyte-cdk alone, as Airbyte's other runtimes have it (integration_tests/runtimes): the generic
# source-declarative-manifest runtime, the Connector Builder's test read. One venv per CDK version.
CDK_VERSION := $(shell sed -n 's/.*"airbyte-cdk==\([^"]*\)".*/\1/p' setup.py)
CDK_VENV := .cache/cdk-$(CDK_VERSION)
$(CDK_VENV)/.deps:
	mkdir -p .cache
	flock .cache/.cdk-venv.lock sh -c '[ -f $@ ] || { $(PYTHON) -m venv $(CDK_VENV) && $(CDK_VENV)/bin/pip install -q airbyte-cdk==$(CDK_VERSION) && touch $@; }'

cdk-venv: $(CDK_VENV)/.deps

# Every stream through PyAirbyte into DuckDB, as users run it (column types, no type warning), and
# into a PostgreSQL server the test starts itself (Debian's postgresql package; strings as sent); the
# manifest-only directory through PyAirbyte's manifest executor. It needs PyAirbyte, so it runs in
# the demo venv: the first time, building it adds 1 to 2.5 minutes.
test-pyairbyte: demo-install
	$(DEMO_BIN)/python -m pytest demo/test_pyairbyte.py demo/test_postgres.py demo/test_pyairbyte_manifest.py

# RELIABILITY.md is written from the figures of the last fast run and of this soak, pass or fail
# and the paging's property test with its long profile (5,000 examples each, a new seed every run);
# the tables of the paging's cases and of the lists' cases (issue 21) measured again
soak: install
	$(BIN)/python -m pytest -m soak; status=$$?; \
	HYPOTHESIS_PROFILE=soak $(BIN)/python -m pytest -q unit_tests/test_paging_properties.py integration_tests/test_failures.py || status=1; \
	$(BIN)/python -m integration_tests.reliability.paging > /dev/null || status=1; \
	$(BIN)/python -m integration_tests.reliability.lists > /dev/null || status=1; \
	$(BIN)/python -m integration_tests.reliability.report; exit $$status

# The releases read side by side with this one (bench/bench.py): the CPU and requests a change
# costs are measured in the same run, not against figures of another day. Each release's commit:
# 0.1.0, the release before the first bench; 0.2.0, the one the conversation paging of issue 15 is
# measured against (its CPU within 5%); 0.3.0, the one issues 21 and 22 are measured against (a
# well-behaved API's requests and CPU, and the scale section's syncs of 20,000 phones).
REV_0.1.0 := 144fefb
REV_0.2.0 := 7638661
REV_0.3.0 := 6052cac
RELEASES := $(foreach v,0.1.0 0.2.0 0.3.0,.cache/bench-$(v)/.deps)
.cache/bench-%/.deps:
	@echo "== .cache/bench-$*: installing release $* beside this one, for side-by-side figures (about 1 min, once)"
	$(PYTHON) -m venv .cache/bench-$*
	.cache/bench-$*/bin/pip install -q "git+file://$(CURDIR)@$(REV_$*)"
	touch $@

bench: install $(RELEASES)
	$(BIN)/python bench/bench.py

# PyAirbyte is heavy: it gets a venv of its own, so that `make test` (and CI) stays light.
$(DEMO_VENV)/.deps: setup.py demo/requirements.txt
	@echo "== $(DEMO_VENV): installing PyAirbyte, DuckDB and the connector (2 to 5 min, once per change of demo/requirements.txt)"
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_BIN)/pip install -q --upgrade pip
	$(DEMO_BIN)/pip install -q -r demo/requirements.txt .
	touch $@

# The connector runs as that venv's `source-smstools`, reinstalled each time like `make install`.
demo-install: $(DEMO_VENV)/.deps
	flock $(DEMO_VENV)/.install.lock $(DEMO_BIN)/pip install -q --no-deps --force-reinstall .

demo: demo-install
	$(DEMO_BIN)/python demo/demo.py --emulator

# WAREHOUSE: a PostgreSQL URL (postgresql://user:password@host:port/database) for PyAirbyte's
# Postgres cache; empty, the DuckDB file .cache/smstools.duckdb
WAREHOUSE ?=
# (not echoed: the URL may hold a password; PGPASSWORD works too)
sync: demo-install
	@echo "$(DEMO_BIN)/python demo/demo.py --config $(CONFIG)$(if $(WAREHOUSE), --warehouse <WAREHOUSE>)"
	@$(DEMO_BIN)/python demo/demo.py --config $(CONFIG) $(if $(WAREHOUSE),--warehouse '$(WAREHOUSE)')

# The shapes of the real API's answers (no phone, text or credential): the report to attach to an issue.
probe: install
	$(BIN)/source-smstools-probe --config $(CONFIG) --out .cache/probe.json

image:
	bash integration_tests/image/image.sh build

# The catalogue's manifest-only form and the Builder edition (release/manifest_only.py). The base
# image's digest can only be read from Docker Hub: SDM_DIGEST=sha256:... pins it.
SDM_DIGEST ?=
manifest-only: install
	$(BIN)/python release/manifest_only.py --out build $(if $(SDM_DIGEST),--digest $(SDM_DIGEST))

# What a pull request to airbytehq/airbyte adds (release/catalogue.py): PR=<number> puts the pull
# request in the changelog, SDM_DIGEST pins the base image as for manifest-only.
PR ?=
catalogue: install
	$(BIN)/python -m release.catalogue --out build $(if $(SDM_DIGEST),--digest $(SDM_DIGEST)) $(if $(PR),--pr $(PR))

# The tree built afresh and tested as Airbyte's CI tests it, the emulator in place of the test
# account (release/catalogue_test.py)
catalogue-test: install
	$(BIN)/python -m release.catalogue_test

clean:
	rm -rf $(VENV) $(DEMO_VENV) build *.egg-info .pytest_cache
