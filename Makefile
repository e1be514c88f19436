# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs first.
VENV ?= .venv
PY := $(VENV)/bin/python
FLOORS_VENV ?= .venv-floors
HVU_DIR ?= $(or $(HVUAUDIT_HVU_DIR),../shared/data/hvu)
PACKAGES := hvucontracts hvuaudit trainer hvueval hvudemo
LINTED := $(PACKAGES) tests bench .ci

.PHONY: install test test-fast lint docs docs-figures floors demo bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,tensorboard,serve,frames,dev]'
	touch $@

install: $(VENV)/.installed

# Formatting, lint (line length 110), types, the import layers, and a CLI reference that matches the code.
lint: install
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/cog --check docs/cli.md

# The README's test command, and what CI runs: lint, then every test, on TEST_WORKERS processes
# (pytest-xdist; the suite took 9.0 min on one and 5.3 on two on the 2-core CI machine).
TEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS)

# For local work: the suite without the tests marked slow.
test-fast: install
	$(PY) -m pytest -q -m "not slow"

# docs/cli.md from the real --help texts, then the site (mkdocs, strict: a broken link fails).
docs: install
	$(VENV)/bin/cog -r docs/cli.md
	$(VENV)/bin/mkdocs build --strict --quiet

# The NCA figures of docs/nca.md, from the real validation annotations, in both clip modes, and the
# screenshot of docs/audit.md and the capture of docs/tui.md.
docs-figures: install
	rm -f $(VENV)/docs-figures.duckdb
	$(VENV)/bin/hvuaudit ingest $(HVU_DIR)/HVU_Val_V1.0.csv --categories $(HVU_DIR)/HVU_Tags_Categories_V1.0.csv \
	  --db $(VENV)/docs-figures.duckdb
	$(VENV)/bin/hvuaudit nca sweep --clips both --plot docs/img/nca_sweep_both_modes.png \
	  --db $(VENV)/docs-figures.duckdb > /dev/null
	$(VENV)/bin/hvuaudit nca matrix --clips both --plot docs/img/nca_matrix_both_modes.png \
	  --db $(VENV)/docs-figures.duckdb > /dev/null
	@# docs/audit.md's screenshot: the audit page of the validation file, as the browser test renders it
	HVUAUDIT_HVU_DIR=$(HVU_DIR) HVUAUDIT_TEST_ARTIFACTS=docs/img $(PY) -m pytest -q -p no:cacheprovider \
	  tests/core/test_audit.py -k real_browser
	@# docs/tui.md's capture: the clips screen with the frames of a clip, as its test draws it
	HVUAUDIT_TEST_ARTIFACTS=docs/img $(PY) -m pytest -q -p no:cacheprovider tests/tui/test_tui_frames.py \
	  -k clips_screen_shows

# The core against the declared floors of its dependencies, on the oldest supported Python: first
# `pip install .` alone (no extras: the CLI and every core module must load), then the test tools and
# the core, TUI, evaluator and demo-report suites (the tests that need torch or PyAV are not collected).
FLOORS_PYTHON ?= python3.11
# Three processes on two cores: these suites wait more than they compute (the TUI's pauses; 4.6 min of CPU in
# a 3.6 min run on two), so a third worker fills the waits
FLOORS_WORKERS ?= 3
floors:
	@# always fresh (a reused one may hold what `pip install .` alone would not), but only ever a venv
	@if [ -e "$(FLOORS_VENV)" ] && [ ! -f "$(FLOORS_VENV)/pyvenv.cfg" ]; then \
	  echo "error: $(FLOORS_VENV) exists and is not a virtual environment; refusing to delete it" >&2; exit 5; fi
	rm -rf $(FLOORS_VENV)
	$(FLOORS_PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install -q --upgrade pip
	python3 .ci/floor_constraints.py > $(FLOORS_VENV)/floors.txt
	$(FLOORS_VENV)/bin/python -m pip install -q -c $(FLOORS_VENV)/floors.txt -e .
	$(FLOORS_VENV)/bin/python .ci/floor_constraints.py --verify
	$(FLOORS_VENV)/bin/hvuaudit --help > /dev/null
	$(FLOORS_VENV)/bin/python .ci/floor_constraints.py --import-core
	$(FLOORS_VENV)/bin/python -m pip install -q -c $(FLOORS_VENV)/floors.txt -e '.[dev]'
	$(FLOORS_VENV)/bin/python -m pytest -q -n $(FLOORS_WORKERS) tests/core tests/tui tests/evaluator tests/demo \
	  --ignore tests/tui/test_tui_snapshots.py

# The audit on the real HVU validation annotations (when present), then the end-to-end video demo.
demo: install
	@if [ -f "$(HVU_DIR)/HVU_Val_V1.0.csv" ]; then \
	  $(VENV)/bin/hvuaudit ingest "$(HVU_DIR)/HVU_Val_V1.0.csv" --categories "$(HVU_DIR)/HVU_Tags_Categories_V1.0.csv" --db hvu_val.duckdb && \
	  $(VENV)/bin/hvuaudit stats --db hvu_val.duckdb && \
	  $(VENV)/bin/hvuaudit nca roles --threshold 1.0 --db hvu_val.duckdb --output tasks_hvu_val.json; \
	else echo "no HVU annotations in $(HVU_DIR): skipping the real-data audit (set HVUAUDIT_HVU_DIR)"; fi
	$(VENV)/bin/hvuaudit demo

bench: install
	$(PY) bench/store.py
	$(PY) bench/dcorr.py
	$(PY) bench/annotate_import.py

clean:
	rm -rf $(VENV) $(FLOORS_VENV) .pytest_cache .ruff_cache .mypy_cache site
