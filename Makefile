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

demo: install
	HVUAUDIT_HVU_DIR=$(HVU_DIR) $(VENV)/bin/hvuaudit demo

bench: install
	$(PY) bench/store.py
	$(PY) bench/dcorr.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
