"""Input generators of the codec fuzz tests (random bytes, mutations of valid frames,
damaged serial lines), shared with the MicroPython differential tests."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import iiot_codec as codec
from iiot_codec import line as codec_line

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
# Numbers at the edges of the serial lines' ranges (node and tag 0..255, the rest 32 bits).
EDGE_NUMBERS = [0, 1, 255, 256, 2**31, 2**32 - 1, 2**32, -1, 1.0, 2.5, True, False, None]
# The members of each kind of line but frame lines: host acks, downlinks, hellos (from the
# host), boot lines and hello answers (from node2).
LINE_SHAPES = [(), ("ack",), ("ack", "boot"), ("dl", "t"), ("dl", "t", "v"), ("hello",)]
LINE_SHAPES += [("boot",), ("hello", "boot")]
MEMBERS = ["f", "rssi", "snr", "n", "h", "ack", "dl", "t", "v", "boot", "hello", "x"]


def with_crc(body: bytes) -> bytes:
    return body + codec.crc16(body).to_bytes(2, "big")


def random_readings(rng: random.Random, share: float = 0.5) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _id, name, _unit, decimals, signed in codec.ROWS:
        if rng.random() < share:
            k = rng.choice(
                [0, 1, rng.randrange(1 << 7), rng.randrange(1 << 14), rng.randrange(1 << 31)]
            )
            if signed and rng.random() < 0.5:
                k = -k
            out[name] = k / 10**decimals if decimals else k
    return out


def random_options(rng: random.Random) -> dict[int, int] | None:
    if rng.random() < 0.4:
        return None
    tags = [1, codec.OPT_RETRY_S, rng.randrange(256)]
    return {rng.choice(tags): rng.choice([0, 20, rng.randrange(1 << 32)]) for _ in range(3)}


def random_entries(rng: random.Random, count: int) -> list[tuple[int, dict[str, Any]]]:
    """``count`` entries, oldest first, with ages from 0 to days, in milliseconds."""
    ages = sorted(
        (rng.choice([0, rng.randrange(100_000), rng.randrange(1 << 36)]) for _ in range(count)),
        reverse=True,
    )
    return [(age, random_readings(rng, 0.3 if count > 1 else 0.5)) for age in ages]


def seed_frames(rng: random.Random, count: int = 200) -> list[bytes]:
    """Valid frames of every kind and option, the raw material of the mutations."""
    frames = []
    while len(frames) < count:
        kind = rng.randrange(4)
        seq = rng.choice([0, rng.randrange(1 << 16), rng.randrange(1 << 32)])
        key = KEY if rng.random() < 0.5 else None
        if kind == 3:
            frames.append(
                codec.encode_ack(
                    rng.randrange(256),
                    rng.randrange(256),
                    seq,
                    options=random_options(rng),
                    resync=rng.random() < 0.2,
                    hold=rng.random() < 0.3,
                    key=key,
                )
            )
            continue
        entries = random_entries(rng, rng.randint(2, 16) if kind == 2 else 1)
        try:
            frames.append(
                codec.encode_readings(
                    rng.randrange(256),
                    seq,
                    entries,
                    dst=rng.choice([0, rng.randrange(256)]),
                    key=key,
                    ack_req=rng.random() < 0.7,
                    full_counter=rng.random() < 0.5,
                    stats=kind == 1,
                )
            )
        except codec.CodecError:  # a batch too large for one packet: draw another
            continue
    return frames


def mutate(rng: random.Random, frame: bytes) -> bytes:
    """One random mutation of ``frame``; about half get a fresh, valid CRC so the parser
    behind the CRC check sees them."""
    data = bytearray(frame)
    body = data[:-2]
    op = rng.randrange(7)
    if op == 0:  # bit flips
        for _ in range(rng.randint(1, 3)):
            if body:
                i = rng.randrange(len(body) * 8)
                body[i // 8] ^= 1 << (i % 8)
    elif op == 1:  # truncation
        body = body[: rng.randrange(len(body) + 1)]
    elif op == 2:  # extension
        body += rng.randbytes(rng.randint(1, 12))
    elif op == 3:  # byte insertions
        for _ in range(rng.randint(1, 3)):
            body.insert(rng.randrange(len(body) + 1), rng.randrange(256))
    elif op == 4:  # byte deletions
        for _ in range(rng.randint(1, 3)):
            if body:
                del body[rng.randrange(len(body))]
    elif op == 5:  # any header byte (every version, type and flag combination)
        if body:
            body[0] = rng.randrange(256)
    else:  # a run of 0x80/0xff: varints that never end
        pos = rng.randrange(len(body) + 1)
        body[pos:pos] = bytes([rng.choice([0x80, 0xFF])]) * rng.randint(1, 8)
    if rng.random() < 0.5:
        return with_crc(bytes(body))
    if op == 0 and rng.random() < 0.5:
        return bytes(body) + bytes(data[-2:])  # old CRC kept: must fail the CRC check
    return bytes(body) + rng.randbytes(2)


def fuzz_frames(rng: random.Random, n: int) -> Iterator[bytes]:
    seeds = seed_frames(rng)
    for i in range(n):
        choice = i % 4
        if choice == 0:
            yield rng.randbytes(
                rng.choice([rng.randrange(12), rng.randrange(40), rng.randrange(300)])
            )
        elif choice == 1:
            yield with_crc(rng.randbytes(rng.randrange(30)))  # random, but past the CRC check
        else:
            yield mutate(rng, rng.choice(seeds))


def json_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["int", "bigint", "float", "special", "str", "hex", "bool", "null", "list", "dict"]
    kind = rng.choice(kinds if depth < 3 else kinds[:8])
    if kind == "int":
        return rng.randint(-300, 300)
    if kind == "bigint":
        return rng.choice([1, -1]) * rng.randrange(1 << rng.choice([31, 32, 53, 64, 200]))
    if kind == "float":
        return rng.uniform(-1e6, 1e6)
    if kind == "special":
        return rng.choice([float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 5e-324])
    if kind == "str":
        return "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x3000)]))
            for _ in range(rng.randrange(8))
        )
    if kind == "hex":
        text = rng.randbytes(rng.randrange(30)).hex()
        return rng.choice([text, text[:-1], text.upper(), text + "zz", " " + text])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [json_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {
        rng.choice(
            ["f", "rssi", "snr", "n", "h", "ack", "dl", "t", "v", "boot", "hello", "x"]
        ): json_value(rng, depth + 1)
        for _ in range(rng.randrange(4))
    }


def fuzz_lines(rng: random.Random, n: int, frames: list[bytes]) -> Iterator[Any]:
    for i in range(n):
        choice = i % 6
        if choice == 0:  # JSON objects with the fields present, absent or of any type
            obj = {
                key: json_value(rng) for key in ("f", "rssi", "snr", "n", "h") if rng.random() < 0.5
            }
            if rng.random() < 0.5:
                obj["f"] = rng.choice(frames).hex()
            # the members of one kind of host or session line, and now and then any other
            for key in rng.choice(LINE_SHAPES) + rng.choice([(), (), (), (rng.choice(MEMBERS),)]):
                obj[key] = rng.choice(
                    [rng.choice(EDGE_NUMBERS), rng.randrange(256), json_value(rng)]
                )
            yield json.dumps(obj)  # json.dumps writes NaN/Infinity, which json.loads accepts
        elif choice == 1:  # a valid line, damaged
            text = rng.choice(
                [
                    codec_line.encode_line(rng.choice(frames), rssi=-40, snr=7.25, n=i, hold_ms=i),
                    codec_line.encode_host_ack(i, rng.choice([None, rng.randrange(1 << 32)])),
                    codec_line.encode_downlink(rng.randrange(256), rng.randrange(256), i),
                    codec_line.encode_hello(rng.randrange(1 << 31)),
                    codec_line.encode_session(i, rng.choice([None, rng.randrange(1 << 31)])),
                ]
            )
            pos = rng.randrange(len(text) + 1)
            yield (
                text[:pos]
                + rng.choice(["", "}", "{", '"', "\\", "\\n", "\x00", "é", "\ud800"])
                + text[pos + rng.randrange(3) :]
            )
        elif choice == 2:  # raw bytes, often invalid UTF-8
            yield rng.choice([b"{", b""]) + rng.randbytes(rng.randrange(60))
        elif choice == 3:  # random text, sometimes looking like JSON
            yield rng.choice(["{", "", " {", "[", "\ufeff{"]) + "".join(
                chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(40))
            )
        elif choice == 4:  # deep nesting, huge numbers, long lines
            depth = rng.randrange(1, 2000)
            yield rng.choice(
                [
                    '{"f":' + "[" * depth + "]" * depth + "}",
                    '{"f":"00","n":' + "9" * rng.randrange(1, 5000) + "}",
                    '{"f":"' + "ab" * rng.randrange(200, 700) + '"}',
                    '{"f":"00","snr":1e' + str(rng.randrange(400)) + "}",
                ]
            )
        else:  # other Python types a caller might pass by mistake
            yield rng.choice(
                [
                    None,
                    12,
                    1.5,
                    ["{"],
                    {"f": "00"},
                    bytearray(b'{"f":"00"}'),
                    memoryview(b'{"f":"0g"}'),
                ]
            )
