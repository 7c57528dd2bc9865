"""Names the scanner has never seen, from many cultures and phrasings, with and without NER."""

from __future__ import annotations

from functools import cache

import pytest

from bastion.protect import ProtectionSettings, Scanner


@cache
def scanner(ner: str) -> Scanner:
    return Scanner.from_settings(ProtectionSettings(engine="python", ner={"mode": ner}))


def persons(sc: Scanner, text: str) -> list[str]:
    return [text[f.start : f.end] for f in sc.scan(text) if f.type == "PERSON"]


#: (text, the names in it). Written for these tests; none of it comes from the development set.
NAMES = [
    ("Dear Oluwaseun Adeyemi, your lab results are ready.", ["Oluwaseun Adeyemi"]),
    ("Patient: Zbigniew Brzęczyszczykiewicz, admitted 3 days ago.", ["Zbigniew Brzęczyszczykiewicz"]),
    ("The contract was signed by Nguyễn Thị Minh Khai yesterday.", ["Nguyễn Thị Minh Khai"]),
    ("Hi Siobhán, please send the deck to Rajesh Venkataraman.", ["Siobhán", "Rajesh Venkataraman"]),
    ("Escalated by Mr. Kwabena Owusu-Ansah to legal.", ["Mr. Kwabena Owusu-Ansah"]),
    ("Prescribed by Dr. Ayşe Yılmaz after the consult.", ["Dr. Ayşe Yılmaz"]),
    ("Kundin: Frau Annegret Schäfer-Kowalski, Termin am Montag.", ["Frau Annegret Schäfer-Kowalski"]),
    ("Paciente: María José García Márquez, alergia a penicilina.", ["María José García Márquez"]),
    ("Sehr geehrter Herr Dietrich, anbei die Rechnung.", ["Dietrich"]),
    ("Reviewed by Ingrid Lindqvist and Tomasz Wiśniewski.", ["Ingrid Lindqvist", "Tomasz Wiśniewski"]),
    ("Account holder: Hamid Reza Tehrani", ["Hamid Reza Tehrani"]),
    ("Thanks to Chidinma Okafor for the review.", ["Chidinma Okafor"]),
    ("Please book a call with Yuki Tanabe and Haruto Sato next week.", ["Yuki Tanabe", "Haruto Sato"]),
    ("Employee Ludmila Petrovna Ivanova requested leave.", ["Ludmila Petrovna Ivanova"]),
    ("full_name;city\nAroha Ngata;Wellington\nTāne Whakatau;Auckland\n", ["Aroha Ngata", "Tāne Whakatau"]),
    ("Approved by Prof. Jean-Baptiste Dufresne.", ["Prof. Jean-Baptiste Dufresne"]),
    ("Cardholder Mei-Ling Chua disputed the charge.", ["Mei-Ling Chua"]),
    ("Beneficiary: Abdulrahman bin Khalid Al-Farsi", ["Abdulrahman bin Khalid Al-Farsi"]),
    ("Customer 王伟 wrote in about a refund.", ["王伟"]),
    ("Patient: 김민준, admitted on Monday.", ["김민준"]),
    ("Dear محمد علي, thank you.", ["محمد علي"]),
    ("name,email\njohn smith,js@example.com\nmaría lópez,ml@example.com\n", ["john smith", "maría lópez"]),
    ("Bonjour, je m'appelle Élodie Marchand.", ["Élodie Marchand"]),
    ("Notes from the 1:1 with Priscila Gonçalves: she's doing great.", ["Priscila Gonçalves"]),
    ("Patient: Min-jun Park, seen by Dr. Park.", ["Min-jun Park", "Park"]),
    ("Pt. Name: Okafor, Chidi; DOB: 1980-02-29", ["Okafor, Chidi"]),
    ("Attendees: Haruka Nishimura (PM), Björn Eriksson (Eng), Fatima Zahra El Idrissi (Design)",
     ["Haruka Nishimura", "Björn Eriksson", "Fatima Zahra El Idrissi"]),
]

NOT_NAMES = [
    "What is the capital of Jordan, and how far is it from Paris?",
    "Summarise the Quarterly Business Review for Google Cloud in five bullets.",
    "The Golden Gate Bridge is in San Francisco.",
    "Explain the difference between TCP and UDP in Plain English.",
    "Deploy the Payment Service to Kubernetes on Monday.",
    "Write a Python function that validates ISBN-13 numbers.",
    "Plan a trip to Rio de Janeiro and Buenos Aires.",
    "Our new Customer Success Manager starts Monday.",
    "Explain the difference between UUIDv4 and ULIDs. Ref 4611609284025074, build 2.19.50.",
]


def _recall(sc: Scanner) -> float:
    hit = total = 0
    for text, names in NAMES:
        got = persons(sc, text)
        for name in names:
            total += 1
            hit += any(name in g or g in name and len(g) >= 0.8 * len(name) for g in got)
    return hit / total


def test_names_found_by_cues_without_ner() -> None:
    assert _recall(scanner("off")) >= 0.9


def test_names_found_with_ner_when_installed() -> None:
    sc = scanner("auto")
    if not sc.ner_active:
        pytest.skip("spaCy model not installed (pip install 'bastion-gateway[ner]')")
    assert _recall(sc) >= 0.9


@pytest.mark.parametrize("mode", ["off", "auto"])
@pytest.mark.parametrize("text", NOT_NAMES)
def test_capitalised_words_that_are_not_names(mode: str, text: str) -> None:
    assert persons(scanner(mode), text) == []


def test_ner_state_is_reported() -> None:
    assert scanner("off").ner_active is False
    sc = scanner("auto")
    assert isinstance(sc.ner_active, bool)
    assert (sc.ner_model is not None) == sc.ner_active
