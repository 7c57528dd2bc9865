"""Run the example: ``python -m examples.hr_backend`` (settings from the environment)."""

from __future__ import annotations

import logging
import os

import uvicorn
from examples.hr_backend.app import create_app

from bastion.backend import BastionTokenVerifier


def main() -> None:
    """Start the HR service against a running Bastion's JWKS."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    bastion_url = os.environ.get("BASTION_URL", "http://127.0.0.1:8080").rstrip("/")
    verifier = BastionTokenVerifier(
        os.environ.get("HR_JWKS_URL", f"{bastion_url}/.well-known/jwks.json"),
        audience=os.environ.get("HR_AUDIENCE", "https://hr.example.internal"),
        issuer=os.environ.get("HR_ISSUER", bastion_url),
    )
    uvicorn.run(
        create_app(verifier),
        host=os.environ.get("HR_HOST", "127.0.0.1"),
        port=int(os.environ.get("HR_PORT", "8500")),
    )


if __name__ == "__main__":
    main()
