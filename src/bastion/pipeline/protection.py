"""Building data protection once at start-up: detectors, injection model, actions, vault, output scan."""

from __future__ import annotations

from dataclasses import dataclass, field

from bastion.pipeline.protect import InspectStage, TransformStage
from bastion.protect.actions import Hasher
from bastion.protect.injection import InjectionDetector, build_detector
from bastion.protect.outputscan import ProtectOutput
from bastion.protect.scanner import Scanner
from bastion.protect.vault import Vault
from bastion.settings import Settings


@dataclass
class Protection:
    """The protection stages of one gateway, and what start-up should tell the operator."""

    scanner: Scanner
    inspect: InspectStage
    transform: TransformStage
    output: ProtectOutput
    vault: Vault
    injection: InjectionDetector | None = None
    notes: list[str] = field(default_factory=list)

    async def aclose(self) -> None:
        """Release the vault's connections."""
        await self.vault.close()


def build_protection(settings: Settings, secret: bytes) -> Protection:
    """Compile the detectors and build the stages; say plainly what is not active."""
    p = settings.protection
    scanner = Scanner.from_settings(p)
    injection = build_detector(p.injection) if p.injection.enabled else None
    hasher = Hasher(secret, p.actions.hash_chars)
    vault = Vault.from_settings(p.vault, secret)
    notes = [f"protection: pattern engine {scanner.engine}"]
    if scanner.ner_active:
        notes.append(f"protection: names and places by NER model {scanner.ner_model}")
    else:
        notes.append("protection: WARNING no NER model is installed; names and places are found by "
                     "heuristics only (install the 'ner' extra for better recall)")
    if injection is None:
        notes.append("protection: WARNING prompt-injection detection is disabled")
    return Protection(
        scanner=scanner,
        inspect=InspectStage(scanner.scan, injection, p),
        transform=TransformStage(scanner.scan, p, hasher=hasher, vault=vault),
        output=ProtectOutput(p.output, p.actions.output_policy(), scanner.scan, hasher=hasher),
        vault=vault,
        injection=injection,
        notes=notes,
    )
