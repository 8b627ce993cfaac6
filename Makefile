# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv here and install the project into it once; later runs reuse it.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Synthetic motion videos -> prepared for training -> train x3d_tiny from scratch (CPU) -> test the best checkpoint.
demo: $(STAMP)
	$(VENV)/bin/videoml data synth --out data/synth --videos-per-class 100
	$(VENV)/bin/videoml data prepare data/synth data/synth-prepared --short-side 88
	$(VENV)/bin/videoml fit --config configs/synth_x3d_tiny.yaml

# pytest exits 5 when it collects no test: an empty selection is not a failure. The slowest tests are listed at the
# end (the suite's time on CI is budgeted). TEST_WORKERS processes run whole test files side by side (pytest-xdist;
# each gets its share of the cores' threads, see tests/conftest.py); TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS) || [ $$? -eq 5 ]

clean:
	rm -rf $(VENV) data/synth data/synth-prepared data/synth-shards runs
