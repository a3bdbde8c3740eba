# Deployment: the compose stack (Mosquitto, InfluxDB 2, Grafana), the bridge on the host and
# the generated Grafana dashboards. Included by the main Makefile (VENV, PY, STAMP come from it).

ENV_FILE ?= .env
# Serial port for `make bridge`; "auto" lets the bridge find node2 itself.
PORT ?= auto

# Runs compose as `docker compose` (v2 plugin) or, failing that, `docker-compose` (v1).
# Decided when a recipe runs, so targets that need no Docker work without it. COMPOSE set in
# the environment or on the command line wins.
COMPOSE ?=
compose = set -e; \
	if [ -n "$(COMPOSE)" ]; then c="$(COMPOSE)"; \
	elif docker compose version >/dev/null 2>&1; then c="docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then c="docker-compose"; \
	else echo "error: neither 'docker compose' nor 'docker-compose' is installed;" \
	  "install Docker Engine with the compose plugin (docs/operations.md)" >&2; exit 1; fi; \
	$$c

# python3 from the system: `make up` must work before (and without) the project's virtualenv.
dotenv: ## create .env with random secrets when missing (or add variables new in .env.example)
	@python3 deploy/envgen.py --env $(ENV_FILE) --example .env.example

up: dotenv ## start Mosquitto, InfluxDB and Grafana in Docker (creates .env first)
	@$(compose) up -d
	@port=$$(sed -n 's/^GRAFANA_PORT=//p' $(ENV_FILE)); \
	  echo "Grafana: http://localhost:$${port:-3000} (password: GRAFANA_ADMIN_PASSWORD in $(ENV_FILE))"

down: ## stop the compose stack, bridge and demo included (data volumes are kept)
	@$(compose) --profile bridge --profile demo down

logs: ## follow the compose stack's logs
	@$(compose) --profile bridge --profile demo logs -f --tail=100

demo-docker: dotenv ## Docker variant of the demo: the stack plus simulator and bridge, live Grafana
	@$(compose) --profile demo up -d --build

bridge: $(STAMP) ## run the bridge on this host with .env's settings: make bridge [PORT=/dev/ttyACM0]
	@set -a; if [ -f "$(ENV_FILE)" ]; then . "$(abspath $(ENV_FILE))"; fi; set +a; \
	  exec $(VENV)/bin/iiot-bridge --serial $(PORT)

dashboards: $(STAMP) ## regenerate Grafana dashboards and alert rules (deploy/dashboards/generate.py)
	$(PY) deploy/dashboards/generate.py

.PHONY: dotenv up down logs demo-docker bridge dashboards
