# Two commands on a fresh machine: `make serve` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.sfumato-installed
TORCH  := torch==2.13.0
# Optional wheel index for torch, e.g. https://download.pytorch.org/whl/cpu for a CPU-only install.
TORCH_INDEX ?=

.PHONY: install serve test schema demo clean-demo

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-runs only when pyproject.toml changes; delete the stamp to force a reinstall.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet "pip>=23"
	$(PIP) install --quiet $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP)

serve: install
	$(VENV)/bin/sfumato serve $(ARGS)

# The benchmark peers (bench extra), which the tests run the benchmark's smoke mode with, and
# the model zoo (zoo extra: spandrel). Naming the pinned torch again keeps pip from replacing it
# with a newer build to suit the latest torchvision; it picks the torchvision made for this torch.
BENCH_STAMP := $(VENV)/.sfumato-bench-installed
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(PIP) install --quiet -e ".[test,bench,zoo]" $(TORCH) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	touch $(BENCH_STAMP)

# Test workers: one per core plus one, at most four (each holds torch and its own engines in
# memory). The extra worker runs while others wait on sockets, timers and child processes (a
# quarter of the suite's time on 2 cores: 62 s instead of 73 s); TEST_WORKERS=0: one process.
TEST_WORKERS ?= $(shell n=$$(( $$(nproc 2>/dev/null || echo 2) + 1 )); [ $$n -gt 4 ] && n=4; echo $$n)

# --no-loadscope-reorder: modules go out in collection order, heaviest first (tests/conftest.py),
# instead of xdist's most-tests-first, which left the one-test benchmark smoke runs for last.
test: install $(BENCH_STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder tests $(ARGS)

# The plug-ins' copy of the engine's op schemas (plugins/common/sfumato_link/ops_schema.json):
# rerun after changing an operation's parameters; tests/test_plugin_schema.py fails until then.
schema: install
	$(PY) tools/ops_schema.py

# IMAGE=path/to/picture.png to use your own picture; writes demo/before.png and demo/after.png.
demo: install
	$(VENV)/bin/sfumato demo --out demo $(if $(IMAGE),--image $(IMAGE))

clean-demo:
	rm -rf demo
