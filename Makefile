# Cutout: `make up` runs the service on a local LocalStack, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := requirements.txt requirements-dev.txt layers/shared/requirements.txt $(wildcard functions/*/requirements.txt)

.PHONY: test venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

test: venv
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache cdk.out
