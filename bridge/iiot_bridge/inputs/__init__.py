"""Inputs: where lines come from (node2's serial port)."""
