# The bridge (bridge/iiot_bridge): its tests and lint. Included by the main Makefile.

bridge-test: $(STAMP) ## run the bridge's tests (real Mosquitto, VictoriaMetrics and a pty)
	$(VENV)/bin/pytest -q tests/bridge

bridge-lint: $(STAMP) ## ruff on the bridge, its tests and the local server launchers
	$(VENV)/bin/ruff check bridge/iiot_bridge tests/bridge sim/iiot_sim/localservers.py
	$(VENV)/bin/ruff format --check bridge/iiot_bridge tests/bridge sim/iiot_sim/localservers.py

.PHONY: bridge-test bridge-lint
