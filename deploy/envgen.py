#!/usr/bin/env python3
"""Create or complete .env from .env.example, generating every secret (`make up` runs this).

- .env missing: copy .env.example, each value "generated-by-make-up" replaced by a fresh
  random secret; the file is created with mode 0600.
- .env present: keep every value; replace leftover placeholders (a hand-copied example) and
  append variables that .env.example gained since (an upgrade), with fresh secrets.

New secrets are printed once, so the user can note the Grafana password; they stay in .env.
Standard library only: `make up` must work before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import string
import sys
import tempfile
from pathlib import Path

PLACEHOLDER = "generated-by-make-up"
# Letters and digits only: the values go through a shell (`. ./.env`), compose interpolation,
# mosquitto_passwd arguments and URLs, none of which then need quoting.
ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 32  # about 190 bits
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def new_secret() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))


def parse(text: str) -> dict[str, str]:
    """KEY=value lines of an env file (comments and blank lines skipped)."""
    values = {}
    for line in text.splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def complete(example: str, current: str | None) -> tuple[str, dict[str, str]]:
    """The new .env text and the secrets generated for it."""
    generated: dict[str, str] = {}

    def fill(line: str) -> str:
        match = ASSIGNMENT.match(line.strip())
        if match and match.group(2) == PLACEHOLDER:
            generated[match.group(1)] = new_secret()
            return f"{match.group(1)}={generated[match.group(1)]}"
        return line

    if current is None:
        lines = [fill(line) for line in example.splitlines()]
        return "\n".join(lines) + "\n", generated

    lines = [fill(line) for line in current.splitlines()]
    have = parse(current)
    missing = [line for line in example.splitlines() if _key(line) not in (None, *have)]
    if missing:
        lines += ["", "# Added by `make up` from .env.example:"]
        lines += [fill(line) for line in missing]
    return "\n".join(lines) + "\n", generated


def _key(line: str) -> str | None:
    match = ASSIGNMENT.match(line.strip())
    return match.group(1) if match else None


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a file only the owner can read."""
    fd, tmp = tempfile.mkstemp(prefix=".env.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="create or complete .env with fresh secrets")
    parser.add_argument("--env", type=Path, default=Path(".env"))
    parser.add_argument("--example", type=Path, default=Path(".env.example"))
    args = parser.parse_args(argv)

    example = args.example.read_text(encoding="utf-8")
    current = args.env.read_text(encoding="utf-8") if args.env.exists() else None
    text, generated = complete(example, current)
    if current is not None and text == current:
        return 0
    write_private(args.env, text)
    verb = "created" if current is None else "updated"
    print(f"{verb} {args.env}")
    if generated:
        print("New secrets (shown once; they are stored in .env):")
        for key, value in generated.items():
            print(f"  {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
