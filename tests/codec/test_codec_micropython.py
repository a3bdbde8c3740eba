"""The codec under the real MicroPython unix port: same bytes as CPython for the vectors and
for random readings (float32 values included), same decode results, a 32 KB heap when
imported from .mpy, and every file compiles with mpy-cross."""

from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from codec_fuzz import mutate, seed_frames
from codec_mp import CODEC_DIR, MicroPython, cpython_batch, pack_float

import iiot_codec as codec

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
RANDOM_CASES = 400
MUTATED_CASES = 10000


def f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


@pytest.fixture(params=["source", "mpy"])
def mp(request: pytest.FixtureRequest) -> MicroPython:
    """The unix port with the codec from .py sources, and from mpy-cross output."""
    return request.getfixturevalue("mp_source" if request.param == "source" else "mp_mpy")


def assert_same(
    mp_results: list[dict[str, Any]], py_results: list[dict[str, Any]], cases: list[dict[str, Any]]
) -> None:
    crashes = [(c, r) for c, r in zip(cases, mp_results, strict=True) if "crash" in r]
    assert not crashes, f"MicroPython raised non-CodecError exceptions: {crashes[:5]}"
    differ = [(c, m, p) for c, m, p in zip(cases, mp_results, py_results, strict=True) if m != p]
    assert not differ, f"{len(differ)} of {len(cases)} cases differ; first: {differ[:3]}"


def _readings(values: dict[str, Any]) -> list[list[Any]]:
    return [[name, pack_float(value)] for name, value in values.items()]


def vector_cases(vectors: dict[str, Any]) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for v in vectors["frames"]:
        args = dict(v["encode"])
        readings = args.pop("readings", None) or args.pop("counters", None)
        case = {"op": "encode", **args}
        if readings is not None:
            case["readings"] = _readings(readings)
        cases.append(case)
        cases.append({"op": "decode", "hex": v["hex"], "key": v["encode"].get("key")})
    for v in vectors["decode_only"]:
        cases.append({"op": "decode", "hex": v["hex"]})
    for v in vectors["errors"]:
        cases.append({"op": "decode", "hex": v["hex"], "key": v["key"]})
    for v in vectors["lines"]:
        cases.append(
            {
                "op": "line",
                "frame": v["frame_hex"],
                "rssi": v["rssi"],
                "snr": pack_float(v["snr"]) if v["snr"] is not None else None,
                "n": v["n"],
            }
        )
        cases.append({"op": "decode_line", "line": v["line"] + "\n"})
    for text in vectors["console_lines"]:
        cases.append({"op": "decode_line", "line": text})
    for v in vectors["crc"]:
        cases.append({"op": "crc", "hex": v["data_hex"]})
    ack = vectors["host_ack"]
    cases.append({"op": "host_ack", "n": ack["n"], "text": ack["line"] + "\n"})
    return cases


def expected_from_vectors(vectors: dict[str, Any]) -> list[Any]:
    """What the vectors file says each case must give (None: compared with CPython only)."""
    out: list[Any] = []
    for v in vectors["frames"]:
        out += [{"hex": v["hex"]}, None]
    out += [None] * len(vectors["decode_only"])
    out += [{"error": v["reason"]} for v in vectors["errors"]]
    for v in vectors["lines"]:
        out += [{"line": v["line"]}, None]
    out += [{"console": True}] * len(vectors["console_lines"])
    out += [{"crc": v["crc"]} for v in vectors["crc"]]
    out.append({"line": vectors["host_ack"]["line"], "back": vectors["host_ack"]["n"]})
    return out


def test_vectors_give_identical_results_on_micropython(
    mp: MicroPython, vectors: dict[str, Any], tmp_path: Path
) -> None:
    cases = vector_cases(vectors)
    mp_results = mp.run_batch(cases)
    for case, want, got in zip(cases, expected_from_vectors(vectors), mp_results, strict=True):
        if want is not None:
            assert got == want, case
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


def random_cases(rng: random.Random, n: int) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 5
        seq = rng.choice([rng.randrange(1 << 16), rng.randrange(1 << 32)])
        if kind == 4:
            cases.append(
                {
                    "op": "encode",
                    "fn": "ack",
                    "src": rng.randrange(256),
                    "dst": rng.randrange(256),
                    "seq": seq,
                    "interval_s": rng.choice([None, rng.randrange(1, 1 << 32)]),
                    "resync": rng.random() < 0.3,
                }
            )
            continue
        rows = [row for row in codec.ROWS if rng.random() < 0.6]
        case: dict[str, Any] = {
            "op": "encode",
            "fn": "stats" if kind == 3 else "telemetry",
            "src": rng.randrange(256),
            "dst": rng.choice([0, rng.randrange(256)]),
            "seq": seq,
            "readings": [[row[1], pack_float(random_value(rng, row))] for row in rows],
            "key": KEY.hex() if rng.random() < 0.5 else None,
            "full_counter": rng.random() < 0.3,
            "ack_req": rng.random() < 0.7,
        }
        if kind != 3:
            case["age_s"] = rng.choice([0, 0, rng.randrange(1 << 32)])
        cases.append(case)
        if rng.random() < 0.2:
            row = rng.choice(codec.ROWS)
            cases.append(
                {"op": "format", "name": row[1], "value": pack_float(random_value(rng, row))}
            )
    return cases


def test_random_readings_give_identical_bytes_on_micropython(
    mp: MicroPython, tmp_path: Path
) -> None:
    rng = random.Random(1729)
    cases = random_cases(rng, RANDOM_CASES)
    py_results = cpython_batch(cases, tmp_path / "encode")
    assert sum("hex" in r for r in py_results) > RANDOM_CASES * 0.9  # mostly valid input
    assert_same(mp.run_batch(cases), py_results, cases)
    # ... and MicroPython decodes CPython's frames to the same fields, bit for bit.
    decodes = [
        {
            "op": "decode",
            "hex": r["hex"],
            "key": c.get("key"),
            "last": c["seq"] if not c.get("full_counter") else None,
            "classify_last": 1000,
        }
        for c, r in zip(cases, py_results, strict=True)
        if "hex" in r
    ]
    assert_same(mp.run_batch(decodes), cpython_batch(decodes, tmp_path / "decode"), decodes)


def test_mutated_frames_decode_identically_on_micropython(
    mp_mpy: MicroPython, tmp_path: Path
) -> None:
    rng = random.Random(4242)
    seeds = seed_frames(rng, 100)
    cases = []
    for i in range(MUTATED_CASES):
        data = mutate(rng, rng.choice(seeds)) if i % 5 else rng.randbytes(rng.randrange(40))
        cases.append(
            {
                "op": "decode",
                "hex": data.hex(),
                "key": KEY.hex() if i % 3 == 0 else None,
                "last": rng.choice([None, rng.randrange(1 << 32)]),
            }
        )
    py_results = cpython_batch(cases, tmp_path)
    assert sum("error" not in r for r in py_results) > 100  # many reach a full decode
    assert_same(mp_mpy.run_batch(cases), py_results, cases)


def test_lines_give_identical_results_on_micropython(mp_mpy: MicroPython, tmp_path: Path) -> None:
    rng = random.Random(99)
    cases: list[dict[str, Any]] = []
    for i in range(200):
        frame = rng.randbytes(rng.randrange(60)).hex()
        snr = rng.choice([None, rng.randrange(-80, 60) / 4, rng.uniform(-30, 30), -0.001, 12])
        rssi = rng.choice([None, rng.randrange(-140, 0)])
        cases.append(
            {
                "op": "line",
                "frame": frame,
                "rssi": rssi,
                "snr": pack_float(snr) if snr is not None else None,
                "n": rng.choice([None, i]),
            }
        )
    py_lines = cpython_batch(cases, tmp_path / "encode")
    assert_same(mp_mpy.run_batch(cases), py_lines, cases)
    decodes = [
        {"op": "decode_line", "line": r["line"] + rng.choice(["", "\n", "\\n\r\n"])}
        for r in py_lines
    ]
    decodes += [
        {"op": "decode_line", "line": text}
        for text in (
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
        )
    ]
    decodes += [
        {"op": "host_ack", "n": n, "text": text}
        for n, text in (
            (0, '{"ack":0}'),
            (7, '{"ack": 7}\r\n'),
            (1, "garbage"),
            (2, '{"ack":-3}'),
            (3, '{"ack":"3"}'),
            (4, "{"),
        )
    ]
    assert_same(mp_mpy.run_batch(decodes), cpython_batch(decodes, tmp_path / "decode"), decodes)


# --- the board's constraints ----------------------------------------------------------------


HEAP_PROGRAM = """
import gc
gc.collect()
import iiot_codec as c
k = bytes(range(16))
r = {"temperature": 28.3, "humidity": 52.6, "pressure": 1013.25,
     "gas_resistance": 461235, "voltage": 3.3}
f = c.encode_telemetry(1, 70000, r, key=k, full_counter=True)
d = c.decode(f, key=k)
assert d.authenticated and d.fcnt == 70000 and d.readings["pressure"] == 1013.25
a = c.decode(c.encode_ack(2, 1, d.seq, interval_s=600))
assert a.interval_s == 600
gc.collect()
print(f.hex(), gc.mem_free())
"""


def test_codec_round_trips_in_a_32k_heap_from_mpy(mp_mpy: MicroPython) -> None:
    proc = mp_mpy.exec(HEAP_PROGRAM, heapsize="32K")
    assert proc.returncode == 0, proc.stderr or proc.stdout
    frame_hex, free = proc.stdout.split()
    readings = {
        "temperature": 28.3,
        "humidity": 52.6,
        "pressure": 1013.25,
        "gas_resistance": 461235,
        "voltage": 3.3,
    }
    want = codec.encode_telemetry(1, 70000, readings, key=bytes(range(16)), full_counter=True)
    assert frame_hex == want.hex()
    assert int(free) > 0


def test_the_heap_limit_is_real(mp_mpy: MicroPython) -> None:
    # Guards the test above: the same program must fail in a heap far too small for it.
    proc = mp_mpy.exec(HEAP_PROGRAM, heapsize="8K")
    assert proc.returncode != 0
    assert "MemoryError" in proc.stderr + proc.stdout


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


def test_line_api_is_reachable_through_the_package_on_micropython(
    mp: MicroPython,
) -> None:
    # node2 and the simulator write `from iiot_codec import encode_line` (the documented
    # lazy import). On MicroPython the package's __getattr__ runs `from . import line`,
    # which looks the submodule up as an attribute first, re-enters __getattr__("line")
    # and raises AttributeError: line, unless iiot_codec.line was imported before.
    program = (
        "from iiot_codec import encode_line, decode_line\n"
        "import iiot_codec\n"
        "line = encode_line(b'\\x01\\x02', rssi=-40, snr=7.5, n=3)\n"
        "print(line, iiot_codec.decode_host_ack('{\"ack\":3}'), decode_line(line).n)\n"
    )
    proc = mp.exec(program)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ['{"f":"0102","rssi":-40,"snr":7.5,"n":3}', "3", "3"]


def test_micropython_batch_harness_reports_crashes(mp_mpy: MicroPython) -> None:
    # Guards assert_same: a case that raises something other than CodecError is reported.
    results = mp_mpy.run_batch([{"op": "decode", "hex": "zz"}, {"op": "crc", "hex": "00"}])
    assert "crash" in results[0]
    assert results[1] == {"crc": codec.crc16(b"\x00")}
    assert json.dumps(results)
