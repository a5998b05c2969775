# payplat — every command a developer or CI needs. uv is the single source of dependencies;
# it is installed with pip when missing, so a machine needs only Python 3.11+ (and Node.js
# for `make deploy`).

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help uv install run test test-fast lint format synth deploy destroy bench clean

help:
	@echo "make run      start the local platform (moto + local gateway) on http://127.0.0.1:8000"
	@echo "make test     run the unit, integration, infra and end-to-end tests"
	@echo "make lint     ruff check, ruff format --check, mypy, the import rule (import-linter)"
	@echo "make synth    synthesize the CDK app into cdk.out (no Docker, no AWS credentials)"
	@echo "make deploy   deploy to the AWS account of your current credentials"
	@echo "make bench    print benchmark figures (not a gate)"

uv:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet uv || \
		$(PYTHON) -m pip install --quiet --user --break-system-packages uv

install: uv
	$(UV) sync --frozen

# Only the runtime and local groups: running the platform needs no CDK.
run: uv
	$(UV) run --frozen --inexact --no-default-groups --group local python -m infra.local

test: install
	$(UV) run --frozen pytest

test-fast: install
	$(UV) run --frozen pytest tests/unit

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy layers/core/payplat functions infra app.py sdk/src
	$(UV) run --frozen lint-imports

format: install
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

synth: install
	$(UV) run --frozen python app.py

deploy: install
	npx aws-cdk@latest deploy --require-approval broadening

destroy: install
	npx aws-cdk@latest destroy

bench: install
	$(UV) run --frozen pytest tests/bench -s -q -p no:cacheprovider

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
