"""Bastion: a self-hosted security gateway for enterprise use of LLMs."""

__version__ = "0.1.0"
