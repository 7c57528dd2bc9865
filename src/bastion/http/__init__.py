"""HTTP routes: the OpenAI-compatible API and the operations endpoints."""
