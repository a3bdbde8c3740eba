# Console events: one line each, "@" then a JSON object (docs/hardware.md, "Console events").
#
# They never start with "{", so the bridge skips them as console output, and the simulator
# reads them to know which readings were generated, sent, acknowledged, queued or dropped.
import json


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
