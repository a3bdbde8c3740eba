# ruff: noqa: F821  (metadata, module, package, require, include, options: the reader's)
# node1 (sensor node): the one list of what goes on the board (docs/hardware.md, "Deploy").
#
# MicroPython manifest syntax. Read by tools/fwmanifest.py for `make firmware` (the .mpy
# deploy tree, measured on the board's FAT) and `make flash-node1` (mip packages, the
# package.json check), and by MicroPython's own tools for `make image-node1` (a frozen
# image). main.py is not listed: it always stays on the filesystem, as source.
#
# Editing: a node1/ module is module("name.py"), a shared/ one
# module("name.py", base_path="../shared"); iiot_codec files are picked up by themselves.
# Then `make firmware` (the flash figure; it also brings package.json up to date).
import os

metadata(description="node1 sensor node firmware", version="0.1.0")

# An image keeps what the port freezes by default (stm32: asyncio, dht, onewire).
options.defaults(port_manifest="$(PORT_DIR)/boards/manifest.py")
if options.port_manifest:
    include(options.port_manifest)

module("sensor_node.py")
module("bme680.py")
module("display.py")

module("board.py", base_path="../shared")
module("config.py", base_path="../shared")
module("console.py", base_path="../shared")
module("fcounter.py", base_path="../shared")
module("link.py", base_path="../shared")
module("oled.py", base_path="../shared")
module("radio.py", base_path="../shared")
module("sfqueue.py", base_path="../shared")
module("sht3x.py", base_path="../shared")

# The codec without its host-only modules (_host.py, values.py), its serial-line half
# (node1 never writes serial lines), the uplink decoder and the duplicate rule (node1 only
# encodes readings and decodes ACKs); the codec loads each submodule on first use.
codec = [f for f in os.listdir("../shared/iiot_codec") if f.endswith(".py")]
codec = [
    f for f in codec if f not in ("_host.py", "values.py", "line.py", "decode.py", "counter.py")
]
package("iiot_codec", files=sorted(codec), base_path="../shared")

# micropython-lib, pinned to the versions tested here (the vendored micropython-lib). mip
# installs them in this order: lora, the base package both lora drivers bring along, comes
# last so its files are those of its own pin. An image freezes MPY_DIR's micropython-lib;
# `make image-node1` refuses one whose versions differ from these.
require("lora-sync", version="0.1.1")
require("lora-sx127x", version="0.1.2")
require("ssd1306", version="0.1.0")
require("lora", version="0.2.0")
