"""``bastion keys``: make, revoke and list API keys."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from bastion.errors import BastionError, ConfigError

_CONFIG_HELP = "Configuration file (YAML); without it, the embedded defaults."


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fail(message: str) -> typer.Exit:
    print(f"bastion: {message}", file=sys.stderr)
    return typer.Exit(2)


@contextmanager
def _store(config: str | None) -> Iterator[object]:
    from bastion.identity.apikeys import KeyStore
    from bastion.settings import load_settings
    from bastion.storage import open_database

    try:
        settings = load_settings(config)
        db = open_database(settings.storage_url, pool_size=1, timeout=settings.storage.timeout_seconds)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    try:
        yield KeyStore(db, refresh_seconds=settings.identity.api_keys.refresh_seconds)
    except BastionError as exc:
        raise _fail(exc.message) from None
    finally:
        db.close()


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def register(app: typer.Typer) -> None:
    """Add the keys command group to ``app``."""
    keys = typer.Typer(help="Make, revoke and list API keys.", no_args_is_help=True)
    app.add_typer(keys, name="keys")

    @keys.command("create")
    def create(
        owner: str = typer.Option(..., "--owner", help="Who the key belongs to (a user or a service name)."),
        config: str = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        service: bool = typer.Option(False, "--service", help="The owner is a service, not a person."),
        models: str = typer.Option(None, "--models", help="Comma-separated models the key may use (default: any)."),
        expires: str = typer.Option("never", "--expires", help="Lifetime: 30d, 12h, 90m, 2w or never."),
        name: str = typer.Option(None, "--name", help="A label to recognise the key by."),
        tenant: str = typer.Option(None, "--tenant", help="The tenant the key acts in."),
        groups: str = typer.Option(None, "--groups", help="Comma-separated groups of the principal."),
        roles: str = typer.Option(None, "--roles", help="Comma-separated roles of the principal."),
    ) -> None:
        """Make a key; the key is printed once, alone on the last line."""
        from bastion.identity.apikeys import KeyStore, parse_duration

        with _store(config) as store:
            assert isinstance(store, KeyStore)  # noqa: S101 - narrows the type for checkers
            plaintext, rec = store.create(
                owner,
                owner_kind="service" if service else "user",
                models=_split(models),
                expires_in=parse_duration(expires),
                name=name,
                tenant=tenant,
                groups=_split(groups) or (),
                roles=_split(roles) or (),
            )
        allowed = ", ".join(rec.models) if rec.models is not None else "any"
        print(f"Created API key {rec.id} for {rec.owner_kind} {rec.owner!r}")
        print(f"  models: {allowed}; expires: {_when(rec.expires_at)}")
        print("  The key is shown only this once; store it now:")
        print(plaintext)

    @keys.command("revoke")
    def revoke(
        key_id: str = typer.Argument(..., help="The key's id (key_...), as shown by 'bastion keys list'."),
        config: str = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
    ) -> None:
        """Revoke a key; every gateway sharing the database refuses it within seconds."""
        from bastion.identity.apikeys import KeyStore

        with _store(config) as store:
            assert isinstance(store, KeyStore)  # noqa: S101 - narrows the type for checkers
            rec = store.revoke(key_id)
        print(f"Revoked API key {rec.id} of {rec.owner!r} at {_when(rec.revoked_at)}")

    @keys.command("list")
    def list_keys(
        config: str = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
        include_revoked: bool = typer.Option(False, "--all", help="Include revoked keys."),
    ) -> None:
        """List keys (never their secrets)."""
        from bastion.identity.apikeys import KeyStore

        with _store(config) as store:
            assert isinstance(store, KeyStore)  # noqa: S101 - narrows the type for checkers
            records = store.list(include_revoked=include_revoked)
        if as_json:
            print(json.dumps([r.to_public() for r in records], indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"API keys ({len(records)})")
        for column in ("id", "prefix", "owner", "kind", "name", "models", "status", "expires"):
            table.add_column(column, no_wrap=column in ("id", "prefix"))
        for r in records:
            table.add_row(
                r.id,
                r.prefix + "...",
                r.owner,
                r.owner_kind,
                r.name or "",
                ", ".join(r.models) if r.models is not None else "any",
                r.status(),
                _when(r.expires_at),
            )
        Console().print(table)
