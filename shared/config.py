# config.json on the board: node id, radio settings, interval, keys (docs/hardware.md,
# "Configuration"). Missing keys take the defaults; a bad value is reported on the console
# and its default is used, so a typo never stops a node from reporting.
import json

from console import log

PATH = "config.json"

RADIO_DEFAULTS = {
    "freq_khz": 915000,
    "sf": 7,
    "bw": "125",
    "coding_rate": 5,
    "output_power": 14,
    "preamble_len": 12,
    "crc_en": True,
    "syncword": 0x12,
    "tx_ant": "PA_BOOST",
}

DEFAULTS = {
    "node_id": 1,
    "gateway_id": 2,
    "interval_s": 10,
    "interval_ms": None,
    "key": None,
    "keys": {},
    "duty_cycle_pct": None,
    "max_retries": 3,
    "stats_interval_s": 60,
    "queue_len": 360,
    # Firmware additions (documented in docs/hardware.md)
    "ack_turnaround_ms": 150,
    "fcnt_reserve": 1024,
    "wdt_ms": 16000,
    "serial_ring": 128,
    "resend_ms": 3000,
    "radio_retry_s": 30,
    "bme680_addr": 0x77,
    "display": True,
}

_BW = ("7.8", "10.4", "15.6", "20.8", "31.25", "41.7", "62.5", "125", "250", "500")


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


def _is_int(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_num(v, lo, hi):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi


# key -> check(value) for the values that need one (None allowed where the default is None)
_CHECKS = {
    "node_id": lambda v: _is_int(v, 1, 255),
    "gateway_id": lambda v: _is_int(v, 0, 255),
    "interval_s": lambda v: _is_num(v, 1, 86400),
    "interval_ms": lambda v: v is None or _is_int(v, 50, 86400000),
    "duty_cycle_pct": lambda v: v is None or _is_num(v, 0.001, 100),
    "max_retries": lambda v: _is_int(v, 0, 10),
    "stats_interval_s": lambda v: _is_num(v, 1, 86400),
    "queue_len": lambda v: _is_int(v, 1, 2000),
    "ack_turnaround_ms": lambda v: _is_int(v, 0, 10000),
    "fcnt_reserve": lambda v: _is_int(v, 1, 16384),
    "wdt_ms": lambda v: _is_int(v, 1000, 32000),
    "serial_ring": lambda v: _is_int(v, 1, 1000),
    "resend_ms": lambda v: _is_int(v, 100, 600000),
    "radio_retry_s": lambda v: _is_num(v, 1, 3600),
    "bme680_addr": lambda v: v in (0x76, 0x77),
    "display": lambda v: isinstance(v, bool),
}
_RADIO_CHECKS = {
    "freq_khz": lambda v: _is_num(v, 137000, 1020000),
    "sf": lambda v: _is_int(v, 7, 12),
    "bw": lambda v: str(v) in _BW,
    "coding_rate": lambda v: _is_int(v, 5, 8),
    # The driver maps 20 dBm on PA_BOOST to about 10 dBm: stay at 17 or below.
    "output_power": lambda v: _is_int(v, -4, 17),
    "preamble_len": lambda v: _is_int(v, 6, 65535),
    "crc_en": lambda v: v is True,
    "syncword": lambda v: _is_int(v, 0, 255),
    "tx_ant": lambda v: v in ("PA_BOOST", "RFO"),
}


def _merge(raw, defaults, checks, where):
    out = {}
    for name in defaults:
        value = raw.get(name, defaults[name]) if isinstance(raw, dict) else defaults[name]
        check = checks.get(name)
        if check is not None and not check(value):
            log("config: bad %s%s=%r, using %r" % (where, name, value, defaults[name]))
            value = defaults[name]
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
    cfg = _merge(raw, DEFAULTS, _CHECKS, "")
    cfg["radio"] = _merge(raw.get("radio") or {}, RADIO_DEFAULTS, _RADIO_CHECKS, "radio.")
    cfg["radio"]["bw"] = str(cfg["radio"]["bw"])
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
