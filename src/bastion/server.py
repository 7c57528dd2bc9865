"""Running the gateway under uvicorn: configuration, first-run set-up, the listening socket."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import uvicorn

from bastion import __version__
from bastion.app import build_runtime, create_app
from bastion.errors import ConfigError
from bastion.logs import configure_logging
from bastion.settings import Settings, load_settings

log = logging.getLogger("bastion")

#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_SECONDS = 75


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _first_key(settings: Settings, rt_keys: object) -> str | None:
    """On the embedded default's first start, make an API key so the gateway can be tried at once."""
    from bastion.identity.apikeys import KeyStore

    assert isinstance(rt_keys, KeyStore)  # noqa: S101 - internal wiring
    if rt_keys.list(include_revoked=True):
        return None
    plaintext, _ = rt_keys.create("admin", name="first key (made at first start)")
    return plaintext


def run_server(config: str | None, *, host: str | None = None, port: int | None = None) -> None:
    """Load settings, build the gateway and serve until stopped."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        print(f"bastion: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.server.log_level, settings.server.log_format)
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    sock = _listen(host, port)
    bound_port = sock.getsockname()[1]
    # The real address, so that what the gateway says about itself (token issuer, MCP resource) is true.
    settings = settings.model_copy(update={"server": settings.server.model_copy(update={"host": host,
                                                                                        "port": bound_port})})
    try:
        runtime = build_runtime(settings, config)
    except ConfigError as exc:
        print(f"bastion: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    first = _first_key(settings, runtime.keys) if config is None else None
    app = create_app(settings, runtime)
    url = f"http://{host if ':' not in host else '[' + host + ']'}:{bound_port}"
    print(f"Bastion {__version__} listening on {url}", flush=True)
    print(f"  storage: {_describe_storage(settings)}", flush=True)
    print(f"  models: {', '.join(m.name for m in settings.models) or '(none)'}", flush=True)
    for note in runtime.startup_notes:
        print(f"  {note}", flush=True)
    if first:
        print("  A first API key was made for you. It is shown only this once:", flush=True)
        print(f"  {first}", flush=True)
        print(f"  Try: curl {url}/v1/chat/completions -H 'Authorization: Bearer {first}' "
              "-H 'Content-Type: application/json' "
              "-d '{\"model\": \"echo\", \"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}'", flush=True)
    server = uvicorn.Server(uvicorn.Config(
        app,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=True,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=int(settings.server.shutdown_grace_seconds),
        h11_max_incomplete_event_size=settings.server.max_header_bytes,
    ))
    server.run(sockets=[sock])


def _describe_storage(settings: Settings) -> str:
    url = settings.storage_url
    if url.startswith("sqlite"):
        return f"SQLite at {Path(url.split(':///', 1)[1])}"
    # Never print credentials that may be in the URL.
    tail = url.split("@", 1)[-1]
    return f"PostgreSQL at {tail}"
