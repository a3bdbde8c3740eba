# `make demo`: the whole pipeline with simulated boards (sim/iiot_sim/demo.py).
# DEMO_SECONDS=N runs N seconds and prints the delivery summary; without it, Ctrl-C stops it.

DEMO_SECONDS ?=
DEMO_DEBS := mosquitto victoria-metrics

# The broker and the database come from Debian; install them once if they are missing.
demo-deps:
	@missing=""; for p in $(DEMO_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo=sudo; \
	  else echo "error: need the Debian packages$$missing (run as root, or install them)" >&2; exit 1; fi; \
	  echo "installing$$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: demo-deps $(STAMP) ## simulated boards -> bridge -> MQTT + database, live view (DEMO_SECONDS=N: summary)
	@DEMO_SECONDS=$(DEMO_SECONDS) $(PY) -m iiot_sim.demo

.PHONY: demo demo-deps
