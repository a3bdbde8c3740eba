# The simulator (sim/iiot_sim): real node firmware in the MicroPython unix port.
SIM_ARGS ?= --nodes 2 --interval-ms 1000 --loss 0.1

sim: $(STAMP) ## run node2 + node1 firmware simulated (SIM_ARGS=...); prints the serial pty
	$(VENV)/bin/iiot-sim $(SIM_ARGS)

sim-test: $(STAMP) ## the simulator's tests (models, channel, 30 % loss link test on the firmware)
	$(VENV)/bin/pytest -q tests/sim

.PHONY: sim sim-test
