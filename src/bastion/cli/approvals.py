"""``bastion approvals``: list, approve and deny held tool calls on a running gateway (its admin API)."""

from __future__ import annotations

import json
import os
from typing import Any

import typer

approvals_app = typer.Typer(help="Held tool calls: list, approve, deny (against a running gateway).",
                            no_args_is_help=True)

#: Seconds to wait on the gateway.
HTTP_TIMEOUT_SECONDS = 15.0
#: Environment variable read when ``--key`` is not given (keeps the key out of shell history).
KEY_ENV = "BASTION_API_KEY"

_URL = typer.Option("http://127.0.0.1:8080", "--url", help="The gateway's URL.")
_KEY = typer.Option(None, "--key", help=f"A reviewer's API key or token (default: ${KEY_ENV}).")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _request(method: str, url: str, key: str | None, path: str, **kw: Any) -> Any:
    import httpx

    credential = key or os.environ.get(KEY_ENV)
    if not credential:
        raise _fail(f"give --key or set {KEY_ENV}", 2)
    try:
        resp = httpx.request(method, url.rstrip("/") + path, headers={"Authorization": f"Bearer {credential}"},
                             timeout=HTTP_TIMEOUT_SECONDS, trust_env=False, **kw)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {url}: {type(exc).__name__}") from None
    try:
        body = resp.json()
    except ValueError:
        raise _fail(f"the gateway answered {resp.status_code} without JSON") from None
    if resp.status_code >= 400:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        raise _fail(f"refused ({resp.status_code} {err.get('code')}): {err.get('message')}")
    return body


@approvals_app.command("list")
def list_approvals(
    url: str = _URL,
    key: str = _KEY,
    state: str = typer.Option("pending", "--state", help="pending, approved, denied, expired, done, ... or all."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List approval requests (pending ones by default)."""
    params = {} if state == "all" else {"state": state}
    data = _request("GET", url, key, "/admin/approvals", params=params)["data"]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    if not data:
        typer.echo("no requests")
    for a in data:
        args = json.dumps(a["arguments"], sort_keys=True)
        typer.echo(f"{a['id']}  {a['state']:<9} {a['tool']:<24} by {a['requester']:<20} {args[:80]}  {a['reason']}")


def _decide(verb: str, url: str, key: str | None, approval_id: str, comment: str) -> None:
    body = _request("POST", url, key, f"/admin/approvals/{approval_id}/{verb}", json={"comment": comment})
    approval = body["approval"]
    typer.echo(f"{approval['id']} {approval['state']} by {approval['decided_by']}")


@approvals_app.command("approve")
def approve(
    approval_id: str = typer.Argument(..., help="The request's id (apr_...)."),
    comment: str = typer.Option("", "--comment", "-m", help="Why (kept in the audit trail)."),
    url: str = _URL,
    key: str = _KEY,
) -> None:
    """Approve a pending request (never one of your own)."""
    _decide("approve", url, key, approval_id, comment)


@approvals_app.command("deny")
def deny(
    approval_id: str = typer.Argument(..., help="The request's id (apr_...)."),
    comment: str = typer.Option(..., "--comment", "-m", help="Why (required, shown to the requester)."),
    url: str = _URL,
    key: str = _KEY,
) -> None:
    """Deny a pending request with a reason."""
    _decide("deny", url, key, approval_id, comment)


def register(app: typer.Typer) -> None:
    """Add ``bastion approvals`` to the main command."""
    app.add_typer(approvals_app, name="approvals")
