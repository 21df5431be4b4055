# Cutout: `make up` runs the service on a local LocalStack, `make test` runs every test.
# The venv runs the project's one Python (pyproject.toml's requires-python), Lambda's runtime.
PYTHON_VERSION := $(shell python3 -m localdev.python --version)
PYTHON ?= $(shell python3 -m localdev.python)
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := requirements.txt requirements-dev.txt localdev/requirements-build.txt pyproject.toml cli/pyproject.toml \
	layers/shared/requirements.txt layers/shared/pyproject.toml \
	$(wildcard functions/*/requirements.txt) $(wildcard functions/*/pyproject.toml)

.PHONY: test lint venv model up down synth clean

venv: $(VENV)/.installed-$(PYTHON_VERSION)

# A venv of another Python (e.g. from before a version change) is built again from scratch.
$(VENV)/.installed-$(PYTHON_VERSION): $(REQUIREMENTS)
	test "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$(PYTHON_VERSION)" \
		|| { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

model: venv
	$(BIN)/python -m localdev.fetch_model

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint model
	$(BIN)/python -m pytest

# The whole service on this host: LocalStack, the model, the CDK CLI, the deployed stack, the demo page.
up: venv
	$(BIN)/python -m localdev.stack up

down:
	python3 -m localdev.stack down

.PHONY: localstack-start localstack-stop

# LocalStack on the host (own Python 3.13 venv, 127.0.0.1:4566, state in .localstack/); Lambda
# handlers run with this project's venv.
localstack-start: venv
	python3 -m localdev.localstack_host start

localstack-stop:
	python3 -m localdev.localstack_host stop

clean:
	rm -rf $(VENV) .pytest_cache cdk.out

# The pinned CDK CLI (cdk, cdklocal) in node_modules/; its caches, jsii's and npm's stay under .local/.
synth: venv
	$(BIN)/python -m localdev.stack cdk synth --quiet
