# Node firmware: the deploy trees (mpy-cross) measured on the board's own FAT, flashing a
# board with mpremote, and the frozen image route. Included by the main Makefile (VENV, PY,
# STAMP, BUILD); mk/micropython.mk gives the MicroPython it measures with (MP_BIN, MPLIB).
# What goes on each board is listed once, in nodeN/manifest.py (tools/fwmanifest.py reads
# it). docs/hardware.md ("Deploy", "Image") explains each step.

-include secrets.mk  # ignored by git: KEY=..., KEYS=1=<hex>,... for the flash targets

FW_NODES  := node1 node2
MPY_CROSS := $(VENV)/bin/mpy-cross
MPREMOTE  := $(VENV)/bin/mpremote
# Without line numbers the tree is ~8 % smaller; tracebacks still name file and function.
MPY_FLAGS ?= -X no-source-lines
# make firmware fails when a board's filesystem would keep less than this free.
FLASH_MIN_FREE_KB ?= 4
# Files the firmware writes in /flash at run time (one 512 B cluster reserved for each).
FW_STATE_node1 := fcnt0.dat fcnt1.dat downlink.json
FW_STATE_node2 := fcnt0.dat fcnt1.dat
# The FAT is written by a MicroPython unix port's oofatfs (the board's): the 32-bit build of
# mk/micropython.mk when there, else the PyPI one (the same FAT code; only the heap differs).
FW_FAT_MP = $(firstword $(wildcard $(MP_BIN)) $(VENV)/bin/micropython)
FW_FATIMAGE := tools/mp/fatimage.py

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
# Seconds to wait for the board to come back after a reset.
RESET_WAIT ?= 3
# A local mip index (make mip-index) instead of the public one: offline, and exactly the
# package files make firmware measured.
MIP_INDEX  ?=
# FROZEN=1: the board runs an image with the firmware frozen in (make image-nodeN): copy
# main.py and config.json only.
FROZEN     ?=

# $(call fw_config,node,default node id): the command writing build/nodeN-config.json from
# the make variables.
fw_config = $(PY) tools/make_config.py -o $(BUILD)/$(1)-config.json --node-id $(or $(NODE_ID),$(2)) \
  $(if $(filter node1,$(1)),--gateway-id $(GATEWAY_ID)) \
  $(if $(FREQ_KHZ),--freq-khz $(FREQ_KHZ)) $(if $(SF),--sf $(SF)) $(if $(BW),--bw $(BW)) \
  $(if $(POWER),--power $(POWER)) $(if $(INTERVAL),--interval $(INTERVAL)) \
  $(if $(DUTY_CYCLE),--duty-cycle $(DUTY_CYCLE)) $(if $(KEY),--key $(KEY)) \
  $(if $(KEYS),--keys $(KEYS))

# $(call fw_tree,node,default node id): the commands compiling the tree into $(BUILD)/node,
# measuring it on a FAT image of the board's geometry ($(BUILD)/node.img) and keeping
# node/package.json in step with node/manifest.py; false when the tree does not fit.
fw_tree = $(call fw_config,$(1),$(2)) && \
  $(PY) tools/fwtree.py $(1) --out $(BUILD)/$(1) --mpy-cross $(MPY_CROSS) \
    --micropython $(FW_FAT_MP) --image $(BUILD)/$(1).img --config $(BUILD)/$(1)-config.json \
    --lib-dir $(MPLIB) $(if $(wildcard $(MPLIB_SRC)),--mplib-src $(MPLIB_SRC)/..) \
    --state $(FW_STATE_$(1)) --min-free-kb $(FLASH_MIN_FREE_KB) -- $(MPY_FLAGS); \
  fit=$$?; $(PY) tools/fwmanifest.py package-json $(1)/manifest.py > $(BUILD)/$(1)-package.json && \
  { cmp -s $(BUILD)/$(1)-package.json $(1)/package.json || { \
    cp $(BUILD)/$(1)-package.json $(1)/package.json; \
    echo "$(1)/package.json updated from $(1)/manifest.py"; }; } && [ $$fit = 0 ]

# make micropython (the FAT's interpreter, micropython-lib's files), the fresh volume's figure.
define fw_prep
	@if [ -n "$(MP_TARBALL)" ]; then $(MAKE) --no-print-directory -s micropython; \
	else $(MAKE) --no-print-directory -s micropython || \
	  echo "WARNING: no vendored MicroPython source and no micropython-lib packages: the flash figures below leave out lib/" >&2; fi
	@mkdir -p $(BUILD) && $(FW_FAT_MP) $(FW_FATIMAGE) --fresh
endef

firmware: $(STAMP) ## build node1/node2 deploy trees (.mpy) and measure them on the board's FAT
	$(fw_prep)
	@ok=0; { $(call fw_tree,node1,1); } || ok=1; { $(call fw_tree,node2,2); } || ok=1; \
	  if [ $$ok != 0 ]; then echo "error: make firmware: a board's firmware does not fit its flash (above)" >&2; exit 1; fi

firmware-node1: $(STAMP) ## node1's tree only, measured (what flash-node1 needs)
	$(fw_prep)
	@$(call fw_tree,node1,1)

firmware-node2: $(STAMP) ## node2's tree only, measured (what flash-node2 needs)
	$(fw_prep)
	@$(call fw_tree,node2,2)

# The mpremote sequence of `make flash-nodeN`, over a board with or without a firmware:
# 1. tools/mp/flash_clean.py removes the old firmware's code (main.py first; boot.py, lib/
#    and data such as the frame counter stay), then a reset: the running firmware's
#    watchdog cannot reset the board mid-copy, and the copy never needs room for two
#    firmwares; 2. mip installs the manifest's pinned packages into /flash/lib; 3. the tree,
#    config.json, and main.py last (an interrupted copy leaves a board that boots to its REPL).
# $(call fw_flash,node,default node id)
fw_mip_index = $(if $(MIP_INDEX),--index $(MIP_INDEX))
fw_pins = $(PY) tools/fwmanifest.py requires $(1)/manifest.py
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
	@$(call fw_config,$(1),$(2))
	@echo "removing the old firmware's code (counters and data stay), then a reset"
	$(MPREMOTE) connect $(PORT) run tools/mp/flash_clean.py + reset
	@sleep $(RESET_WAIT)
	$(if $(FROZEN),,$(MPREMOTE) connect $(PORT) mip install $(fw_mip_index) $$($(call fw_pins,$(1))))
	$(MPREMOTE) connect $(PORT) $(if $(FROZEN),,cp -r $$(ls -d $(BUILD)/$(1)/* | grep -v '/main.py$$') : +) \
	  cp $(BUILD)/$(1)-config.json :config.json + cp $(1)/main.py :main.py + reset
	@echo "$(1) flashed; watch its console with: $(MPREMOTE) connect $(PORT) repl"
endef

# With FROZEN=1 the board's image holds the firmware: no tree to build or measure.
flash-node1: $(if $(FROZEN),$(STAMP),firmware-node1) ## flash node1: make flash-node1 PORT=/dev/ttyACM0 [NODE_ID= FREQ_KHZ= KEY= ...]
	$(call fw_flash,node1,1)

flash-node2: $(if $(FROZEN),$(STAMP),firmware-node2) ## flash node2 (the gateway): make flash-node2 PORT=/dev/ttyACM1 [KEYS=1=<hex>]
	$(call fw_flash,node2,2)

mip-index: micropython ## a local mip index of the pinned packages (make flash-nodeN MIP_INDEX=build/mip-index)
	@$(PY) tools/mipindex.py --out $(BUILD)/mip-index --lib-dir $(MPLIB) \
	  --mplib-src $(MPLIB_SRC)/.. $(addsuffix /manifest.py,$(FW_NODES))

# The production route: the firmware and its micropython-lib packages frozen into a custom
# NUCLEO_F446RE image, built from a MicroPython checkout (its stm32 port, arm-none-eabi-gcc).
IMAGE_BOARD ?= NUCLEO_F446RE
IMAGE_JOBS  ?= 2
ARM_CC      ?= arm-none-eabi-gcc
# MicroPython's own builds see none of this project's make variables (a BUILD= given to
# make would otherwise reach them through MAKEFLAGS).
fw_submake = env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(MAKE)
# Passed to the stm32 build: the port's manifest.py is node's (its include()s keep the
# port's default frozen modules); MPY_LIB_DIR= selects another micropython-lib checkout.
fw_image_args = -C $(MPY_DIR)/ports/stm32 BOARD=$(IMAGE_BOARD) \
  FROZEN_MANIFEST=$(abspath $(1)/manifest.py) BUILD=$(abspath $(BUILD)/image-$(1)) \
  $(if $(MPY_LIB_DIR),MPY_LIB_DIR=$(abspath $(MPY_LIB_DIR)))

# $(call fw_image,node)
define fw_image
	@if [ -z "$(MPY_DIR)" ]; then \
	  echo "error: make image-$(1) builds MicroPython's stm32 port: give a MicroPython checkout," >&2; \
	  echo "  make image-$(1) MPY_DIR=<a clone of the micropython repository> (docs/hardware.md, Image)" >&2; exit 2; fi
	@if [ ! -f "$(MPY_DIR)/ports/stm32/Makefile" ] || [ ! -d "$(MPY_DIR)/ports/stm32/boards/$(IMAGE_BOARD)" ]; then \
	  echo "error: $(MPY_DIR) is not a MicroPython checkout with ports/stm32/boards/$(IMAGE_BOARD)" >&2; exit 2; fi
	@command -v $(ARM_CC) >/dev/null || { \
	  echo "error: the stm32 build needs $(ARM_CC) (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi)" >&2; exit 2; }
	$(fw_submake) $(call fw_image_args,$(1)) submodules
	$(PY) tools/fwmanifest.py check-pins $(1)/manifest.py --mplib $(or $(MPY_LIB_DIR),$(MPY_DIR)/lib/micropython-lib)
	$(fw_submake) -C $(MPY_DIR)/mpy-cross
	$(fw_submake) $(call fw_image_args,$(1)) -j$(IMAGE_JOBS)
	cp $(BUILD)/image-$(1)/firmware.hex $(BUILD)/$(IMAGE_BOARD)-$(1).hex
	cp $(BUILD)/image-$(1)/firmware.dfu $(BUILD)/$(IMAGE_BOARD)-$(1).dfu
	@echo "$(BUILD)/$(IMAGE_BOARD)-$(1).hex: flash it like the official image (docs/hardware.md), then"
	@echo "  make flash-$(1) PORT=/dev/ttyACM0 FROZEN=1   (copies main.py and config.json only)"
endef

image-node1: $(STAMP) ## node1 firmware frozen into a NUCLEO_F446RE image: make image-node1 MPY_DIR=<MicroPython checkout>
	$(call fw_image,node1)

image-node2: $(STAMP) ## node2 firmware frozen into a NUCLEO_F446RE image: make image-node2 MPY_DIR=<MicroPython checkout>
	$(call fw_image,node2)

# The heap effect of freezing, measured on the vendored 32-bit unix port: each manifest
# frozen into ports/unix/build-32-frozen-nodeN, its modules imported frozen and from .mpy.
frozen-heap: micropython ## measure what freezing the firmware saves in heap (32-bit unix port)
	@set -e; for n in $(FW_NODES); do \
	  $(PY) tools/frozenheap.py $$n --mp-src $(MP_SRC) --mpy-cross $(MPY_CROSS) \
	    --lib-dir $(MPLIB) --work $(BUILD)/frozen $(if $(MP_FROZEN),--port-manifest $(abspath $(MP_FROZEN))) \
	    $(addprefix --make-arg ,$(MP_MAKE_ARGS)) -- $(MPY_FLAGS); done

.PHONY: firmware firmware-node1 firmware-node2 flash-node1 flash-node2 mip-index image-node1 image-node2 frozen-heap
