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

# the two lanes `make test` runs together (markers set in tests/conftest.py)
.PHONY: test-fast test-integration
test-fast: install
	$(VENV)/bin/pytest -q -m unit

test-integration: install
	$(VENV)/bin/pytest -q -m integration

lint: install
	$(VENV)/bin/ruff check app consumers db api tests
	$(VENV)/bin/ruff format --check app consumers db api tests

# mypy cannot follow the editable install's import hook, so it checks a tree of
# symlinks laid out as the installed `drainer` package.
typecheck: install
	rm -rf .typecheck && mkdir -p .typecheck/drainer
	ln -s $(CURDIR)/app/* .typecheck/drainer/
	ln -s $(CURDIR)/api $(CURDIR)/consumers $(CURDIR)/db .typecheck/drainer/
	$(VENV)/bin/mypy

demo: install
	$(VENV)/bin/drainer demo

bench: install
	$(VENV)/bin/drainer bench

clean:
	rm -rf $(VENV) .typecheck .mypy_cache .pytest_cache .ruff_cache
