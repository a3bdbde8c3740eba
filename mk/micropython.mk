# `make micropython`: the MicroPython the firmware tests, the simulator and the benchmarks run
# on, and micropython-lib's real drivers as the board has them in /flash/lib.
# Included by the main Makefile (VENV, PY, STAMP, install_debs come from it).
#
# With the vendored source (MP_VENDOR, ../shared/vendor by default): a 32-bit unix port, whose
# objects are the board's size, built once into build/micropython, and the micropython-lib
# packages the boards' manifests require (node1/manifest.py, node2/manifest.py) compiled with
# mpy-cross into build/mplib/lib exactly as `mpremote mip install` lays them out. Without it
# (a fresh clone elsewhere): the PyPI unix port (64-bit: heap figures are not the board's)
# and the same packages fetched with the unix port's mip at the manifests' pinned versions.
# Both live in MP_BUILD (build/, whatever BUILD a caller gives: a shared tool, like .venv).

MP_VENDOR  ?= ../shared/vendor
MP_BUILD   ?= build
MP_TARBALL := $(firstword $(wildcard $(MP_VENDOR)/micropython-*.tar.xz))
MP_SRC     := $(MP_BUILD)/micropython
MP_BIN     := $(MP_SRC)/ports/unix/build-32/micropython
MPLIB      := $(MP_BUILD)/mplib/lib
MPLIB_SRC  := $(MP_SRC)/lib/micropython-lib/micropython
MP_DEBS    := gcc-multilib
MP_MANIFESTS := node1/manifest.py node2/manifest.py
# package@version in mip's install order, from the manifests (evaluated only when used).
MPLIB_PINS = $(shell for m in $(MP_MANIFESTS); do $(PY) tools/fwmanifest.py requires $$m; done | awk '!seen[$$0]++')

# The unix port without the features that need more libraries (FFI, BTREE, SSL), forced
# to 32 bits; git must not describe the project's own checkout as MicroPython's version.
MP_MAKE_ARGS := VARIANT=standard BUILD=build-32 CFLAGS_EXTRA=-m32 LDFLAGS_EXTRA=-m32 \
  MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 MICROPY_SSL_MBEDTLS=0 MICROPY_SSL_AXTLS=0
# The simulator's hardware models frozen in (sim/iiot_sim/mp/manifest.py), so they cost the
# firmware's heap no code; the binary is rebuilt when they change.
MP_FROZEN  := sim/iiot_sim/mp/manifest.py
MP_FROZEN_SOURCES := $(MP_FROZEN) $(wildcard sim/iiot_sim/mp/_simhw/*.py)

ifneq ($(MP_TARBALL),)

micropython: $(MP_BIN) $(MP_BUILD)/mplib/.built ## 32-bit MicroPython unix port and micropython-lib's drivers (build/)

$(MP_SRC)/.unpacked: $(MP_TARBALL)
	@mkdir -p $(MP_BUILD)
	@echo "unpacking $(notdir $<) into $(MP_SRC)"
	tar xJf $< -C $(MP_BUILD)
	@echo $(notdir $<) > $@

$(MP_BIN): $(MP_SRC)/.unpacked $(MP_FROZEN_SOURCES)
	$(call install_debs,$(MP_DEBS))
	@echo "building the 32-bit MicroPython unix port (about half a minute)"
	GIT_CEILING_DIRECTORIES=$(abspath $(MP_BUILD)) $(MAKE) -s -C $(MP_SRC)/mpy-cross -j2 BUILD=build
	GIT_CEILING_DIRECTORIES=$(abspath $(MP_BUILD)) $(MAKE) -s -C $(MP_SRC)/ports/unix -j2 \
	  $(MP_MAKE_ARGS) FROZEN_MANIFEST=$(abspath $(MP_FROZEN))
	@$@ -c "import sys; assert sys.maxsize == 2**31 - 1, 'not a 32-bit build'"
	@touch $@

# Each file the manifests' packages install (tools/fwmanifest.py evaluates micropython-lib's
# own manifests), tagged with its package's version as micropython-lib's index build does
# and compiled with the manifest's optimisation level to the path mip installs it under;
# the new tree replaces the old one whole (tests may be reading it).
$(MP_BUILD)/mplib/.built: $(MP_SRC)/.unpacked $(MP_MANIFESTS) | $(STAMP)
	@set -e; new=$(MP_BUILD)/mplib/lib.new; tmp=$(MP_BUILD)/mplib/src; rm -rf $$new $$tmp; \
	mkdir -p $(MP_BUILD)/mplib; \
	for m in $(MP_MANIFESTS); do \
	  $(PY) tools/fwmanifest.py libs $$m --mplib $(MPLIB_SRC)/..; done | sort -u -k2,2 > $(MP_BUILD)/mplib/files; \
	while read -r src target ver opt; do \
	  tagged=$$tmp/$$target; mkdir -p $$(dirname $$tagged) $$(dirname $$new/$$target); \
	  { cat $$src; printf "\n\n__version__ = '%s'\n" "$$ver"; } > $$tagged; \
	  $(VENV)/bin/mpy-cross $$([ "$$opt" = - ] || echo -O$$opt) -s $$target \
	    -o $$new/$${target%.py}.mpy $$tagged; \
	done < $(MP_BUILD)/mplib/files; \
	[ -s $(MP_BUILD)/mplib/files ] || { echo "error: the manifests require no micropython-lib package" >&2; exit 1; }; \
	rm -rf $$tmp $(MPLIB).old; \
	if [ -d $(MPLIB) ]; then mv $(MPLIB) $(MPLIB).old; fi; mv $$new $(MPLIB); rm -rf $(MPLIB).old
	@cd $(MPLIB) && find . -name '*.mpy' | sort | while read -r f; do printf '  %-24s %5d B\n' $${f#./} $$(stat -c %s $$f); done
	@touch $@

else

micropython: $(STAMP) ## 32-bit MicroPython unix port and micropython-lib's drivers (build/)
	@echo "note: no $(MP_VENDOR)/micropython-*.tar.xz: using the PyPI MicroPython (64-bit, heap figures about 1.4x the board's) and micropython-lib from its package index"
	@set -e; pins="$(MPLIB_PINS)"; stamp=$(MP_BUILD)/mplib/.mip; \
	if [ "$$(cat $$stamp 2>/dev/null)" != "$$pins" ]; then \
	  rm -rf $(MPLIB); mkdir -p $(MPLIB); \
	  $(VENV)/bin/micropython -m mip install --target $(MPLIB) $$pins | grep -v '^Exists' || true; \
	  if [ ! -f $(MPLIB)/lora/__init__.mpy ] || [ ! -f $(MPLIB)/ssd1306.mpy ] || \
	     find $(MPLIB) -name '*.py' | grep -q .; then \
	    echo "error: could not install micropython-lib ($$pins) into $(MPLIB):" \
	      "no vendored source and no package index; put the MicroPython tarball in $(MP_VENDOR)" >&2; \
	    exit 1; fi; \
	  echo "$$pins" > $$stamp; \
	fi

endif

.PHONY: micropython
