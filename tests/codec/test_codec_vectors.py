"""The worked examples of docs/protocol.md (tests/codec/vectors.json) against the codec,
and the document against the vectors."""

from __future__ import annotations

import re
from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest
from codec_docgen import DOC_PATH, airtime_ms, build_vectors, decode, describe, encode, render_table

import iiot_codec as codec
from iiot_codec import line as codec_line
from iiot_codec import settings as board_settings


def _key(hex_key: str | None) -> bytes | None:
    return bytes.fromhex(hex_key) if hex_key else None


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


def test_the_vectors_are_protocol_version_2(vectors: dict[str, Any]) -> None:
    assert vectors["version"] == codec.VERSION == 2
    for case in vectors["frames"] + vectors["decode_only"]:
        assert bytes.fromhex(case["hex"])[0] >> 6 == 2, case["name"]


def test_every_frame_vector_encodes_to_its_hex(vectors: dict[str, Any]) -> None:
    for case in vectors["frames"]:
        frame = encode(case["encode"])
        assert frame.hex() == case["hex"], case["name"]
        assert len(frame) == case["len"], case["name"]


def test_every_frame_vector_decodes_to_its_fields(vectors: dict[str, Any]) -> None:
    for case in vectors["frames"]:
        frame = bytes.fromhex(case["hex"])
        got = describe(decode(case["encode"], frame))
        assert got == case["decoded"], case["name"]
        assert codec.peek(frame) == (got["kind"], got["src"]), case["name"]
        # Every vector with a key verifies: the examples are what receivers accept.
        assert got["authenticated"] == bool(case["encode"].get("key")), case["name"]
    for case in vectors["decode_only"]:
        got = describe(codec.decode(bytes.fromhex(case["hex"])))
        assert got == case["decoded"], case["name"]


def test_error_vectors_raise_codec_error_with_their_reason(vectors: dict[str, Any]) -> None:
    for case in vectors["errors"]:
        frame = bytes.fromhex(case["hex"])
        with pytest.raises(codec.CodecError) as info:
            if case["fn"] == "decode_ack":
                codec.decode_ack(frame, key=_key(case["key"]), fcnt=case["fcnt"])
            else:
                codec.decode(frame, key=_key(case["key"]))
        assert info.value.reason == case["reason"], case["name"]
        assert str(info.value), case["name"]  # a message that says what is wrong


def test_line_vectors_encode_and_decode(vectors: dict[str, Any]) -> None:
    for case in vectors["lines"]:
        frame = bytes.fromhex(case["frame_hex"])
        text = codec_line.encode_line(
            frame, rssi=case["rssi"], snr=case["snr"], n=case["n"], hold_ms=case["hold_ms"]
        )
        assert text == case["line"], case["name"]
        parsed = codec_line.decode_line(case["line"] + "\n")
        assert parsed is not None
        assert (parsed.frame, parsed.rssi, parsed.snr, parsed.n, parsed.hold_ms) == (
            frame,
            case["rssi"],
            case["snr"],
            case["n"],
            case["hold_ms"],
        )


def test_console_lines_decode_to_none(vectors: dict[str, Any]) -> None:
    for text in vectors["console_lines"]:
        assert codec_line.decode_line(text) is None
        assert codec_line.decode_line(text.encode()) is None


def test_host_line_vectors(vectors: dict[str, Any]) -> None:
    kinds = set()
    for case in vectors["host_lines"]:
        spec = case["encode"]
        if spec["fn"] == "host_ack":
            assert codec.encode_host_ack(spec["n"], spec["boot"]) == case["line"]
            assert codec.decode_host_ack(case["line"] + "\r\n") == spec["n"]
            assert case["decoded"] == ["ack", spec["n"], spec["boot"]]
        elif spec["fn"] == "hello":
            assert codec.encode_hello(spec["nonce"]) == case["line"]
            assert case["decoded"] == ["hello", spec["nonce"]]
        else:
            assert codec.encode_downlink(spec["node"], spec["tag"], spec["value"]) == case["line"]
            assert case["decoded"] == ["dl", spec["node"], spec["tag"], spec["value"]]
        assert list(codec.decode_host_line(case["line"] + "\n") or ()) == case["decoded"]
        kinds.add((spec["fn"], spec.get("boot") is not None))
    assert {("hello", False), ("host_ack", True), ("host_ack", False), ("downlink", False)} <= kinds


def test_session_line_vectors(vectors: dict[str, Any]) -> None:
    assert {case["nonce"] is None for case in vectors["session_lines"]} == {True, False}
    for case in vectors["session_lines"]:
        assert codec.encode_session(case["boot"], case["nonce"]) == case["line"], case["name"]
        assert case["decoded"] == {"boot": case["boot"], "nonce": case["nonce"]}
        for text in (case["line"], case["line"] + "\r\n", (case["line"] + "\n").encode()):
            obj = codec.parse_object(text)
            assert obj is not None
            session = codec.session_from_object(obj)
            assert isinstance(session, codec.Session)
            assert (session.boot, session.nonce) == (case["boot"], case["nonce"])
        # Not a frame line: a reader that skips the session check gets "no_frame".
        with pytest.raises(codec.CodecError) as info:
            codec.decode_line(case["line"])
        assert info.value.reason == "no_frame"


def test_frame_lines_are_not_session_lines(vectors: dict[str, Any]) -> None:
    for case in vectors["lines"]:
        obj = codec.parse_object(case["line"])
        assert obj is not None and codec.session_from_object(obj) is None, case["name"]


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
    for case in vectors["lines"] + vectors["host_lines"] + vectors["session_lines"]:
        assert case["line"] in doc, case["name"]
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
    for name in codec.__all__:
        # Every public name is in section 5; functions and classes with their signature.
        value = getattr(codec, name)
        if isinstance(value, type):
            assert re.search(rf"^class {name}\b", api, re.MULTILINE), name
        elif callable(value):
            assert re.search(rf"^{name}\(", api, re.MULTILINE), name
        else:
            assert re.search(rf"`{name}`", api), name


def test_doc_lists_every_downlink_setting_with_its_range() -> None:
    doc = _doc()
    ranges = {row[0]: (row[3], row[4]) for row in board_settings.SETTINGS}
    for tag, name in board_settings.DOWNLINK:
        low, high = ranges[name]
        row = re.compile(rf"\|\s*`{tag}`\s*\|\s*`{name}`\s*\|[^|\n]*\b{low}\.\.{high}\b")
        assert row.search(doc), f"ACK option row for {name}"
    assert re.search(rf"\|\s*`{codec.OPT_RETRY_S}`\s*\|\s*`OPT_RETRY_S`", doc)


def test_the_package_exports_exactly_its_documented_api() -> None:
    # Every public name of the package but its submodules (and settings, a module of its
    # own: iiot_codec.settings) is in __all__, and __all__ holds nothing else.
    public = {
        name
        for name in dir(codec)
        if not name.startswith("_") and not isinstance(getattr(codec, name), ModuleType)
    }
    assert public == set(codec.__all__)
    assert "settings" not in codec.__all__


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
