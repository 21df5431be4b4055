# Cutout: `make up` runs the service on a local LocalStack, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := requirements.txt requirements-dev.txt layers/shared/requirements.txt $(wildcard functions/*/requirements.txt)

.PHONY: test venv model up down synth clean

venv: $(VENV)/.installed

$(VENV)/.installed: $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

model: venv
	$(BIN)/python scripts/fetch_model.py

test: venv model
	$(BIN)/python -m pytest

# The whole service on this host: LocalStack, the model, the CDK CLI, the deployed stack, the demo page.
up: venv
	$(BIN)/python scripts/local_stack.py up

down:
	$(PYTHON) scripts/local_stack.py down

.PHONY: localstack-start localstack-stop

# LocalStack on the host (own Python 3.13 venv, 127.0.0.1:4566, state in .localstack/); Lambda
# handlers run with this project's venv.
localstack-start: venv
	$(PYTHON) localstack/runner.py start

localstack-stop:
	$(PYTHON) localstack/runner.py stop

clean:
	rm -rf $(VENV) .pytest_cache cdk.out

# The pinned CDK CLI (cdk, cdklocal) in node_modules/; its caches, jsii's and npm's stay under .local/.
synth: venv
	$(BIN)/python scripts/local_stack.py cdk synth --quiet
