"""Run a batch of codec operations; the same script runs under MicroPython and CPython.

    micropython mp_codec_batch.py CASES.jsonl RESULTS.jsonl

One JSON case per input line, one JSON result per output line (streamed, so a large batch
fits MicroPython's heap). Floats travel as the hex of their IEEE-754 double ({"d": "..."})
because the two interpreters' float text conversions differ; the codec, not JSON, is under
test. Any exception other than CodecError is reported as {"crash": ...}, not raised, so one
bad case cannot hide the others.
"""

import json
import struct
import sys
from binascii import hexlify, unhexlify

# The whole API through the package, as the firmware imports it (lazily on MicroPython).
import iiot_codec as c


def unpack_value(v):
    if isinstance(v, dict):
        return struct.unpack("<d", unhexlify(v["d"]))[0]
    return v


def pack_float(x):
    if isinstance(x, float):
        return {"d": hexlify(struct.pack("<d", x)).decode()}
    return x


def key_of(case):
    k = case.get("key")
    return unhexlify(k) if k else None


def values_of(pairs):
    out = {}
    for name, value in pairs:
        out[name] = unpack_value(value)
    return out


def options_of(case):
    pairs = case.get("options")
    if pairs is None:
        return None
    out = {}
    for tag, value in pairs:
        out[tag] = value
    return out


def describe(f):
    entries = []
    for age_ms, readings in f.entries:
        packed = {}
        for name in readings:
            packed[name] = pack_float(readings[name])
        entries.append([age_ms, packed])
    return {
        "kind": f.kind,
        "src": f.src,
        "dst": f.dst,
        "seq": f.seq,
        "flags": f.flags,
        "fcnt": f.fcnt,
        "fcnt_hi": f.fcnt_hi,
        "entries": entries,
        "newest_is_readings": (f.readings is f.entries[-1][1]) if f.entries else None,
        "age_ms": f.age_ms,
        "ack_req": f.ack_req,
        "has_mic": f.has_mic,
        "authenticated": f.authenticated,
        "skipped": f.skipped,
        "options": sorted([tag, f.options[tag]] for tag in f.options),
        "resync": f.resync,
        "hold": f.hold,
    }


def run_encode(case):
    fn = case["fn"]
    if fn == "ack":
        frame = c.encode_ack(
            case["src"],
            case["dst"],
            case["fcnt"],
            options=options_of(case),
            resync=case.get("resync", False),
            hold=case.get("hold", False),
            key=key_of(case),
        )
    elif fn == "readings":
        entries = [(age_ms, values_of(pairs)) for age_ms, pairs in case["entries"]]
        frame = c.encode_readings(
            case["src"],
            case["seq"],
            entries,
            dst=case.get("dst", 0),
            key=key_of(case),
            ack_req=case.get("ack_req", True),
            full_counter=case.get("full_counter", False),
            stats=case.get("stats", False),
        )
    elif fn == "stats":
        frame = c.encode_stats(
            case["src"],
            case["seq"],
            values_of(case["readings"]),
            dst=case.get("dst", 0),
            key=key_of(case),
            ack_req=case.get("ack_req", False),
            full_counter=case.get("full_counter", False),
        )
    else:
        frame = c.encode_telemetry(
            case["src"],
            case["seq"],
            values_of(case["readings"]),
            dst=case.get("dst", 0),
            age_ms=case.get("age_ms", 0),
            key=key_of(case),
            ack_req=case.get("ack_req", True),
            full_counter=case.get("full_counter", False),
        )
    return {"hex": hexlify(frame).decode()}


def run_decode(case):
    data = unhexlify(case["hex"])
    f = c.decode(data, key=key_of(case), last_fcnt=case.get("last"))
    out = describe(f)
    out["peek"] = list(c.peek(data))
    if "classify_last" in case:
        out["class"] = c.classify(f, case["classify_last"])
    return out


def run_decode_ack(case):
    f = c.decode_ack(unhexlify(case["hex"]), key=key_of(case), fcnt=case.get("fcnt"))
    return describe(f)


def run_line(case):
    return {
        "line": c.encode_line(
            unhexlify(case["frame"]),
            rssi=case.get("rssi"),
            snr=unpack_value(case.get("snr")),
            n=case.get("n"),
            hold_ms=case.get("hold_ms", 0),
        )
    }


def run_decode_line(case):
    parsed = c.decode_line(case["line"])
    if parsed is None:
        return {"console": True}
    return {
        "frame": hexlify(parsed.frame).decode(),
        "rssi": parsed.rssi,
        "snr": pack_float(parsed.snr),
        "n": parsed.n,
        "hold_ms": parsed.hold_ms,
    }


def run_host_line(case):
    got = c.decode_host_line(case["text"])
    return {"host": None if got is None else list(got), "ack": c.decode_host_ack(case["text"])}


def run_session_line(case):
    # How the host reads a line from node2: a session line, or something else (None)
    obj = c.parse_object(case["text"])
    if obj is None:
        return {"session": None, "console": True}
    s = c.session_from_object(obj)
    return {"session": None if s is None else [s.boot, s.nonce]}


OPS = {
    "encode": run_encode,
    "decode": run_decode,
    "decode_ack": run_decode_ack,
    "peek": lambda case: {"peek": list(c.peek(unhexlify(case["hex"])))},
    "line": run_line,
    "decode_line": run_decode_line,
    "crc": lambda case: {"crc": c.crc16(unhexlify(case["hex"]))},
    "host_ack": lambda case: {"line": c.encode_host_ack(case["n"], case.get("boot"))},
    "hello": lambda case: {"line": c.encode_hello(case["nonce"])},
    "session": lambda case: {"line": c.encode_session(case["boot"], case.get("nonce"))},
    "session_line": run_session_line,
    "downlink": lambda case: {
        "line": c.encode_downlink(case["node"], case["tag"], case.get("value"))
    },
    "host_line": run_host_line,
    "format": lambda case: {"text": c.format_value(case["name"], unpack_value(case["value"]))},
}


def run_case(case):
    try:
        return OPS[case["op"]](case)
    except c.CodecError as e:
        return {"error": e.reason}
    except Exception as e:  # the finding this harness exists for: report, keep going
        return {"crash": type(e).__name__ + ": " + str(e)}


def main():
    with open(sys.argv[1]) as src, open(sys.argv[2], "w") as dst:
        for text in src:
            if text.strip():
                dst.write(json.dumps(run_case(json.loads(text))))
                dst.write("\n")


main()
