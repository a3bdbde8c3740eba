# config.json on the board: node id, radio settings, interval, keys (docs/hardware.md,
# "Configuration"). Missing keys take the defaults; a bad value is reported on the console
# and its default is used, so a typo never stops a node from reporting.
import json

from console import log

PATH = "config.json"

# name, default, kind, low, high. Kinds: "i" integer, "n" number, "i?"/"n?" the same or
# null, "b" boolean, "s" one of the strings in low, "k" key(s), checked when parsed.
SETTINGS = (
    ("node_id", 1, "i", 1, 255),
    ("gateway_id", 2, "i", 0, 255),
    ("interval_s", 10, "n", 1, 86400),
    ("interval_ms", None, "i?", 50, 86400000),
    ("key", None, "k", 0, 0),
    ("keys", {}, "k", 0, 0),
    ("duty_cycle_pct", None, "n?", 0.001, 100),
    ("max_retries", 3, "i", 0, 10),
    ("stats_interval_s", 60, "n", 1, 86400),
    ("queue_len", 360, "i", 1, 2000),
    # firmware additions (docs/hardware.md, "Configuration")
    ("ack_turnaround_ms", 150, "i", 0, 10000),
    ("fcnt_reserve", 1024, "i", 1, 16384),
    ("wdt_ms", 16000, "i", 1000, 32000),
    ("serial_ring", 128, "i", 1, 1000),
    ("resend_ms", 3000, "i", 100, 600000),
    ("radio_retry_s", 30, "n", 1, 3600),
    ("bme680_addr", 0x77, "i", 0x76, 0x77),
    ("display", True, "b", 0, 0),
)
RADIO_SETTINGS = (
    ("freq_khz", 915000, "n", 137000, 1020000),
    ("sf", 7, "i", 7, 12),
    (
        "bw",
        "125",
        "s",
        ("7.8", "10.4", "15.6", "20.8", "31.25", "41.7", "62.5", "125", "250", "500"),
        0,
    ),
    ("coding_rate", 5, "i", 5, 8),
    # The driver maps 20 dBm on PA_BOOST to about 10 dBm: stay at 17 or below.
    ("output_power", 14, "i", -4, 17),
    ("preamble_len", 12, "i", 6, 65535),
    ("crc_en", True, "b", 0, 0),
    ("syncword", 0x12, "i", 0, 255),
    ("tx_ant", "PA_BOOST", "s", ("PA_BOOST", "RFO"), 0),
)


def parse_key(text):
    """16-byte key from 32 hex digits; None for None; ValueError otherwise."""
    if text is None:
        return None
    if not isinstance(text, str) or len(text) != 32:
        raise ValueError("a key is 32 hex digits")
    out = bytearray(16)
    for i in range(16):
        out[i] = int(text[2 * i : 2 * i + 2], 16)
    return bytes(out)


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
        log("config: %s is not an object, using defaults" % (where or "the file"))
        raw = {}
    for name, default, kind, lo, hi in table:
        value = raw.get(name, default)
        if not _ok(value, kind, lo, hi):
            log("config: bad %s%s=%r, using %r" % (where, name, value, default))
            value = default
        out[name] = value
    return out


def load(path=PATH):
    """The merged configuration dict. Keys come back as bytes in "key" and "keys"."""
    raw = {}
    try:
        with open(path) as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except OSError:
        log("config: no %s, using defaults" % path)
        raw = {}
    except ValueError as e:
        log("config: %s is not valid JSON (%s), using defaults" % (path, e))
        raw = {}
    cfg = _merge(raw, SETTINGS, "")
    cfg["radio"] = _merge(raw.get("radio") or {}, RADIO_SETTINGS, "radio.")
    cfg["radio"]["bw"] = str(cfg["radio"]["bw"])
    # The driver needs crc_en on (DESIGN.md pitfalls); it is not a setting one may turn off.
    cfg["radio"]["crc_en"] = True
    try:
        cfg["key"] = parse_key(cfg["key"])
    except ValueError:
        log("config: bad key, sending without MIC")
        cfg["key"] = None
    keys = {}
    raw_keys = cfg["keys"] if isinstance(cfg["keys"], dict) else {}
    for node in raw_keys:
        try:
            n = int(node)
        except ValueError:
            log("config: bad node id %r in keys, ignored" % node)
            continue
        try:
            keys[n] = parse_key(raw_keys[node])
        except ValueError:
            # Refusing that node's frames is safer than accepting them unauthenticated.
            log("config: bad key for node %s: its frames are refused" % node)
            keys[n] = b"\x00" * 15
    cfg["keys"] = keys
    return cfg


def interval_ms(cfg):
    if cfg["interval_ms"] is not None:
        return cfg["interval_ms"]
    return int(cfg["interval_s"] * 1000)
