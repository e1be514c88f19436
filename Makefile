# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs first.
VENV ?= .venv
PY := $(VENV)/bin/python
HVU_DIR ?= $(or $(HVUAUDIT_HVU_DIR),../shared/data/hvu)

.PHONY: install test lint demo bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check hvuaudit trainer tests bench

test: lint
	$(PY) -m pytest -q

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
	rm -rf $(VENV) .pytest_cache .ruff_cache
