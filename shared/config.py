# config.json on the board: node id, radio settings, interval, keys (docs/hardware.md,
# "Configuration"). Missing keys take the defaults; a bad value is reported on the console
# and its default is used, so a typo never stops a node from reporting.
#
# The table of settings (names, defaults, ranges) lives in the codec package, shared with
# the host tools and the bridge. Settings a node received over the air (ACK options) are
# kept in downlink.json and win over config.json; the file is written only when a value
# changes, so the flash sees one write per change.
import json
import sys
from binascii import unhexlify

from console import log

PATH = "config.json"
DOWNLINK_PATH = "downlink.json"


def parse_key(text):
    """16-byte key from 32 hex digits; None for None; ValueError otherwise."""
    if text is None:
        return None
    key = unhexlify(text)  # ValueError for anything but hex
    if len(key) != 16:
        raise ValueError
    return key


def _ok(value, kind, lo, hi):
    if kind == "k":
        return True
    if kind[-1] == "?":
        if value is None:
            return True
        kind = kind[0]
    if kind == "b":
        return isinstance(value, bool)
    if kind == "s":
        return str(value) in lo
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind == "i" and not isinstance(value, int):
        return False
    return lo <= value <= hi


def _merge(raw, table, where):
    out = {}
    if not isinstance(raw, dict):
        log("config: %s is not an object, ignored" % where)
        raw = {}
    for name, default, kind, lo, hi in table:
        value = raw.get(name, default)
        if not _ok(value, kind, lo, hi):
            log("config: bad %s%s=%r, using %r" % (where, name, value, default))
            value = default
        out[name] = value
    return out


def _read(path, missing):
    try:
        with open(path) as f:
            raw = json.load(f)
        if isinstance(raw, dict):
            return raw
        log("config: %s is not an object, ignored" % path)
    except OSError:
        if missing:
            log(missing)
    except ValueError as e:
        log("config: %s is not valid JSON (%s), ignored" % (path, e))
    return {}


def load(path=PATH, downlink_path=DOWNLINK_PATH):
    """The merged configuration dict. Keys come back as bytes in "key" and "keys";
    "downlink" maps ACK option tags to (setting name, low, high) for the node, which writes
    what it was sent to "downlink_path" as a JSON object."""
    # The tables are needed only here: loaded now and dropped after, so the board's heap
    # does not keep them (the package would keep the submodule as an attribute too).
    import iiot_codec
    from iiot_codec.settings import DOWNLINK, RADIO_SETTINGS, SETTINGS

    del sys.modules["iiot_codec.settings"], iiot_codec.settings
    raw = _read(path, "config: no %s, using defaults" % path)
    sent = _read(downlink_path, None)
    downlink = {}
    for tag, name in DOWNLINK:
        for row in SETTINGS:
            if row[0] == name:
                downlink[tag] = (name, row[3], row[4])
        if name in sent:  # checked like every setting, below
            raw[name] = sent[name]
            if name == "interval_s":
                raw["interval_ms"] = None  # a sent interval replaces a configured one
    cfg = _merge(raw, SETTINGS, "")
    cfg["downlink"] = downlink
    cfg["downlink_path"] = downlink_path
    radio = cfg["radio"] = _merge(raw.get("radio") or {}, RADIO_SETTINGS, "radio.")
    # As the driver's lora_cfg (radio.py): every setting explicit; bw a string; CRC on (the
    # driver assumes it, not a setting one may turn off); explicit headers.
    radio["bw"] = str(radio["bw"])
    radio["crc_en"] = True
    radio["implicit_header"] = False
    try:
        cfg["key"] = parse_key(cfg["key"])
    except Exception:
        log("config: bad key, sending without MIC")
        cfg["key"] = None
    keys = {}
    raw_keys = cfg["keys"] if isinstance(cfg["keys"], dict) else {}
    for node in raw_keys:
        if not node.isdigit():
            log("config: bad node id %r in keys, ignored" % node)
            continue
        try:
            keys[int(node)] = parse_key(raw_keys[node])
        except Exception:
            # Refusing that node's frames is safer than accepting them unauthenticated.
            log("config: bad key for node %s: its frames are refused" % node)
            keys[int(node)] = b"\x00" * 15
    cfg["keys"] = keys
    return cfg
