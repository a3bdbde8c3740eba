"""The codec under the real MicroPython unix port (the virtualenv's 64-bit build and the
32-bit build when present): same bytes as CPython for the vectors and for random frames of
every kind (float32 values included), same decode results, the heap node1's part of the
codec costs on a 32-bit heap, and every file compiles with mpy-cross."""

from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from codec_fuzz import mutate, seed_frames
from codec_mp import (
    CODEC_DIR,
    INTERPRETERS,
    REPO,
    MicroPython,
    board_like,
    cpython_batch,
    pack_float,
)

import iiot_codec as codec

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
RANDOM_CASES = 400
MUTATED_CASES = 10000
HEAP_REPORT = REPO / "build" / "codec" / "heap.json"


def f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def assert_same(
    mp_results: list[dict[str, Any]], py_results: list[dict[str, Any]], cases: list[dict[str, Any]]
) -> None:
    crashes = [(c, r) for c, r in zip(cases, mp_results, strict=True) if "crash" in r]
    assert not crashes, f"MicroPython raised non-CodecError exceptions: {crashes[:5]}"
    differ = [(c, m, p) for c, m, p in zip(cases, mp_results, py_results, strict=True) if m != p]
    assert not differ, f"{len(differ)} of {len(cases)} cases differ; first: {differ[:3]}"


def _pairs(values: dict[str, Any]) -> list[list[Any]]:
    return [[name, pack_float(value)] for name, value in values.items()]


def encode_case(spec: dict[str, Any]) -> dict[str, Any]:
    """A batch case from a vector's ``encode`` member (floats packed, options as pairs)."""
    case: dict[str, Any] = {"op": "encode", **spec}
    for name in ("readings", "counters"):
        if name in case:
            case["readings"] = _pairs(case.pop(name))
    if "entries" in case:
        case["entries"] = [[age, _pairs(r)] for age, r in case["entries"]]
    if case.get("options") is not None:
        case["options"] = [[int(tag), value] for tag, value in case["options"].items()]
    return case


def vector_cases(vectors: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every vector as a batch case, and what the vectors file says each must give (None:
    compared with CPython only)."""
    cases: list[dict[str, Any]] = []
    want: list[Any] = []
    for v in vectors["frames"]:
        spec = v["encode"]
        cases.append(encode_case(spec))
        want.append({"hex": v["hex"]})
        if spec["fn"] == "ack":
            cases.append(
                {"op": "decode_ack", "hex": v["hex"], "key": spec.get("key"), "fcnt": spec["fcnt"]}
            )
        else:
            cases.append({"op": "decode", "hex": v["hex"], "key": spec.get("key")})
        want.append(None)
    for v in vectors["decode_only"]:
        cases.append({"op": "decode", "hex": v["hex"]})
        want.append(None)
    for v in vectors["errors"]:
        cases.append({"op": v["fn"], "hex": v["hex"], "key": v["key"], "fcnt": v["fcnt"]})
        want.append({"error": v["reason"]})
    for v in vectors["lines"]:
        snr = pack_float(v["snr"]) if v["snr"] is not None else None
        cases.append(
            {
                "op": "line",
                "frame": v["frame_hex"],
                "rssi": v["rssi"],
                "snr": snr,
                "n": v["n"],
                "hold_ms": v["hold_ms"],
            }
        )
        want.append({"line": v["line"]})
        cases.append({"op": "decode_line", "line": v["line"] + "\n"})
        want.append(None)
    for text in vectors["console_lines"]:
        cases.append({"op": "decode_line", "line": text})
        want.append({"console": True})
    for v in vectors["crc"]:
        cases.append({"op": "crc", "hex": v["data_hex"]})
        want.append({"crc": v["crc"]})
    for v in vectors["host_lines"]:
        spec = v["encode"]
        if spec["fn"] == "host_ack":
            cases.append({"op": "host_ack", "n": spec["n"], "boot": spec["boot"]})
        elif spec["fn"] == "hello":
            cases.append({"op": "hello", "nonce": spec["nonce"]})
        else:
            cases.append({"op": "downlink", **{k: spec[k] for k in ("node", "tag", "value")}})
        want.append({"line": v["line"]})
        cases.append({"op": "host_line", "text": v["line"] + "\r\n"})
        ack = v["decoded"][1] if v["decoded"][0] == "ack" else None
        want.append({"host": v["decoded"], "ack": ack})
    for v in vectors["session_lines"]:
        cases.append({"op": "session", "boot": v["boot"], "nonce": v["nonce"]})
        want.append({"line": v["line"]})
        cases.append({"op": "session_line", "text": v["line"] + "\n"})
        want.append({"session": [v["decoded"]["boot"], v["decoded"]["nonce"]]})
    for v in vectors["lines"]:  # a frame line is not a session line
        cases.append({"op": "session_line", "text": v["line"]})
        want.append({"session": None})
    return cases, want


def test_vectors_give_identical_results_on_micropython(
    mp: MicroPython, vectors: dict[str, Any], tmp_path: Path
) -> None:
    cases, want = vector_cases(vectors)
    mp_results = mp.run_batch(cases)
    for case, expected, got in zip(cases, want, mp_results, strict=True):
        if expected is not None:
            assert got == expected, case
    assert_same(mp_results, cpython_batch(cases, tmp_path), cases)


def random_value(rng: random.Random, row: tuple[Any, ...]) -> float | int:
    _id, _name, _unit, decimals, signed = row
    scale = 10**decimals
    style = rng.randrange(5)
    if style == 0:  # at the resolution
        k = rng.randrange(rng.choice([100, 10_000, 1_000_000, 2**31 - 1]))
        value: float | int = k / scale if decimals else k
    elif style == 1:  # a board float32 of a value at the resolution
        value = f32(rng.randrange(2**23) / scale)
    elif style == 2:  # an arbitrary double, e.g. straight out of a compensation formula
        value = rng.uniform(0, 2000)
    elif style == 3:  # exactly half a resolution step: both ports must round it alike
        # odd/2 (x.5), odd/8 (x.125 = 12.5 hundredths), odd/16 (x.0625 = 62.5 thousandths)
        value = (rng.randrange(100_000) * 2 + 1) / {0: 2, 2: 8, 3: 16}[decimals]
    else:  # a float32 of an arbitrary reading
        value = f32(rng.uniform(0, 1100))
    if signed and rng.random() < 0.5:
        value = -value
    return value


def random_readings(rng: random.Random, share: float) -> list[list[Any]]:
    rows = [row for row in codec.ROWS if rng.random() < share]
    return [[row[1], pack_float(random_value(rng, row))] for row in rows]


def random_age_ms(rng: random.Random) -> int:
    return rng.choice([0, 0, rng.randrange(1000), rng.randrange(100_000), rng.randrange(1 << 38)])


def random_case(rng: random.Random, i: int) -> dict[str, Any]:
    kind = i % 8
    seq = rng.choice([rng.randrange(1 << 16), rng.randrange(1 << 32)])
    key = KEY.hex() if rng.random() < 0.5 else None
    if kind in (0, 1, 2):  # telemetry, stats, batch: every uplink
        case: dict[str, Any] = {
            "op": "encode",
            "src": rng.randrange(256),
            "dst": rng.choice([0, rng.randrange(256)]),
            "seq": seq,
            "key": key,
            "full_counter": rng.random() < 0.3,
            "ack_req": rng.random() < 0.7,
        }
        if kind == 0:
            case.update(fn="telemetry", readings=random_readings(rng, 0.6))
            case["age_ms"] = random_age_ms(rng)
        elif kind == 1:
            case.update(fn="stats", readings=random_readings(rng, 0.6))
        else:
            ages = sorted((random_age_ms(rng) for _ in range(rng.randint(1, 16))), reverse=True)
            entries = [[age, random_readings(rng, 0.25)] for age in ages]
            case.update(fn="readings", entries=entries, stats=False)
        return case
    if kind == 3:
        options = [[rng.choice([1, 64, rng.randrange(256)]), rng.randrange(1 << 32)]]
        return {
            "op": "encode",
            "fn": "ack",
            "src": rng.randrange(256),
            "dst": rng.randrange(256),
            "fcnt": seq,
            "options": rng.choice([None, options, [[64, rng.randrange(1, 3600)], [1, 600]]]),
            "resync": rng.random() < 0.2,
            "hold": rng.random() < 0.3,
            "key": key,
        }
    if kind == 4:
        snr = rng.choice([None, rng.randrange(-80, 60) / 4, rng.uniform(-30, 30), -0.001, 12])
        return {
            "op": "line",
            "frame": rng.randbytes(rng.randrange(60)).hex(),
            "rssi": rng.choice([None, rng.randrange(-140, 0)]),
            "snr": pack_float(snr) if snr is not None else None,
            "n": rng.choice([None, i]),
            "hold_ms": rng.choice([0, rng.randrange(1 << 32), rng.randrange(1 << 32), -1]),
        }
    if kind == 5:
        return {
            "op": "downlink",
            "node": host_int(rng, 255),
            "tag": host_int(rng, 255),
            "value": rng.choice([None, host_int(rng)]),
        }
    if kind == 6:
        op = rng.choice(["host_ack", "hello", "session"])
        if op == "host_ack":
            return {"op": op, "n": host_int(rng), "boot": rng.choice([None, host_int(rng)])}
        if op == "hello":
            return {"op": op, "nonce": host_int(rng)}
        return {"op": op, "boot": host_int(rng), "nonce": rng.choice([None, host_int(rng)])}
    row = rng.choice(codec.ROWS)
    return {"op": "format", "name": row[1], "value": pack_float(random_value(rng, row))}


def host_int(rng: random.Random, hi: int = 0xFFFFFFFF) -> Any:
    """A host line's number: mostly in range (0..hi), now and then one its encoder refuses."""
    if rng.random() < 0.85:
        return rng.choice([0, hi, rng.randrange(hi + 1), rng.randrange(1 << 31) & hi])
    return rng.choice([-1, hi + 1, 2**64, 5.5, 7.0, True, "5"])


def decode_cases(
    cases: list[dict[str, Any]], results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What a receiver does with each encoded frame or line: decode (with the key and the
    counter it knows), decode_ack with the counter acknowledged, decode_line, host lines."""
    out: list[dict[str, Any]] = []
    for case, result in zip(cases, results, strict=True):
        if "line" in result:
            op = {"line": "decode_line", "session": "session_line"}.get(case["op"], "host_line")
            out.append({"op": op, "line": result["line"] + "\n", "text": result["line"]})
        elif "hex" not in result:
            continue
        elif case["fn"] == "ack":
            out.append(
                {"op": "decode_ack", "hex": result["hex"], "key": case["key"], "fcnt": case["fcnt"]}
            )
            out.append({"op": "decode", "hex": result["hex"]})
        else:
            last = None if case["full_counter"] else case["seq"]
            out.append(
                {
                    "op": "decode",
                    "hex": result["hex"],
                    "key": case["key"],
                    "last": last,
                    "classify_last": 1000,
                }
            )
    return out


def test_random_frames_and_lines_give_identical_results_on_micropython(
    mp: MicroPython, tmp_path: Path
) -> None:
    rng = random.Random(1729)
    cases = [random_case(rng, i) for i in range(RANDOM_CASES)]
    py_results = cpython_batch(cases, tmp_path / "encode")
    encoded = [c for c, r in zip(cases, py_results, strict=True) if "hex" in r or "line" in r]
    encoders = [c for c in cases if c["op"] != "format"]  # format_value gives no frame
    assert len(encoded) > len(encoders) * 0.8  # mostly valid input
    batches = [r for c, r in zip(cases, py_results, strict=True) if c.get("fn") == "readings"]
    assert sum("hex" in r for r in batches) > len(batches) // 2  # most batches fit a packet
    assert not [r for r in py_results if "crash" in r]
    # Every serial-line encoder ran, and refused some arguments ("format") on both ports.
    ops = {c["op"]: r for c, r in zip(cases, py_results, strict=True) if "line" in r}
    assert {"line", "downlink", "host_ack", "hello", "session"} <= set(ops)
    refused = {c["op"] for c, r in zip(cases, py_results, strict=True) if "error" in r}
    assert {"line", "downlink", "host_ack", "hello", "session"} <= refused
    assert_same(mp.run_batch(cases), py_results, cases)
    # ... and MicroPython decodes CPython's frames and lines to the same fields, bit for bit.
    decodes = decode_cases(cases, py_results)
    py_decoded = cpython_batch(decodes, tmp_path / "decode")
    kinds = {r.get("kind") for r in py_decoded}
    assert {"telemetry", "stats", "batch", "ack"} <= kinds
    assert sum(r.get("authenticated", False) for r in py_decoded) > 20  # MICs verified
    assert_same(mp.run_batch(decodes), py_decoded, decodes)


def test_mutated_frames_decode_identically_on_micropython(
    mp_mpy: MicroPython, tmp_path: Path
) -> None:
    rng = random.Random(4242)
    seeds = seed_frames(rng, 100)
    cases = []
    for i in range(MUTATED_CASES):
        data = mutate(rng, rng.choice(seeds)) if i % 5 else rng.randbytes(rng.randrange(40))
        key = KEY.hex() if i % 3 == 0 else None
        if i % 4 == 0:
            fcnt = rng.choice([None, rng.randrange(1 << 32)])
            cases.append({"op": "decode_ack", "hex": data.hex(), "key": key, "fcnt": fcnt})
        else:
            last = rng.choice([None, rng.randrange(1 << 32)])
            cases.append({"op": "decode", "hex": data.hex(), "key": key, "last": last})
    py_results = cpython_batch(cases, tmp_path)
    assert sum("error" not in r for r in py_results) > 100  # many reach a full decode
    assert_same(mp_mpy.run_batch(cases), py_results, cases)


def test_lines_give_identical_results_on_micropython(mp_mpy: MicroPython, tmp_path: Path) -> None:
    lines = [
        "MicroPython v1.23.0",
        "",
        "   ",
        "{",
        '{"f": 1}',
        '{"f":"0"}',
        '{"f":"zz"}',
        '{"x":1}',
        "[1,2]",
        '{"f":"00","rssi":1.5}',
        '{"f":"00","n":-1}',
        '{"f":"00","snr":"7"}',
        '{"f":"00","rssi":true}',
        '{"f":"00","h":3100}',
        '{"f":"00","h":-1}',
        '{"f":"00","h":1.5}',
        '{"f":"00","rssi":-40,"snr":7.5,"n":3,"h":0}\\n',
        '{"f":"ab  "}',  # MicroPython's unhexlify skips blanks; the codec must not
        '{"f":"  ab"}',
        '{"f":"ab","snr":1e999}',
    ]
    host = [
        '{"ack":0}',
        '{"ack": 7}\r\n',
        "garbage",
        '{"ack":-3}',
        '{"ack":"3"}',
        '{"ack":4294967296}',
        "{",
        '{"dl":1,"t":1,"v":600}',
        '{"dl":1,"t":1}',
        '{"dl":1,"t":1,"v":null}',
        '{"dl":1,"t":64,"v":4294967295}',
        '{"dl":256,"t":1,"v":5}',
        '{"dl":1,"t":1,"v":-5}',
        '{"dl":1,"t":1,"v":5.0}',
        '{"dl":true,"t":1}',
        '{"dl":1}',
        '{"f":"00"}',
        '{"dl":1,"t":1,"v":600,"ack":9}',
        '{"ack":7,"boot":2048}',
        '{"ack":7,"boot":4294967295}',
        '{"ack":7,"boot":4294967296}',
        '{"ack":7,"boot":null}',
        '{"ack":7,"boot":"2048"}',
        '{"hello":1804289383}',
        '{"hello":0}',
        '{"hello":-1}',
        '{"hello":1.5}',
        '{"hello":true}',
        '{"hello":4294967296}',
        '{"hello":5,"boot":2048}',
    ]
    session = [
        '{"boot":2048}',
        '{"hello":1804289383,"boot":2048}',
        '{"boot":0}\r\n',
        '{"boot":4294967295}',
        '{"boot":4294967296}',
        '{"boot":-1}',
        '{"boot":2.5}',
        '{"boot":false}',
        '{"boot":"2048"}',
        '{"hello":7}',
        '{"hello":-7,"boot":9}',
        '{"hello":"7","boot":9}',
        '{"f":"00","boot":9}',
        '{"f":"00","n":1}',
        '{"x":1}',
        "MicroPython v1.23.0",
    ]
    cases = [{"op": "decode_line", "line": text} for text in lines]
    cases += [{"op": "host_line", "text": text} for text in host + session]
    cases += [{"op": "session_line", "text": text} for text in session + host]
    results = cpython_batch(cases, tmp_path)
    assert {"console": True} in results and {"error": "format"} in results
    assert {"host": ["dl", 1, 1, 600], "ack": None} in results
    assert {"host": ["ack", 7, 2048], "ack": 7} in results
    assert {"host": ["hello", 1804289383], "ack": None} in results
    assert {"session": [2048, None]} in results and {"session": [2048, 1804289383]} in results
    assert_same(mp_mpy.run_batch(cases), results, cases)


# --- the board's constraints ----------------------------------------------------------------

NODE1_READINGS = {
    "temperature": 28.3,
    "humidity": 52.6,
    "pressure": 1013.25,
    "gas_resistance": 461235,
    "voltage": 3.3,
}
ACK_70000 = codec.encode_ack(2, 1, 70000, key=bytes(range(16)))
FRAME_70000 = codec.encode_telemetry(
    1, 70000, NODE1_READINGS, key=bytes(range(16)), full_counter=True
)

# What node1 does with the codec, and nothing else: encode its readings (one, and a batch of
# 8 from its queue), with a MIC, and check an ACK's MIC. It prints the heap the import kept,
# the heap kept after use, and the modules loaded.
NODE1_PROGRAM = f"""
import gc, sys
gc.collect()
free0 = gc.mem_free()
from iiot_codec import encode_readings, decode_ack, crc16
gc.collect()
free1 = gc.mem_free()
k = bytes(range(16))
r = {NODE1_READINGS!r}
f = encode_readings(1, 70000, [(0, r)], key=k, full_counter=True)
b = encode_readings(1, 70001, [((7 - i) * 10000, r) for i in range(8)], key=k)
a = decode_ack({ACK_70000!r}, key=k, fcnt=70000)
assert a.authenticated and crc16(f[:-2]) == f[-2] << 8 | f[-1]
gc.collect()
free2 = gc.mem_free()
mods = sorted(m for m in sys.modules if m.startswith("iiot_codec"))
print(f.hex(), b.hex(), free0 - free1, free0 - free2, ",".join(mods))
"""

# What node2 does with the codec: the whole API loaded, then a keyed frame checked and
# ACKed with a MIC, a serial line written, host lines read and a hello answered. Prints the
# heap the import kept.
FULL_PROGRAM = f"""
import gc
gc.collect()
free0 = gc.mem_free()
import iiot_codec as c
for name in ("decode", "encode_ack", "classify", "encode_line", "decode_host_line"):
    getattr(c, name)
gc.collect()
print(free0 - gc.mem_free())
k = bytes(range(16))
f = c.decode({FRAME_70000!r}, key=k)
assert f.authenticated and c.classify(f, 69999) == c.NEW
assert c.encode_ack(2, 1, f.fcnt, key=k) == {ACK_70000!r}
assert c.decode_line(c.encode_line({FRAME_70000!r}, rssi=-40, snr=7.5, n=1)).n == 1
assert c.decode_host_line('{{"dl":1,"t":1,"v":600}}') == ("dl", 1, 1, 600)
assert c.decode_host_line('{{"hello":77}}') == ("hello", 77)
assert c.encode_session(2048, 77) == '{{"hello":77,"boot":2048}}'
assert c.decode_host_line('{{"ack":3,"boot":2048}}') == ("ack", 3, 2048)
"""


def _node1_run(mp: MicroPython, heapsize: str) -> subprocess.CompletedProcess[str]:
    return mp.exec(NODE1_PROGRAM, heapsize=heapsize)


def _smallest_heap_kib(mp: MicroPython, low: int, high: int) -> int:
    """The smallest heap (KiB) node1's codec use runs in: ``low`` fails, ``high`` runs."""
    while high - low > 1:
        mid = (low + high) // 2
        if _node1_run(mp, f"{mid}K").returncode == 0:
            high = mid
        else:
            low = mid
    return high


def test_the_codec_fits_a_32k_heap_and_reports_node1s_cost(mp_board: MicroPython) -> None:
    proc = _node1_run(mp_board, "32K")
    assert proc.returncode == 0, proc.stderr or proc.stdout
    frame_hex, batch_hex, import_cost, kept, modules = proc.stdout.split()
    key = bytes(range(16))
    want = codec.encode_readings(1, 70000, [(0, NODE1_READINGS)], key=key, full_counter=True)
    assert frame_hex == want.hex()
    entries = [((7 - i) * 10000, NODE1_READINGS) for i in range(8)]
    assert batch_hex == codec.encode_readings(1, 70001, entries, key=key).hex()
    # node1 loads the frame codec and what it needs, never the serial line, the duplicate
    # rule, the uplink decoder, the settings table or the host's views.
    loaded = set(modules.split(","))
    assert {"iiot_codec", "iiot_codec.frame"} <= loaded
    host_side = {"line", "counter", "decode", "settings", "values", "_host"}
    assert not loaded & {"iiot_codec." + name for name in host_side}
    full = mp_board.exec(FULL_PROGRAM, heapsize="32K")  # node2's use fits 32 KB too
    assert full.returncode == 0, full.stderr
    smallest = _smallest_heap_kib(mp_board, 4, 32)
    # Guards the measurement: just below the smallest heap the same program runs out of memory.
    below = _node1_run(mp_board, f"{smallest - 1}K")
    assert below.returncode != 0 and "MemoryError" in below.stderr + below.stdout
    report = {
        "interpreter": mp_board.label,
        "binary": Path(mp_board.binary).name,
        "codec_from": "mpy",
        "node1_import_bytes": int(import_cost),
        "node1_after_use_bytes": int(kept),
        "node1_modules": sorted(loaded),
        "full_api_import_bytes": int(full.stdout),
        "node1_smallest_heap_kib": smallest,
    }
    HEAP_REPORT.parent.mkdir(parents=True, exist_ok=True)
    HEAP_REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\ncodec heap on {mp_board.label}: {json.dumps(report)}")
    assert 0 < int(import_cost) <= int(kept)
    assert int(import_cost) < int(full.stdout)
    assert smallest <= 32


@pytest.mark.parametrize("source", sorted(p.name for p in CODEC_DIR.glob("*.py")))
def test_every_codec_file_compiles_with_mpy_cross(
    source: str, mpy_cross_bin: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.mpy"
    proc = subprocess.run(
        [mpy_cross_bin, "-o", str(out), str(CODEC_DIR / source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    header = out.read_bytes()[:2]
    assert header == b"M\x06"  # .mpy format version 6: what firmware 1.23+ loads


def test_every_codec_module_imports_on_micropython(mp: MicroPython) -> None:
    # Type annotations are parsed and dropped by MicroPython; none may need `typing`.
    names = sorted(p.stem for p in CODEC_DIR.glob("*.py") if p.stem != "__init__")
    program = "import iiot_codec\n" + "".join(f"import iiot_codec.{n}\n" for n in names)
    proc = mp.exec(program + "print('ok')")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"]


def test_the_api_is_reachable_through_the_package_on_micropython(mp: MicroPython) -> None:
    # node2 and the simulator write `from iiot_codec import encode_line` (the lazy import).
    program = (
        "from iiot_codec import encode_line, decode_line\n"
        "import iiot_codec\n"
        "line = encode_line(b'\\x01\\x02', rssi=-40, snr=7.5, n=3, hold_ms=20)\n"
        "print(line, iiot_codec.decode_host_ack('{\"ack\":3}'), decode_line(line).hold_ms)\n"
        "print(iiot_codec.peek(iiot_codec.encode_ack(2, 1, 5)))\n"
        "try:\n"
        "    iiot_codec.no_such_name\n"
        "except AttributeError:\n"
        "    print('AttributeError')\n"
    )
    proc = mp.exec(program)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        '{"f":"0102","rssi":-40,"snr":7.5,"n":3,"h":20} 3 20',
        "('ack', 2)",
        "AttributeError",
    ]


def test_micropython_batch_harness_reports_crashes(mp_mpy: MicroPython) -> None:
    # Guards assert_same: a case that raises something other than CodecError is reported.
    results = mp_mpy.run_batch([{"op": "decode", "hex": "zz"}, {"op": "crc", "hex": "00"}])
    assert "crash" in results[0]
    assert results[1] == {"crc": codec.crc16(b"\x00")}
    assert json.dumps(results)


def test_both_interpreters_are_used() -> None:
    # The 32-bit build is preferred for heap figures; the virtualenv's always runs.
    assert "venv" in INTERPRETERS
    assert board_like() == ("unix32" if "unix32" in INTERPRETERS else "venv")
