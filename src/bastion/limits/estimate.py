"""Estimates made before the provider answers: prompt tokens from characters, and prices."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bastion.limits.config import ModelPrice

#: Tokens a chat format adds around every message (role markers, separators).
TOKENS_PER_MESSAGE = 4
#: Characters read from one request when estimating; a body bigger than this is cut off
#: by the body-size limit long before, so this only bounds the walk.
MAX_ESTIMATE_CHARS = 64 * 1024 * 1024
#: Names of a model's price fields, in dollars per million tokens.
PRICE_INPUT_FIELD = "price_input_per_mtok"
PRICE_OUTPUT_FIELD = "price_output_per_mtok"


def _text_chars(value: Any) -> int:
    """Characters of text in a message content (a string or a list of typed parts)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        total = 0
        for part in value:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    total += len(text)
            elif isinstance(part, str):
                total += len(part)
        return total
    return 0


def prompt_chars(body: Mapping[str, Any]) -> tuple[int, int]:
    """Characters of prompt text and the number of messages (chat or embedding input)."""
    chars = 0
    count = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for m in messages:
            if not isinstance(m, dict):
                continue
            count += 1
            chars += _text_chars(m.get("content"))
            # Tool calls and their arguments are prompt text too when sent back.
            calls = m.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    fn = call.get("function") if isinstance(call, dict) else None
                    if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                        chars += len(fn["arguments"])
            if chars >= MAX_ESTIMATE_CHARS:
                break
    inp = body.get("input")
    if isinstance(inp, str):
        chars += len(inp)
        count += 1
    elif isinstance(inp, list):
        for item in inp:
            if isinstance(item, str):
                chars += len(item)
                count += 1
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        chars += len(prompt)
        count += 1
    return min(chars, MAX_ESTIMATE_CHARS), count


def estimate_prompt_tokens(body: Mapping[str, Any], chars_per_token: float) -> int:
    """Prompt tokens estimated from characters, rounded up, plus the per-message overhead."""
    chars, count = prompt_chars(body)
    return math.ceil(chars / chars_per_token) + TOKENS_PER_MESSAGE * count


def requested_completion_tokens(body: Mapping[str, Any], default: int) -> int:
    """Completion tokens the caller allowed (max_completion_tokens / max_tokens), or the default."""
    for field in ("max_completion_tokens", "max_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    if isinstance(body.get("input"), (str, list)) and "messages" not in body:
        return 0  # embeddings produce no completion tokens
    return default


def chars_to_tokens(chars: int, chars_per_token: float) -> int:
    """Tokens for a count of streamed characters, rounded up."""
    return math.ceil(max(0, chars) / chars_per_token)


def cost_micro_usd(price: ModelPrice, prompt_tokens: int, completion_tokens: int) -> int:
    """What a call costs in micro-dollars, rounded up ($1 per Mtok is 1 micro-dollar a token)."""
    raw = prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok
    # Trim float noise first so that exact prices do not round up by a whole micro-dollar.
    return max(0, math.ceil(round(raw, 6)))


def prices_from_models(models: Any) -> dict[str, ModelPrice]:
    """Per-model prices from the models' price_*_per_mtok fields; unpriced ones left out."""
    prices: dict[str, ModelPrice] = {}
    for m in models:
        inp = getattr(m, PRICE_INPUT_FIELD, None)
        out = getattr(m, PRICE_OUTPUT_FIELD, None)
        if inp is None and out is None:
            continue
        prices[m.name] = ModelPrice(
            input_per_mtok=float(inp or 0.0), output_per_mtok=float(out or 0.0)
        )
    return prices
