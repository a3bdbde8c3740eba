"""The worked examples of docs/protocol.md (tests/codec/vectors.json) against the codec,
and the document against the vectors."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import pytest
from codec_docgen import DOC_PATH, airtime_ms, build_vectors, describe, render_table

import iiot_codec as codec
from iiot_codec import line as codec_line


def _key(hex_key: str | None) -> bytes | None:
    return bytes.fromhex(hex_key) if hex_key else None


def _encode(args: dict[str, Any]) -> bytes:
    args = dict(args)
    fn = args.pop("fn")
    if fn == "ack":
        return codec.encode_ack(**args)
    key = _key(args.pop("key", None))
    if fn == "stats":
        return codec.encode_stats(key=key, **args)
    return codec.encode_telemetry(key=key, **args)


def test_crc_check_value() -> None:
    assert codec.crc16(b"123456789") == 0x29B1


def test_crc_of_the_earlier_firmware_frame() -> None:
    assert codec.crc16(bytes.fromhex("01a204ff2df3d515")) == 0x9383


def test_crc_vectors(vectors: dict[str, Any]) -> None:
    for case in vectors["crc"]:
        assert codec.crc16(bytes.fromhex(case["data_hex"])) == case["crc"]


def test_crc_of_empty_input_is_the_init_value() -> None:
    assert codec.crc16(b"") == 0xFFFF


def test_crc_detects_every_single_bit_flip() -> None:
    data = bytes.fromhex("48010004d21f9c2c8c29cd9706b3931ce419")
    want = codec.crc16(data)
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        assert codec.crc16(flipped) != want


def test_every_frame_vector_encodes_to_its_hex(vectors: dict[str, Any]) -> None:
    for case in vectors["frames"]:
        frame = _encode(case["encode"])
        assert frame.hex() == case["hex"], case["name"]
        assert len(frame) == case["len"], case["name"]


def test_every_frame_vector_decodes_to_its_fields(vectors: dict[str, Any]) -> None:
    for case in vectors["frames"] + vectors["decode_only"]:
        key = _key(case.get("encode", {}).get("key"))
        got = describe(codec.decode(bytes.fromhex(case["hex"]), key=key))
        assert got == case["decoded"], case["name"]


def test_error_vectors_raise_codec_error_with_their_reason(vectors: dict[str, Any]) -> None:
    for case in vectors["errors"]:
        with pytest.raises(codec.CodecError) as info:
            codec.decode(bytes.fromhex(case["hex"]), key=_key(case["key"]))
        assert info.value.reason == case["reason"], case["name"]
        assert str(info.value), case["name"]  # a message that says what is wrong


def test_line_vectors_encode_and_decode(vectors: dict[str, Any]) -> None:
    for case in vectors["lines"]:
        frame = bytes.fromhex(case["frame_hex"])
        text = codec_line.encode_line(frame, rssi=case["rssi"], snr=case["snr"], n=case["n"])
        assert text == case["line"], case["name"]
        parsed = codec_line.decode_line(case["line"] + "\n")
        assert parsed is not None
        assert (parsed.frame, parsed.rssi, parsed.snr, parsed.n) == (
            frame,
            case["rssi"],
            case["snr"],
            case["n"],
        )


def test_console_lines_decode_to_none(vectors: dict[str, Any]) -> None:
    for text in vectors["console_lines"]:
        assert codec_line.decode_line(text) is None
        assert codec_line.decode_line(text.encode()) is None


def test_host_ack_vector(vectors: dict[str, Any]) -> None:
    case = vectors["host_ack"]
    assert codec_line.encode_host_ack(case["n"]) == case["line"]
    assert codec_line.decode_host_ack(case["line"] + "\r\n") == case["n"]


def test_vectors_file_is_what_the_generator_writes(vectors: dict[str, Any]) -> None:
    # The generator encodes with the codec; if this fails but the vector tests above pass,
    # the examples in codec_docgen.py were edited without `codec_docgen.py --write`.
    assert build_vectors() == vectors


# --- the document against the vectors ---------------------------------------------------


def _doc() -> str:
    return DOC_PATH.read_text(encoding="utf-8")


def _all_vector_hex(vectors: dict[str, Any]) -> set[str]:
    found = {c["hex"] for c in vectors["frames"] + vectors["decode_only"] + vectors["errors"]}
    found |= {c["frame_hex"] for c in vectors["lines"]}
    found |= {c["data_hex"] for c in vectors["crc"]}
    found |= {vectors["key"]} | {c["key"] for c in vectors["errors"] if c["key"]}
    return found


def test_every_hex_frame_in_the_doc_is_a_vector(vectors: dict[str, Any]) -> None:
    # Hex runs of 14+ digits (a 7-byte frame or longer) in the document are frames.
    in_doc = set(re.findall(r"(?<![0-9a-fA-F])[0-9a-f]{14,}(?![0-9a-fA-F])", _doc()))
    assert in_doc, "no hex frames found in docs/protocol.md"
    assert in_doc - _all_vector_hex(vectors) == set()


def test_every_worked_example_appears_in_the_doc(vectors: dict[str, Any]) -> None:
    doc = _doc()
    for case in vectors["frames"] + vectors["decode_only"]:
        assert case["hex"] in doc, case["name"]
    for case in vectors["lines"]:
        assert case["line"] in doc, case["name"]
    assert vectors["host_ack"]["line"] in doc
    assert vectors["key"] in doc


def test_doc_size_and_airtime_table_is_current(vectors: dict[str, Any]) -> None:
    assert render_table(vectors) in _doc(), "run: python tests/codec/codec_docgen.py"


def test_doc_names_every_metric_with_its_unit_and_resolution() -> None:
    doc = _doc()
    for metric_id, name, unit, decimals, signed in codec.ROWS:
        resolution = "1" if decimals == 0 else "0." + "0" * (decimals - 1) + "1"
        row = re.compile(
            rf"\|\s*{metric_id}\s*\|\s*`?{name}`?\s*\|\s*{unit}\s*\|\s*{resolution}\s*\|"
            rf"\s*{'yes' if signed else 'no'}\s*\|"
        )
        assert row.search(doc), f"metric table row for {name}"


def test_doc_documents_every_public_api_name() -> None:
    api = _doc().split("## 5. Public API", 1)[1].split("## 6.", 1)[0]
    for name in (
        "crc16",
        "encode_telemetry",
        "encode_stats",
        "encode_ack",
        "decode",
        "classify",
        "encode_line",
        "decode_line",
        "parse_object",
        "line_from_object",
        "encode_host_ack",
        "decode_host_ack",
        "format_value",
        "metric",
        "CodecError",
    ):
        # Each is documented with its signature (or class line) in section 5.
        assert re.search(rf"^(class )?{name}\(", api, re.MULTILINE), name


# --- time on air ---------------------------------------------------------------------------


def test_airtime_formula_matches_the_published_lorawan_figures() -> None:
    # The well-known LoRaWAN airtime table: a 12-byte application payload is a 25-byte PHY
    # payload; preamble 8, explicit header, CRC on: 61.7 ms at SF7, 205.8 ms at SF9 (BW125).
    assert airtime_ms(25, 7, preamble=8) == Fraction(61696, 1000)
    assert airtime_ms(25, 9, preamble=8) == Fraction(205824, 1000)
    # SF12 needs low data rate optimisation (symbol time 32.8 ms): 1482.8 ms.
    assert airtime_ms(25, 12, preamble=8) == Fraction(1482752, 1000)


def test_airtime_grows_in_steps_of_whole_symbol_groups() -> None:
    # At SF7/CR4-5 every 4*(SF)/8 = 3.5 bytes add 5 symbols, so 20 and 22 bytes cost the same.
    assert airtime_ms(20, 7) == airtime_ms(22, 7)
    assert airtime_ms(24, 7) - airtime_ms(20, 7) == 5 * Fraction(1024, 1000)
