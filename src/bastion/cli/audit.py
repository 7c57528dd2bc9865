"""``bastion audit``: check the audit chain and export its events."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from bastion.settings import Settings
    from bastion.storage import Database

#: Below this many events no progress bar is drawn: it would only flicker.
PROGRESS_MIN_EVENTS = 5000

#: Exit codes of ``bastion audit verify``.
EXIT_OK, EXIT_TAMPERED, EXIT_ERROR = 0, 1, 2

audit_app = typer.Typer(help="Check and export the tamper-evident audit trail.", no_args_is_help=True)


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr when it is a terminal and the job is long; else nothing."""
    if total < PROGRESS_MIN_EVENTS or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _open(config: str | None) -> tuple[Settings, Database]:
    from bastion.errors import ConfigError
    from bastion.settings import load_settings
    from bastion.storage import open_database

    try:
        settings = load_settings(config)
        db = open_database(
            settings.storage_url,
            pool_size=settings.storage.pool_size,
            timeout=settings.storage.timeout_seconds,
        )
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    return settings, db


def _trusted_keys(settings: Settings) -> list[Ed25519PublicKey]:
    """The local checkpoint key (public half) plus the keys the settings list."""
    from bastion.audit.signing import load_public_key, public_path_for
    from bastion.errors import ConfigError

    local = settings.data_path / "audit-signing.key"
    paths: list[Path] = []
    if public_path_for(local).exists():
        paths.append(public_path_for(local))
    elif local.exists():
        paths.append(local)
    paths.extend(Path(p).expanduser() for p in settings.audit.trusted_public_keys)
    try:
        return [load_public_key(p) for p in paths]
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None


@audit_app.command("verify")
def verify(
    config: str = typer.Option(None, "--config", "-c", help="Configuration file (YAML)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check every event and checkpoint; exit 1 naming the first bad event if tampered with."""
    from sqlalchemy.exc import SQLAlchemyError

    from bastion.audit.verify import count_all, verify_chain

    settings, db = _open(config)
    try:
        keys = _trusted_keys(settings)
        with _progress("verifying", count_all(db)) as advance:
            report = verify_chain(db, keys, progress=advance)
    except SQLAlchemyError as exc:
        # A store that cannot be read is not a verdict on the chain: say so, with its own exit code.
        typer.echo(f"error: cannot read the audit tables ({type(exc).__name__})", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    finally:
        db.close()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    elif report.problem is None:
        typer.echo(
            f"ok: {report.events_checked} events, {report.checkpoints_checked} signed checkpoints, "
            f"last seq {report.last_seq}, {report.unsigned_events} events after the last checkpoint"
        )
    else:
        p = report.problem
        typer.echo(f"TAMPERED: {p.kind} at seq {p.seq} (request {p.request_id or '-'}): {p.detail}")
        typer.echo(f"{report.events_checked} events verified before it.")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_TAMPERED)


@audit_app.command("export")
def export(
    config: str = typer.Option(None, "--config", "-c", help="Configuration file (YAML)."),
    since: str = typer.Option(None, "--since", help="From this time (ISO-8601 or epoch seconds), inclusive."),
    until: str = typer.Option(None, "--until", help="Up to this time (ISO-8601 or epoch seconds), exclusive."),
    output: str = typer.Option(None, "--output", "-o", help="File to write; standard output if omitted."),
) -> None:
    """Write audit events as JSON Lines, in chain order."""
    from sqlalchemy.exc import SQLAlchemyError

    from bastion.audit.export import count_events, export_events, parse_time

    try:
        lo = parse_time(since) if since else None
        hi = parse_time(until) if until else None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    _, db = _open(config)
    try:
        total = count_events(db, since=lo, until=hi)
        sink: TextIO
        with open(output, "w", encoding="utf-8") if output else nullcontext(sys.stdout) as sink:  # noqa: SIM115
            with _progress("exporting", total if output else 0) as advance:
                n = export_events(db, sink, since=lo, until=hi, progress=advance)
    except SQLAlchemyError as exc:
        typer.echo(f"error: cannot read the audit tables ({type(exc).__name__})", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    finally:
        db.close()
    if output:
        typer.echo(f"{n} events written to {output}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to ``app``."""
    app.add_typer(audit_app, name="audit")
