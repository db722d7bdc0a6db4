# cop: `make run` serves it on http://127.0.0.1:5000/, `make test` runs every test.
# Needs GNU make and Python 3.11; everything else goes into .venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

TRANSLATIONS := cop/translations
CATALOGUES := $(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po)
COMPILED_CATALOGUES := $(CATALOGUES:.po=.mo)

.PHONY: install run test lint format messages bundle clean

## install: create .venv, install cop with its test tools, compile the translations
install: $(INSTALLED) $(COMPILED_CATALOGUES)

# Reinstall only when pyproject.toml changed since the last installation.
$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (python3.11 or python3)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,gevent]'
	touch $@

# Recompile a catalogue when its .po is newer than its .mo (the .mo files are not in git).
%.mo: %.po | $(INSTALLED)
	$(BIN)/pybabel compile -i $< -o $@

## run: migrate the database, load the demo community if it is empty, serve on HOST:PORT
run: install
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi demo --if-empty
	HOST=$(HOST) PORT=$(PORT) exec $(BIN)/python wsgi.py

## test: run the whole test suite (PYTEST_ARGS="-k server -x" to narrow it)
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

## lint: check style and formatting as CI does
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## format: fix import order and formatting in place
format: install
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

## messages: extract the interface strings and update the French catalogue
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --add-comments=Translators: \
		--ignore-dirs='.* ._ node_modules instance build' \
		-o $(TRANSLATIONS)/messages.pot .
	if [ -f $(TRANSLATIONS)/fr/LC_MESSAGES/messages.po ]; then \
		$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -l fr; \
	else \
		$(BIN)/pybabel init -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -l fr; \
	fi

## bundle: rebuild the live pages' script (static/src -> static/dist, committed) from the lock file
bundle:
	npm ci
	npm run build

## clean: remove the virtualenv, caches and compiled catalogues (keeps instance/, the data)
clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find cop tests -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -f $(COMPILED_CATALOGUES)
