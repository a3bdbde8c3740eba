# `make demo`: the whole pipeline with simulated boards (sim/iiot_sim/demo.py).
# Variables (empty: the defaults of `python -m iiot_sim.demo --help`):
#   NODES=N          node1 instances (sensor nodes) besides the gateway node2
#   LOSS=P           radio packet loss, 0..1
#   INTERVAL_MS=MS   the nodes' report interval
#   KEEP=1           keep the run directory (logs, serial capture, broker and database data)
#   DEMO_SECONDS=T   run T (90, 90s, 2m), then print the delivery summary; else until Ctrl-C

DEMO_SECONDS ?=
NODES ?=
LOSS ?=
INTERVAL_MS ?=
KEEP ?=
DEMO_DEBS := mosquitto victoria-metrics
DEMO_ARGS = $(if $(NODES),--nodes '$(NODES)') $(if $(LOSS),--loss '$(LOSS)') \
  $(if $(INTERVAL_MS),--interval-ms '$(INTERVAL_MS)') $(if $(filter-out 0 no false,$(KEEP)),--keep) \
  $(if $(DEMO_SECONDS),--seconds '$(DEMO_SECONDS)')

# The broker and the database come from Debian; install them once if they are missing.
demo-deps:
	$(call install_debs,$(DEMO_DEBS))

demo: demo-deps $(STAMP) ## simulated boards -> bridge -> MQTT + database, live view; NODES= LOSS= INTERVAL_MS= KEEP=1 DEMO_SECONDS=2m
	@$(PY) -m iiot_sim.demo $(DEMO_ARGS)

.PHONY: demo demo-deps
