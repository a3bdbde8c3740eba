# Control messages from the orchestrator or a test: JSON objects {"op": ..., ...}.
# Modules register a handler per op; a message for an op nobody handles yet is kept until
# a handler registers (models are created lazily).
import json

_handlers = {}
_deferred = []


def on(op, handler):
    _handlers[op] = handler
    keep = []
    for msg in _deferred:
        if msg.get("op") == op:
            handler(msg)
        else:
            keep.append(msg)
    _deferred[:] = keep


def dispatch(data):
    try:
        msg = json.loads(bytes(data))
    except ValueError:
        return
    handler = _handlers.get(msg.get("op"))
    if handler is None:
        _deferred.append(msg)
    else:
        handler(msg)
