# Simulated hardware behind the `machine` and `lora` stand-ins (MicroPython side).
# The package name starts with an underscore so it never collides with firmware modules.
