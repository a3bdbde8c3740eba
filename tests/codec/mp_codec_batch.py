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

# Imported directly: on MicroPython the package's lazy __getattr__ for the line API fails
# unless iiot_codec.line was imported first (test_codec_micropython covers that path).
import iiot_codec.line as line_api
from iiot_codec import (
    CodecError,
    classify,
    crc16,
    decode,
    encode_ack,
    encode_stats,
    encode_telemetry,
    format_value,
)


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


def describe(f):
    readings = {}
    for name in f.readings:
        readings[name] = pack_float(f.readings[name])
    return {
        "kind": f.kind,
        "src": f.src,
        "dst": f.dst,
        "seq": f.seq,
        "fcnt": f.fcnt,
        "fcnt_hi": f.fcnt_hi,
        "readings": readings,
        "age_s": f.age_s,
        "ack_req": f.ack_req,
        "has_mic": f.has_mic,
        "authenticated": f.authenticated,
        "skipped": f.skipped,
        "interval_s": f.interval_s,
        "resync": f.resync,
    }


def values_of(case):
    out = {}
    for name, value in case["readings"]:
        out[name] = unpack_value(value)
    return out


def run_encode(case):
    fn = case["fn"]
    if fn == "ack":
        frame = encode_ack(
            case["src"],
            case["dst"],
            case["seq"],
            interval_s=case.get("interval_s"),
            resync=case.get("resync", False),
        )
    elif fn == "stats":
        frame = encode_stats(
            case["src"],
            case["seq"],
            values_of(case),
            dst=case.get("dst", 0),
            key=key_of(case),
            ack_req=case.get("ack_req", False),
            full_counter=case.get("full_counter", False),
        )
    else:
        frame = encode_telemetry(
            case["src"],
            case["seq"],
            values_of(case),
            dst=case.get("dst", 0),
            age_s=case.get("age_s", 0),
            key=key_of(case),
            ack_req=case.get("ack_req", True),
            full_counter=case.get("full_counter", False),
        )
    return {"hex": hexlify(frame).decode()}


def run_decode(case):
    f = decode(unhexlify(case["hex"]), key=key_of(case), last_fcnt=case.get("last"))
    out = describe(f)
    if "classify_last" in case:
        out["class"] = classify(f, case["classify_last"])
    return out


def run_line(case):
    return {
        "line": line_api.encode_line(
            unhexlify(case["frame"]),
            rssi=case.get("rssi"),
            snr=unpack_value(case.get("snr")),
            n=case.get("n"),
        )
    }


def run_decode_line(case):
    text = case["line"]
    parsed = line_api.decode_line(text)
    if parsed is None:
        return {"console": True}
    return {
        "frame": hexlify(parsed.frame).decode(),
        "rssi": parsed.rssi,
        "snr": pack_float(parsed.snr),
        "n": parsed.n,
    }


def run_format(case):
    return {"text": format_value(case["name"], unpack_value(case["value"]))}


OPS = {
    "encode": run_encode,
    "decode": run_decode,
    "line": run_line,
    "decode_line": run_decode_line,
    "crc": lambda case: {"crc": crc16(unhexlify(case["hex"]))},
    "host_ack": lambda case: {
        "line": line_api.encode_host_ack(case["n"]),
        "back": line_api.decode_host_ack(case["text"]),
    },
    "format": run_format,
}


def run_case(case):
    try:
        return OPS[case["op"]](case)
    except CodecError as e:
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
