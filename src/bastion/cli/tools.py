"""``bastion tools``: what a user may call, as the gateway would decide it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

tools_app = typer.Typer(help="Registered tools: who may call what.", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@tools_app.command("list")
def list_tools(
    config: str = typer.Option(..., "--config", "-c", help="Configuration file (YAML)."),
    as_user: str = typer.Option(None, "--as-user", help="Subject to decide for; omit to list every tool."),
    groups: str = typer.Option("", "--groups", help="Comma-separated groups of that user."),
    roles: str = typer.Option("", "--roles", help="Comma-separated roles of that user."),
    scopes: str = typer.Option("", "--scopes", help="Comma-separated scopes the user's token carries."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the tools ``--as-user`` may call (or that need an approval), with policy's reason."""
    from bastion.context import Principal
    from bastion.errors import ConfigError
    from bastion.policy.model import PolicyRequest
    from bastion.policy.store import PolicyStore
    from bastion.settings import load_settings
    from bastion.tools.registry import CALL_TOOL, ToolRegistry, scopes_with_roles
    from bastion.tools.tokens import user_scopes

    try:
        settings = load_settings(config)
        store = PolicyStore.from_settings(settings, Path(config))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    registry = ToolRegistry(settings.tools)
    rows = []
    if as_user is None:
        rows = [{**t.summary(), "decision": None} for t in registry]
    else:
        principal = Principal(subject=as_user, groups=_split(groups), roles=_split(roles),
                              attributes={"scopes": list(_split(scopes))})
        principal = scopes_with_roles(principal, settings.tools.proxy.role_scopes)
        held = user_scopes(principal)
        for tool in registry.visible_to(principal, store.engine):
            decision = store.engine.decide(PolicyRequest(principal, CALL_TOOL, tool.resource(), {}))
            needs_approval = decision.require_approval or tool.settings.action in settings.tools.proxy.approval_actions
            missing = sorted(set(tool.settings.scopes) - held)
            rows.append({**tool.summary(), "decision": "approval" if needs_approval else "allow",
                         "missing_scopes": missing, "policies": decision.policies})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no tools")
        return
    for r in rows:
        extra = ""
        if r.get("decision"):
            extra = f"  [{r['decision']}]"
            if r.get("missing_scopes"):
                extra += f" missing scopes: {' '.join(r['missing_scopes'])}"
        typer.echo(f"{r['name']:<28} {r['kind']:<5} {r['action']:<7} {r['risk']:<16} {r['owner']}{extra}")


def register(app: typer.Typer) -> None:
    """Add ``bastion tools`` to the main command."""
    app.add_typer(tools_app, name="tools")
