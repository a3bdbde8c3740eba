# `make demo`: the whole pipeline with simulated boards (sim/iiot_sim/demo.py).
# DEMO_SECONDS=N runs N seconds and prints the delivery summary; without it, Ctrl-C stops it.

DEMO_SECONDS ?=
DEMO_DEBS := mosquitto victoria-metrics

# The broker and the database come from Debian; install them once if they are missing.
demo-deps:
	$(call install_debs,$(DEMO_DEBS))

demo: demo-deps $(STAMP) ## simulated boards -> bridge -> MQTT + database, live view (DEMO_SECONDS=N: summary)
	@DEMO_SECONDS=$(DEMO_SECONDS) $(PY) -m iiot_sim.demo

.PHONY: demo demo-deps
