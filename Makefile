# Two commands: `make run` serves the marketplace with demo data; `make test` runs the suite on both databases.
# Python 3.11 or newer; PYTHON picks the interpreter that creates .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed
LANGUAGES := ko en

.PHONY: run test install messages bench clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: make PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/market db upgrade
	$(BIN)/market demo
	HOST=$(HOST) PORT=$(PORT) exec $(BIN)/market serve

test: install
	bash tests/run.sh

# Extract every translatable string into market/messages.pot, then merge it into each language's catalog.
messages: install
	$(BIN)/pybabel -q extract -F babel.cfg -k N_ --ignore-dirs=".* __pycache__" --no-wrap --sort-by-file \
		--project=market --copyright-holder="The marketplace authors" -o market/messages.pot .
	@for lang in $(LANGUAGES); do \
		$(BIN)/pybabel -q update --init-missing --no-wrap --no-fuzzy-matching -i market/messages.pot -d market/locale -l $$lang; \
	done

# Every benchmark at its default size (N=100000, SEED=20261123; about 25 minutes on 2 cores): search, catalogue,
# service, pages, signing, each beside its floor. BENCH=catalogue,service picks some; see bench/README.md.
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var/market.db*
