"""Logging set-up, with a last-line filter that masks anything shaped like a credential."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from typing import Any

# Defence in depth: code never logs credentials, and this catches any that slip through.
_CREDENTIAL = re.compile(
    r"bst_[A-Za-z0-9_\-]{8,}"  # Bastion API keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*"  # bearer tokens
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"  # JWTs
    r"|sk-[A-Za-z0-9_\-]{8,}"  # provider keys
)


def mask_credentials(text: str) -> str:
    """Replace anything that looks like a key or token with a marker."""
    return _CREDENTIAL.sub("[credential]", text)


class CredentialFilter(logging.Filter):
    """Masks credentials in the final message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_credentials(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks can quote values: format them here so they pass the same mask.
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = mask_credentials(text.rstrip())
            record.exc_info = None
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Send Bastion's and the server's logs to stderr, masked, in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CredentialFilter())
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Migrations announce every step at INFO; only their problems belong in the gateway's log.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
