# Console events: one line each, "@" then a JSON object (docs/hardware.md, "Console events").
#
# They never start with "{", so the bridge skips them as console output, and the simulator
# reads them to know which readings were generated, sent, acknowledged, queued or dropped.
# Also the one count of MemoryErrors a node survived (its STATS memory_errors).
import json
import time

_oom = [0, 0]  # MemoryErrors survived, ticks_ms of the last console line about them


def event(ev, node, **fields):
    parts = ['@{"ev":"', ev, '","node":', str(node)]
    for name in fields:
        parts.append(',"%s":%s' % (name, json.dumps(fields[name])))
    parts.append("}")
    print("".join(parts))


def log(text):
    # Plain console text for humans; never starts with "{" (that would look like a frame line).
    if text.startswith("{"):
        text = " " + text
    print(text)


def oom(where):
    """A MemoryError was caught and survived: counted, and said on the console at most once
    a second (a repeating one must not flood the serial line)."""
    _oom[0] += 1
    now = time.ticks_ms()
    if time.ticks_diff(now, _oom[1]) >= 1000:
        _oom[1] = now
        print(where, "out of memory", _oom[0])


def oom_count():
    return _oom[0]
