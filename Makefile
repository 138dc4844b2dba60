# Everything runs inside .venv, which the targets create by themselves. The editable
# install is the 'compat' kind (a path entry, no import hook): it starts faster.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench million soak fuzz cluster clean venv compile

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ml]' --config-settings editable_mode=compat
	touch $(STAMP)

# Byte-compile the package: an editable install does not, and under
# PYTHONDONTWRITEBYTECODE every command would compile its modules again.
compile: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m compileall -q localrepo migrations >/dev/null

demo: compile
	$(PY) scripts/demo.py

# Lint first: ruff (with its complexity limit) is part of what "the tests pass" means.
test: lint
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/vulture

# BENCH_FILES sets the scan benchmark's size (default 20,000; also run it at 100,000).
BENCH_FILES ?= 20000
bench: compile
	$(PY) benchmarks/scan.py --files $(BENCH_FILES)
	$(PY) benchmarks/sync.py
	$(PY) benchmarks/server.py
	$(PY) benchmarks/accuracy.py
	$(PY) benchmarks/watch.py

# A million images (benchmarks/million.py, docs/benchmarks.md): the scan, status and a
# 100-file change at 100,000 and 1,000,000 files. About 4 GB of disk and, on 2 cores,
# most of an hour; CI never runs it. MILLION_FILES sets the sizes.
MILLION_FILES ?= 100000,1000000
million: compile
	$(PY) benchmarks/million.py --files $(MILLION_FILES)

# The reliability soak (docs/reliability.md): the planner properties with 20,000 examples
# each, and SEEDS seeds of the multi-clone simulation (CI runs 1,600 examples and 50 seeds).
SEEDS ?= 1000
soak: $(STAMP)
	LOCALREPO_SOAK=1 $(PY) -m pytest -n 2 -q -p no:cacheprovider tests/sync/test_plan_properties.py
	LOCALREPO_SIM_SEEDS=$(SEEDS) $(PY) -m pytest -n 2 -q -p no:cacheprovider tests/sim/test_simulation.py

# The server fuzz suite (docs/reliability.md, "Server limits"), longer than in CI (25
# examples a test, 10 per OpenAPI operation): FUZZ_EXAMPLES each, OPENAPI_EXAMPLES per
# operation. Prints "fuzz: N examples, M requests, 0 answers 5xx".
FUZZ_EXAMPLES ?= 1000
OPENAPI_EXAMPLES ?= 100
fuzz: $(STAMP)
	LOCALREPO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LOCALREPO_OPENAPI_EXAMPLES=$(OPENAPI_EXAMPLES) \
		$(PY) -m pytest -n 2 -q -p no:cacheprovider tests/server/test_server_fuzz.py \
		tests/server/test_server_openapi.py tests/server/test_server_json_rules.py

# Several server processes on this machine (docs/server.md, "Running several processes"):
# PostgreSQL, 3 API processes behind a round-robin proxy, 2 training workers, 5 clones,
# the official SDK and trainings at once, an API process and a worker killed mid-run.
# Prints its counts; exits 1 if anything acknowledged was lost. CLUSTER_ARGS: e.g.
# --small (the CI test's scale), --s3 off, --keep DIR (keep the logs).
CLUSTER_ARGS ?=
cluster: compile
	$(PY) scripts/cluster.py $(CLUSTER_ARGS)

clean:
	rm -rf $(VENV) demo .bench
