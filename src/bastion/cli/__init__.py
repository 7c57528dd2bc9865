"""The ``bastion`` command. Each group of subcommands lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="bastion",
    help="Bastion: a security gateway between your people, the LLMs they use and your tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported here so that importing bastion.cli has no side effects beyond building the app.
    from bastion.cli import serve

    serve.register(app)
    __import__("bastion.cli.audit", fromlist=["register"]).register(app)
    __import__("bastion.cli.keys", fromlist=["register"]).register(app)
    __import__("bastion.cli.policy", fromlist=["register"]).register(app)
    __import__("bastion.cli.scan", fromlist=["register"]).register(app)
    __import__("bastion.cli.tools", fromlist=["register"]).register(app)
    __import__("bastion.cli.approvals", fromlist=["register"]).register(app)


def main() -> None:
    """Entry point of the ``bastion`` console script."""
    _register()
    app()
