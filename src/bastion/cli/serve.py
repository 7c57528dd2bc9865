"""``bastion serve``: run the gateway."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the serve command to ``app``."""

    @app.command()
    def serve(
        config: str = typer.Option(None, "--config", "-c", help="Configuration file (YAML)."),
        host: str = typer.Option(None, "--host", help="Address to listen on."),
        port: int = typer.Option(None, "--port", help="Port to listen on (0 picks a free one)."),
    ) -> None:
        """Start the gateway; with no --config, the embedded defaults (SQLite, offline echo model)."""
        from bastion.server import run_server

        run_server(config, host=host, port=port)
