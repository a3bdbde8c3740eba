# ruff: noqa: F821  (metadata, module, package, require, include, options: the reader's)
# node2 (gateway): the one list of what goes on the board (docs/hardware.md, "Deploy").
#
# MicroPython manifest syntax. Read by tools/fwmanifest.py for `make firmware` (the .mpy
# deploy tree, measured on the board's FAT) and `make flash-node2` (mip packages, the
# package.json check), and by MicroPython's own tools for `make image-node2` (a frozen
# image). main.py is not listed: it always stays on the filesystem, as source.
#
# Editing: a node2/ module is module("name.py"), a shared/ one
# module("name.py", base_path="../shared"); iiot_codec files are picked up by themselves.
# Then `make firmware` (the flash figure; it also brings package.json up to date).
import os

metadata(description="node2 gateway firmware", version="0.1.0")

# An image keeps what the port freezes by default (stm32: asyncio, dht, onewire).
options.defaults(port_manifest="$(PORT_DIR)/boards/manifest.py")
if options.port_manifest:
    include(options.port_manifest)

module("gateway_node.py")
module("display.py")
module("serialring.py")

module("board.py", base_path="../shared")
module("config.py", base_path="../shared")
module("console.py", base_path="../shared")
module("fcounter.py", base_path="../shared")
module("gateway.py", base_path="../shared")
module("oled.py", base_path="../shared")
module("radio.py", base_path="../shared")
module("sht3x.py", base_path="../shared")

# The codec without its host-only modules (_host.py, values.py); node2 writes the serial
# lines, so line.py stays. The codec loads each submodule on first use.
codec = [f for f in os.listdir("../shared/iiot_codec") if f.endswith(".py")]
codec = [f for f in codec if f not in ("_host.py", "values.py")]
package("iiot_codec", files=sorted(codec), base_path="../shared")

# micropython-lib, pinned to the versions tested here (the vendored micropython-lib). mip
# installs them in this order: lora, the base package both lora drivers bring along, comes
# last so its files are those of its own pin. An image freezes MPY_DIR's micropython-lib;
# `make image-node2` refuses one whose versions differ from these.
require("lora-sync", version="0.1.1")
require("lora-sx127x", version="0.1.2")
require("ssd1306", version="0.1.0")
require("lora", version="0.2.0")
