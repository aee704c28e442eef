# firewatch: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OUT := out

.PHONY: install demo test lint pytest browser prometheus compose bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,rocksdb]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	bash scripts/demo.sh

test: lint pytest

lint: install
	$(VENV)/bin/ruff check firewatch tests benchmarks
	$(VENV)/bin/ruff format --check firewatch tests benchmarks
	$(VENV)/bin/mypy

pytest: install browser prometheus compose
	$(PY) -m pytest

browser:  # Debian's chromium for the dashboard's browser test (installed when missing, as root)
	bash scripts/browser.sh

prometheus:  # Debian's prometheus and promtool for the metrics and alert-rule tests (as root)
	bash scripts/prometheus.sh

compose:  # Debian's docker-compose to validate docker/compose.yaml (no engine needed; as root)
	bash scripts/compose.sh

bench: install
	$(PY) benchmarks/bench_geofence.py
	$(PY) benchmarks/bench_validate.py
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_linkage.py
	$(PY) benchmarks/bench_stream.py

clean:
	-bash scripts/kafka.sh stop 2>/dev/null
	-$(PY) -m firewatch redis stop 2>/dev/null
	rm -rf $(VENV) $(OUT) var .pytest_cache .mypy_cache .ruff_cache
