"""``bastion policy``: validate policy files, run policy tests, explain a decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from bastion.policy.engine import PolicyEngine
    from bastion.settings import Settings

policy_app = typer.Typer(help="Policy as code: validate, test and explain Cedar policies.", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _settings(config: str | None) -> tuple[Settings, Path | None]:
    from bastion.errors import ConfigError
    from bastion.policy.config import resolve_paths
    from bastion.settings import load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    base = Path(config).parent if config else None
    return settings.model_copy(update={"policy": resolve_paths(settings.policy, base)}), base


def _engine(settings: Settings) -> PolicyEngine:
    from bastion.errors import ConfigError
    from bastion.policy.engine import PolicyEngine

    try:
        return PolicyEngine.load(settings.policy, providers=settings.providers)
    except ConfigError as exc:
        raise _fail(str(exc), 1) from None


def _json_arg(text: str, what: str) -> Any:
    raw = text
    if text.startswith("@"):
        try:
            raw = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise _fail(f"cannot read {what} file {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(f"--{what} is not valid JSON: {exc}") from None


@policy_app.command("validate")
def validate(
    files: Annotated[
        list[str] | None, typer.Argument(help="Policy files or folders (default: those the config names).")
    ] = None,
    config: str = typer.Option(None, "--config", "-c", help="Configuration file (YAML)."),
) -> None:
    """Check policy syntax and types against Bastion's schema; problems are shown as file:line."""
    from bastion.policy.engine import compile_settings

    settings, _ = _settings(config)
    policy = settings.policy
    if files:
        policy = policy.model_copy(update={"paths": list(files)})
    result = compile_settings(policy)
    if result.problems:
        for p in result.problems:
            typer.echo(str(p))
        raise _fail(f"{len(result.problems)} problem(s) found", 1)
    typer.echo(f"OK: {len(result.policies)} policies, version {result.version}")


@policy_app.command("test")
def test(
    cases_file: str = typer.Argument(..., metavar="CASES.yaml", help="The cases to run."),
    config: str = typer.Option(None, "--config", "-c", help="Configuration file (default: the cases file's)."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Run policy test cases; exits non-zero when any case fails."""
    from bastion.errors import ConfigError
    from bastion.policy.cases import read_cases, run_cases

    try:
        cases = read_cases(cases_file)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    cfg = config or (str(cases.config) if cases.config else None)
    settings, _ = _settings(cfg)
    engine = _engine(settings)
    results = run_cases(engine, cases.cases, list(settings.models))
    failed = [r for r in results if not r.passed]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "version": engine.version,
                    "passed": len(results) - len(failed),
                    "failed": len(failed),
                    "results": [r.to_json() for r in results],
                },
                indent=2,
            )
        )
    else:
        width = max([len(r.name) for r in results] + [4])
        typer.echo(f"{'RESULT':6}  {'CASE':{width}}  {'DECISION':8}  {'EFFECT':16}  POLICIES")
        for r in results:
            mark = "PASS" if r.passed else "FAIL"
            typer.echo(f"{mark:6}  {r.name:{width}}  {r.decision:8}  {r.effect:16}  {', '.join(r.policies)}")
            for f in r.failures:
                typer.echo(f"{'':6}  - {f}")
        typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed (policy version {engine.version})")
    if failed:
        raise typer.Exit(1)


@policy_app.command("explain")
def explain(
    principal: str = typer.Option(..., "--principal", help='Principal JSON (or @file), e.g. {"subject": "alice"}.'),
    request: str = typer.Option(..., "--request", help='Request JSON (or @file), e.g. {"model": "gpt-4o"}.'),
    config: str = typer.Option(None, "--config", "-c", help="Configuration file (YAML)."),
    as_json: bool = typer.Option(False, "--json", help='Print {"decision", "reasons", "policies", ...} as JSON.'),
) -> None:
    """Simulate one request and show the decision and every policy that matched."""
    from bastion.errors import BastionError
    from bastion.policy.simulate import principal_from_data, request_from_data

    settings, _ = _settings(config)
    engine = _engine(settings)
    try:
        who = principal_from_data(_json_arg(principal, "principal"))
        req = request_from_data(engine, who, _json_arg(request, "request"), list(settings.models))
        result = engine.explain(req)
    except BastionError as exc:
        raise _fail(exc.message) from None
    d = result.decision
    out = {
        "decision": "allow" if d.allowed else "deny",
        "effect": d.effect,
        "reasons": d.reasons,
        "policies": d.policies,
        "protection": d.protection,
        "reroute": d.reroute,
        "require_approval": d.require_approval,
        "version": d.version,
        "matched": [
            {"id": p.id, "effect": p.effect, "location": p.location, "reason": p.reason} for p in result.matched
        ],
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"decision: {out['decision']} ({d.effect})  policy version {d.version}")
    for pid, reason in zip(d.policies, d.reasons, strict=False):
        typer.echo(f"  by {pid}: {reason}")
    if d.reroute is not None:
        typer.echo(f"  reroute to: {', '.join(d.reroute)}")
    if d.protection:
        typer.echo("  protection: " + ", ".join(f"{k}={v}" for k, v in sorted(d.protection.items())))
    typer.echo("matched policies:" if result.matched else "no policy matched")
    for p in result.matched:
        typer.echo(f"  {p.id:40} {p.effect:16} {p.location}")


@policy_app.command("schema")
def schema() -> None:
    """Print the Cedar schema policies are validated against."""
    from bastion.policy.schema import SCHEMA_TEXT

    typer.echo(SCHEMA_TEXT.strip())


def register(app: typer.Typer) -> None:
    """Add the policy command group to ``app``."""
    app.add_typer(policy_app, name="policy")
