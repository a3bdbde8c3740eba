"""Per-node MIC keys from a TOML file (``--keys FILE``).

    # one line per node: node name (or its numeric id) = 32 hex digits (16 bytes)
    node1 = "000102030405060708090a0b0c0d0e0f"
    3 = "00112233445566778899aabbccddeeff"

A ``[keys]`` table holding the same lines is accepted too. A node with a key must send
frames with a valid MIC; nodes without one are accepted unauthenticated.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from iiot_codec import KEY_LEN


class KeysError(ValueError):
    """The keys file cannot be read or holds an invalid entry."""


_NODE = re.compile(r"^(?:node)?(\d{1,3})$")


def parse_keys(text: str, origin: str = "keys file") -> dict[int, bytes]:
    """Node id -> 16-byte key from the TOML ``text``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise KeysError(f"{origin}: not valid TOML ({err})") from err
    table = data.get("keys", data) if isinstance(data.get("keys"), dict) else data
    keys: dict[int, bytes] = {}
    for name, value in table.items():
        match = _NODE.match(str(name))
        if not match or not 0 < int(match.group(1)) <= 255:
            raise KeysError(f"{origin}: {name!r} is not a node name (node1 .. node255)")
        if not isinstance(value, str):
            raise KeysError(f"{origin}: the key of {name} must be a hex string")
        try:
            key = bytes.fromhex(value)
        except ValueError as err:
            raise KeysError(f"{origin}: the key of {name} is not hex") from err
        if len(key) != KEY_LEN:
            raise KeysError(
                f"{origin}: the key of {name} has {len(key)} bytes, a key has {KEY_LEN}"
            )
        keys[int(match.group(1))] = key
    return keys


def load_keys(path: Path) -> dict[int, bytes]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as err:
        raise KeysError(f"cannot read the keys file {path}: {err}") from err
    return parse_keys(text, str(path))
