"""A process that appends audit events from many tasks and prints each one once committed.

Usage: python -m tests.support.audit_crash_writer URL KEYFILE --workers N [--count N] [--prefix P]

Each acknowledged event is printed as ``<seq> <request_id>`` and flushed at once, so a
parent that kills this process knows exactly which events were acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bastion.audit.events import make_event
from bastion.audit.signing import AuditSigner
from bastion.audit.writer import AuditLog
from bastion.settings import AuditSettings
from bastion.storage import open_database


async def _main(args: argparse.Namespace) -> None:
    db = open_database(args.url)
    signer = AuditSigner.load_or_create(args.keyfile)
    log = AuditLog(
        db,
        signer,
        AuditSettings.model_validate({"checkpoint_every": args.checkpoint_every, "commit_timeout_seconds": 30}),
    )
    await log.start()
    counter = iter(range(10**9))
    out = sys.stdout

    async def worker(w: int) -> None:
        while True:
            i = next(counter)
            if args.count and i >= args.count:
                return
            rid = f"{args.prefix}-{w}-{i}"
            seq = await log.append(make_event("test", request_id=rid, payload="x" * (i % 50)))
            out.write(f"{seq} {rid}\n")
            out.flush()

    await asyncio.gather(*(worker(w) for w in range(args.workers)))
    await log.stop()
    db.close()
    out.write("DONE\n")
    out.flush()


def main() -> None:
    """Parse arguments and run until killed (or until --count events are written)."""
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("keyfile")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--prefix", default="crash")
    p.add_argument("--checkpoint-every", type=int, default=25)
    asyncio.run(_main(p.parse_args()))


if __name__ == "__main__":
    main()
