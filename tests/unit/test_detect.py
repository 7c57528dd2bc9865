"""Table-driven detector tests: every entity type has matching and non-matching cases."""

from __future__ import annotations

from functools import cache

import pytest

from bastion.protect import ProtectionSettings, Scanner
from bastion.protect.entities import ENTITY_CLASSES


@cache
def scanner() -> Scanner:
    return Scanner(ProtectionSettings(engine="python", ner={"mode": "off"}))


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start : f.end]) for f in scanner().scan(text)]


MATCHING = [
    ("Pay with card 4111 1111 1111 1111 today", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("amex 378282246310005.", "CREDIT_CARD", "378282246310005"),
    ("card 5500-0055-5555-5559 exp 12/28", "CREDIT_CARD", "5500-0055-5555-5559"),
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    ("to GB82WEST12345698765432 by friday", "IBAN_CODE", "GB82WEST12345698765432"),
    ("SSN 536-22-1234 on file", "US_SSN", "536-22-1234"),
    ("social security number: 536221234", "US_SSN", "536221234"),
    ("ITIN 912-70-1234 for the filing", "US_ITIN", "912-70-1234"),
    ("routing number 021000021", "ABA_ROUTING_NUMBER", "021000021"),
    ("bank account number 123456789012", "US_BANK_NUMBER", "123456789012"),
    ("NPI 1234567893 for the prescriber", "NPI", "1234567893"),
    ("NHS number 943 476 5919", "UK_NHS", "943 476 5919"),
    ("Passport No. C03005988", "US_PASSPORT", "C03005988"),
    ("MRN: 12345678", "MEDICAL_RECORD_NUMBER", "12345678"),
    ("medical record no. A1234567 attached", "MEDICAL_RECORD_NUMBER", "A1234567"),
    ("MRN: 00A12345", "MEDICAL_RECORD_NUMBER", "00A12345"),
    ("Call me on (+44) 20 7946 0958", "PHONE_NUMBER", "(+44) 20 7946 0958"),
    ("her account 000123456789 is overdrawn", "US_BANK_NUMBER", "000123456789"),
    ("DOB: 04/12/1987", "DATE_OF_BIRTH", "04/12/1987"),
    ("born on 3 March 1990 in Leeds", "DATE_OF_BIRTH", "3 March 1990"),
    ("Steuer-ID 36574261809", "TAX_ID", "36574261809"),
    ("NIR 2 95 10 99 126 111 93", "NATIONAL_ID", "2 95 10 99 126 111 93"),
    ("DNI 54362315K", "NATIONAL_ID", "54362315K"),
    ("NIE X2482300W", "NATIONAL_ID", "X2482300W"),
    ("codice fiscale RCCMNL83S18D969H", "TAX_ID", "RCCMNL83S18D969H"),
    ("BSN 111222333", "NATIONAL_ID", "111222333"),
    ("PESEL 44051401359", "NATIONAL_ID", "44051401359"),
    ("personnummer 880320-0016", "NATIONAL_ID", "880320-0016"),
    ("VAT DE136695976 on the invoice", "TAX_ID", "DE136695976"),
    ("send to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "CRYPTO", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
    ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "CRYPTO", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    ("wallet 0x52908400098527886E0F7030069857D2E4169EE7", "CRYPTO", "0x52908400098527886E0F7030069857D2E4169EE7"),
    ("write to jane.doe+tag@mail.example.co.uk", "EMAIL_ADDRESS", "jane.doe+tag@mail.example.co.uk"),
    ("call +44 20 7946 0958 now", "PHONE_NUMBER", "+44 20 7946 0958"),
    ("phone (415) 555-2671", "PHONE_NUMBER", "(415) 555-2671"),
    ("Tel. 030 12345678", "PHONE_NUMBER", "030 12345678"),
    ("host 10.0.12.7 is down", "IP_ADDRESS", "10.0.12.7"),
    ("ipv6 2001:db8:85a3::8a2e:370:7334 here", "IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334"),
    ("Ship to 221B Baker Street, London", "LOCATION", "221B Baker Street, London"),
    ("Adresse: Hauptstraße 12, 10115 Berlin", "LOCATION", "Hauptstraße 12, 10115 Berlin"),
    ("lives at 42 Elm Street, Springfield, IL 62704", "LOCATION", "42 Elm Street, Springfield, IL 62704"),
    ("key AKIAIOSFODNN7EXAMPLE", "SECRET", "AKIAIOSFODNN7EXAMPLE"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "SECRET", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("glpat-gB18AIYTimzORZbgmKRw", "SECRET", "glpat-gB18AIYTimzORZbgmKRw"),
    ("sk_live_7n1AyOHFRuT11NCue1cr3McR", "SECRET", "sk_live_7n1AyOHFRuT11NCue1cr3McR"),
    ("OPENAI_API_KEY=sk-proj-1wYVvnSk4E3kNqlknn3gT3BlbkFJ", "SECRET", "sk-proj-1wYVvnSk4E3kNqlknn3gT3BlbkFJ"),
    ("AIzaSmo7XRk3ByFE3GQfUbTMcwx10WMQUK4pqLm", "SECRET", "AIzaSmo7XRk3ByFE3GQfUbTMcwx10WMQUK4pqLm"),
    ("postgres://admin:S3cr3tPass!@db.internal:5432/app", "SECRET", "S3cr3tPass!"),
    ('password = "hunter2hunter2"', "SECRET", "hunter2hunter2"),
    ("DATABASE_URL=postgresql://app:pass@db.internal:5432/prod", "SECRET", "pass"),
    ("redis://:s3cretRedis@cache:6379/0", "SECRET", "s3cretRedis"),
    ("The API key is 4f7c2e9a1b8d3f6e0a5c7b9d2e4f6a8c (keep it safe)", "SECRET", "4f7c2e9a1b8d3f6e0a5c7b9d2e4f6a8c"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "SECRET",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "SECRET",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    ("Dear Oluwaseun Adeyemi, your results are ready.", "PERSON", "Oluwaseun Adeyemi"),
    ("Follow-up with Dr. Okonkwo next week", "PERSON", "Okonkwo"),
]

NOT_MATCHING = [
    ("Order number 4111111111111112 shipped", "CREDIT_CARD"),
    ("Ref 4789328792174218, build 2.19.50.", "CREDIT_CARD"),
    ("IBAN DE89 3704 0044 0532 0130 01", "IBAN_CODE"),
    ("SSN 000-12-3456 and 666-12-3456", "US_SSN"),
    ("ITIN 912-34-5678", "US_ITIN"),
    ("number 021000022 here", "ABA_ROUTING_NUMBER"),
    ("a 123456789012 count", "US_BANK_NUMBER"),
    ("NPI 1234567890", "NPI"),
    ("NHS number 943 476 5918", "UK_NHS"),
    ("the year 12345678 count", "MEDICAL_RECORD_NUMBER"),
    ("released 04/12/1987", "DATE_OF_BIRTH"),
    ("ISBN 978-3-16-148410-0", "PHONE_NUMBER"),
    ("UUID 3f2b8c1e-9a7d-4e2b-8c1f-2a9d7e6b5c4a", "CREDIT_CARD"),
    ("version 1.2.3.4 shipped", "IP_ADDRESS"),
    ("at 2026-12-01T09:30:00Z UTC", "PHONE_NUMBER"),
    ("random 839201938475629384", "CREDIT_CARD"),
    ("Sort these order numbers: 100234, 998812, 443201.", "PHONE_NUMBER"),
    ("commit 87c8df95247f2866028de71159b42b4ea410fb91 broke it", "SECRET"),
    ("password = ${DB_PASSWORD}", "SECRET"),
    ("postgres://user:${DB_PASSWORD}@db:5432/app and https://user:****@host/x", "SECRET"),
    ("the token is expired and the secret is out", "SECRET"),
    ("send to 1BoatSLRHtKNngkdXEeobR76b53LETtpyA", "CRYPTO"),
    ("What is the capital of Jordan, and how far is it from Paris?", "PERSON"),
    ("The Golden Gate Bridge is in San Francisco.", "PERSON"),
    ("Please summarise the Quarterly Business Review for Google Cloud.", "PERSON"),
    ("meet at noon", "EMAIL_ADDRESS"),
]


@pytest.mark.parametrize(("text", "etype", "value"), MATCHING)
def test_matching(text: str, etype: str, value: str) -> None:
    assert (etype, value) in found(text)


@pytest.mark.parametrize(("text", "etype"), NOT_MATCHING)
def test_not_matching(text: str, etype: str) -> None:
    assert etype not in [t for t, _ in found(text)]


def test_every_required_type_has_a_matching_case_and_data_classes() -> None:
    required = {
        "PERSON",
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "US_SSN",
        "CREDIT_CARD",
        "IBAN_CODE",
        "IP_ADDRESS",
        "MEDICAL_RECORD_NUMBER",
        "SECRET",
        "US_ITIN",
        "US_PASSPORT",
        "US_BANK_NUMBER",
        "ABA_ROUTING_NUMBER",
        "DATE_OF_BIRTH",
        "LOCATION",
        "NPI",
        "UK_NHS",
        "NATIONAL_ID",
        "TAX_ID",
        "CRYPTO",
    }
    assert required <= {etype for _, etype, _ in MATCHING}
    assert required <= set(ENTITY_CLASSES)
    for classes in ENTITY_CLASSES.values():
        assert classes and set(classes) <= {"pii", "phi", "pci", "credentials", "financial"}


def test_findings_carry_score_explanation_classes_and_sorted_offsets() -> None:
    text = "Patient: Ana Lima, MRN 7788991, card 4111111111111111, ssn 536-22-1234"
    fs = scanner().scan(text)
    assert [f.start for f in fs] == sorted(f.start for f in fs)
    for f in fs:
        assert 0 < f.score <= 1 and f.explanation and f.data_classes and f.detector
    card = next(f for f in fs if f.type == "CREDIT_CARD")
    assert "Luhn" in card.explanation and card.data_classes == ("pci", "financial")


def test_context_words_raise_and_lower_scores() -> None:
    plain = next(f for f in scanner().scan("x 536-22-1234 y") if f.type == "US_SSN")
    with_ctx = next(f for f in scanner().scan("SSN 536-22-1234") if f.type == "US_SSN")
    assert with_ctx.score > plain.score
    assert not [f for f in scanner().scan("ticket 536-22-1234") if f.type == "US_SSN"]


def test_custom_patterns_and_deny_lists_per_tenant() -> None:
    settings = ProtectionSettings(
        engine="python",
        ner={"mode": "off"},
        custom_patterns=[
            {"type": "EMPLOYEE_ID", "regex": r"\bEMP-\d{6}\b", "data_classes": ["pii"], "score": 0.9},
            {"type": "CARD_REF", "regex": r"\bCR\d{16}\b", "validator": "luhn", "score": 0.8},
            {
                "type": "DE_TAXNO",
                "regex": r"\b\d{11}\b",
                "validator": "stdnum:de.idnr",
                "context": ["steuer"],
                "require_context": True,
                "tenants": ["acme"],
            },
        ],
        deny_lists=[{"type": "CODE_NAME", "terms": ["Project Falcon", "bluebird"], "tenants": ["acme"]}],
    )
    sc = Scanner(settings)
    text = "EMP-123456 CR4111111111111111 CR4111111111111112 Steuer 36574261809 project falcon; bluebirds"
    got = {(f.type, text[f.start : f.end]) for f in sc.scan(text, tenant="acme")}
    assert ("EMPLOYEE_ID", "EMP-123456") in got
    assert ("CARD_REF", "CR4111111111111111") in got and ("CARD_REF", "CR4111111111111112") not in got
    assert ("DE_TAXNO", "36574261809") in got
    assert ("CODE_NAME", "project falcon") in got and not any(v == "bluebirds" for _, v in got)
    other = {f.type for f in sc.scan(text, tenant="other")}
    assert "CODE_NAME" not in other and "DE_TAXNO" not in other and "EMPLOYEE_ID" in other


def test_bad_custom_configuration_is_rejected() -> None:
    with pytest.raises(ValueError):
        ProtectionSettings(custom_patterns=[{"type": "X_ID", "regex": "(unclosed"}])
    with pytest.raises(ValueError):
        ProtectionSettings(custom_patterns=[{"type": "X_ID", "regex": "x", "validator": "nope"}])
    with pytest.raises(ValueError):
        ProtectionSettings(custom_patterns=[{"type": "CREDIT_CARD", "regex": "x"}])


def test_disabled_types_are_not_reported() -> None:
    sc = Scanner(ProtectionSettings(engine="python", ner={"mode": "off"}, disabled_types=["IP_ADDRESS"]))
    assert not sc.scan("host 10.0.12.7")


def test_long_text_is_scanned_in_windows() -> None:
    sc = Scanner(ProtectionSettings(engine="python", ner={"mode": "off"}, max_scan_chars=5000))
    text = ("lorem ipsum " * 600) + "card 4111 1111 1111 1111 " + ("dolor " * 600) + "ssn 536-22-1234"
    got = {(f.type, text[f.start : f.end]) for f in sc.scan(text)}
    assert ("CREDIT_CARD", "4111 1111 1111 1111") in got and ("US_SSN", "536-22-1234") in got


def test_scan_is_thread_safe_and_pure() -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [t for t, _, _ in MATCHING] * 4
    expected = [scanner().scan(t) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(scanner().scan, texts))
    assert got == expected


def test_scan_command_jsonl_contract(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from bastion.cli import _register, app

    _register()
    try:
        from bastion.protect.injection import load_default_detector

        load_default_detector()
    except Exception as exc:  # the injection detector is another part; its state is not under test here
        pytest.skip(f"prompt-injection detector unavailable: {exc}")
    src = tmp_path / "in.jsonl"
    dst = tmp_path / "out.jsonl"
    texts = {"a": "Dear Ana Lima, card 4111 1111 1111 1111", "b": "nothing to see", "c": "ｍａｉｌ jane@example.com"}
    src.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in texts.items()), encoding="utf-8")
    result = CliRunner().invoke(app, ["scan", "--input", str(src), "--output", str(dst)])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in map(json.loads, dst.read_text(encoding="utf-8").splitlines())}
    assert set(rows) == set(texts)
    for key, row in rows.items():
        assert set(row) == {"id", "entities", "injection"}
        assert isinstance(row["injection"]["flagged"], bool) and isinstance(row["injection"]["score"], float)
        for e in row["entities"]:
            assert set(e) == {"type", "start", "end", "score"}
            assert 0 <= e["start"] < e["end"] <= len(texts[key])
    assert {(e["type"], texts["a"][e["start"] : e["end"]]) for e in rows["a"]["entities"]} >= {
        ("PERSON", "Ana Lima"), ("CREDIT_CARD", "4111 1111 1111 1111")}
    assert rows["b"]["entities"] == []
    assert [texts["c"][e["start"] : e["end"]] for e in rows["c"]["entities"]] == ["jane@example.com"]
    one = CliRunner().invoke(app, ["scan", "--json", "SSN 536-22-1234"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.output)["entities"][0]["type"] == "US_SSN"
