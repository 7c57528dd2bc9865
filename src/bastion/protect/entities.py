"""The entity types Bastion detects and the data classes each belongs to (one table)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

PII, PHI, PCI, CREDENTIALS, FINANCIAL = "pii", "phi", "pci", "credentials", "financial"

#: Entity type -> data classes. Policy chooses actions by these classes.
ENTITY_CLASSES: Final = MappingProxyType(
    {
        "PERSON": (PII,),
        "EMAIL_ADDRESS": (PII,),
        "PHONE_NUMBER": (PII,),
        "US_SSN": (PII,),
        "CREDIT_CARD": (PCI, FINANCIAL),
        "IBAN_CODE": (FINANCIAL, PII),
        "IP_ADDRESS": (PII,),
        "MEDICAL_RECORD_NUMBER": (PHI, PII),
        "SECRET": (CREDENTIALS,),
        "US_ITIN": (PII, FINANCIAL),
        "US_PASSPORT": (PII,),
        "US_BANK_NUMBER": (FINANCIAL, PII),
        "ABA_ROUTING_NUMBER": (FINANCIAL,),
        "DATE_OF_BIRTH": (PII, PHI),
        "LOCATION": (PII,),
        "NPI": (PHI,),
        "UK_NHS": (PHI, PII),
        "NATIONAL_ID": (PII,),
        "TAX_ID": (PII, FINANCIAL),
        "CRYPTO": (FINANCIAL,),
    }
)


def data_classes_of(entity_type: str) -> tuple[str, ...]:
    """The data classes of a built-in type; unknown types are treated as PII (fail closed)."""
    return ENTITY_CLASSES.get(entity_type, (PII,))
