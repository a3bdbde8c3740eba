# Simulated hardware behind the `machine` stand-in (MicroPython side): buses, pins, the
# SX1276 radio at its registers, the I2C devices.
# The package name starts with an underscore so it never collides with firmware modules.
