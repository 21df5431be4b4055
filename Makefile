# Cutout: `make up` runs the service on a local LocalStack, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := requirements.txt requirements-dev.txt layers/shared/requirements.txt $(wildcard functions/*/requirements.txt)

.PHONY: test venv model up down clean

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
CDK_ENV := HOME=$(CURDIR)/.local/home CDK_HOME=$(CURDIR)/.local/cdk XDG_CACHE_HOME=$(CURDIR)/.local/cache \
	npm_config_cache=$(CURDIR)/.local/npm-cache CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true \
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
CDK := $(CDK_ENV) node_modules/.bin/cdk

cdk-cli: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	$(CDK_ENV) npm ci --no-audit --no-fund
	touch $@

synth: venv cdk-cli
	$(CDK) synth --quiet
