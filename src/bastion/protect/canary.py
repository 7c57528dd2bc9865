"""Canary tokens: a per-request marker in the system prompt that betrays a prompt leak.

The marker is placed as the system prompt's first line, written as a reference
code (``Ref: BSTN-7Q3K-M2XD-9PLA-H4WE``). A model that is talked into revealing
its instructions repeats them from the top, code included, so the code showing
up in an answer means the system prompt leaked. Matching tolerates the ways a
model re-types a code (case, spaces or no dashes), and a finding is raised only
for this request's own code: 80 random bits cannot appear by chance.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from bastion.context import Finding

#: ``RequestContext.state`` key of the request's canary.
CANARY_STATE = "protect.canary"
#: Finding type raised when the canary shows up in an answer.
LEAK_TYPE = "SYSTEM_PROMPT_LEAK"
_PREFIX = "BSTN"
_GROUPS = 4
_GROUP_CHARS = 4

# Base32 letters in four groups, with whatever separators a model may put between them.
_CODE = re.compile(
    r"(?<![A-Za-z0-9])BSTN[\s\-_:]{0,3}((?:[A-Z2-7]{4}[\s\-_]{0,2}){3}[A-Z2-7]{4})(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(r"[\s\-_]+")


class CanarySettings(BaseModel):
    """Whether system prompts carry a canary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Canary:
    """One request's canary code."""

    #: The 16 random base32 characters, upper case, without separators.
    core: str

    def __repr__(self) -> str:
        return "Canary(***)"

    @classmethod
    def new(cls) -> Canary:
        """A fresh random canary."""
        return cls(base64.b32encode(secrets.token_bytes(10)).decode())

    @property
    def code(self) -> str:
        """The code as written into the prompt: ``BSTN-XXXX-XXXX-XXXX-XXXX``."""
        groups = [self.core[i : i + _GROUP_CHARS] for i in range(0, len(self.core), _GROUP_CHARS)]
        return "-".join([_PREFIX, *groups])

    @property
    def line(self) -> str:
        """The first line put into the system prompt."""
        return f"Ref: {self.code}"

    def find(self, text: str) -> list[Finding]:
        """Findings for every place this canary appears in ``text``."""
        if len(text) < len(self.core):
            return []
        out: list[Finding] = []
        for m in _CODE.finditer(text):
            if _SEPARATORS.sub("", m.group(1)).upper() == self.core:
                out.append(
                    Finding(
                        type=LEAK_TYPE,
                        start=m.start(),
                        end=m.end(),
                        score=1.0,
                        detector="canary",
                        data_classes=("prompt_leak",),
                        explanation="this request's system-prompt canary appears in the answer",
                    )
                )
        return out

    def detector(self) -> Callable[[str], list[Finding]]:
        """A detector function for the output scanner."""
        return self.find


def insert_canary(messages: Sequence[Mapping[str, Any]], canary: Canary) -> list[dict[str, Any]]:
    """The messages with the canary as the first line of the system prompt (added if none)."""
    out = [dict(m) for m in messages]
    for message in out:
        if message.get("role") in ("system", "developer"):
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = canary.line + "\n" + content
                return out
            if isinstance(content, list):
                message["content"] = [{"type": "text", "text": canary.line}, *content]
                return out
    return [{"role": "system", "content": canary.line}, *out]
