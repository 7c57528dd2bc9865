"""Compile a hyperscan database in a child process: ``python -m bastion.protect.hscompile``.

The hyperscan compiler holds the GIL for seconds on Bastion's pattern set, which
would stall every other thread of the gateway. The scanner therefore runs this
module as a separate interpreter: expressions and flags go in on stdin (JSON),
the serialised database comes back on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bastion.errors import ConfigError

#: Longest time the child compiler may take, in seconds.
COMPILE_TIMEOUT_SECONDS = 300.0


def compile_in_child(inputs: list[tuple[bytes, int]], timeout: float = COMPILE_TIMEOUT_SECONDS) -> bytes:
    """The serialised database compiled by a child interpreter (ConfigError when it fails)."""
    payload = json.dumps([[expr.decode("latin-1"), flags] for expr, flags in inputs]).encode()
    try:
        proc = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-m", "bastion.protect.hscompile"], input=payload, capture_output=True,
            timeout=timeout, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"the hyperscan compiler process failed: {exc}") from None
    if proc.returncode != 0 or not proc.stdout:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"the hyperscan compiler process failed: {detail[0]}")
    return proc.stdout


def main() -> None:
    """Read expressions from stdin, write the serialised database to stdout."""
    from bastion.protect.engine import compile_database

    items = json.loads(sys.stdin.buffer.read())
    inputs = [(expr.encode("latin-1"), int(flags)) for expr, flags in items]
    sys.stdout.buffer.write(compile_database(inputs))


if __name__ == "__main__":
    main()
