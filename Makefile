VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install test lint typecheck demo bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,embedded,otlp]'
	touch $@

install: $(VENV)/.installed

test: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check app consumers db api tests
	$(VENV)/bin/ruff format --check app consumers db api tests

typecheck: install
	$(VENV)/bin/mypy

demo: install
	$(VENV)/bin/drainer demo

bench: install
	$(VENV)/bin/drainer bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
