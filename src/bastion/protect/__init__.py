"""Data protection: detection of sensitive data (``Scanner``) and, alongside, the actions on it.

``Scanner`` and ``ProtectionSettings`` are imported on first use, so importing a
sibling module (``bastion.protect.injection``) does not pull in the detectors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.protect.config import ProtectionSettings
    from bastion.protect.scanner import Scanner

__all__ = ["ProtectionSettings", "Scanner"]


def __getattr__(name: str) -> Any:
    if name == "Scanner":
        from bastion.protect.scanner import Scanner

        return Scanner
    if name == "ProtectionSettings":
        from bastion.protect.config import ProtectionSettings

        return ProtectionSettings
    raise AttributeError(name)
