# The two commands: `make run` (serve on the embedded SQLite default) and `make test`.
# `make run HOST=0.0.0.0 PORT=8080` listens elsewhere.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PRINTHOOK_TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
export PRINTHOOK_TEST_DATABASE_URL

.PHONY: run test lint check bench lock clean

$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/printhook serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict app

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/webhook_load.py
	$(BIN)/python bench/sustained.py
	$(BIN)/python bench/drain.py

# Regenerate the lock after changing dependencies in pyproject.toml.
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml build-requirements.in --universal --python-version 3.11 \
		--generate-hashes --quiet -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml build-requirements.in --extra dev --universal \
		--python-version 3.11 --generate-hashes --quiet -o requirements-dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
