"""Outputs: each sink is one module here that defines ``PLUGIN`` (a SinkPlugin: its
settings group, when it is on, how to build it). ``SINK_MODULES`` lists them in order."""

from __future__ import annotations

import functools
import importlib

from .base import Context, SinkPlugin

SINK_MODULES = ("mqtt", "influx", "webhook")

__all__ = ["SINK_MODULES", "Context", "SinkPlugin", "plugins"]


@functools.cache
def plugins() -> tuple[SinkPlugin, ...]:
    """Every sink the bridge knows, in SINK_MODULES order."""
    found = []
    for module in SINK_MODULES:
        plugin = importlib.import_module(f"{__name__}.{module}").PLUGIN
        if not isinstance(plugin, SinkPlugin):
            raise TypeError(f"{module}.PLUGIN is not a SinkPlugin")
        found.append(plugin)
    return tuple(found)
