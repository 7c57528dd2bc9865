"""Protection actions: every action on every type, policy precedence, overlaps, block."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import SecretStr, ValidationError

from bastion.context import Finding
from bastion.errors import BastionError, ContentFiltered
from bastion.protect.actions import (
    ActionPolicy,
    ActionSettings,
    Hasher,
    apply_actions,
    mask,
    normalise_for_hash,
    protect_messages,
    protect_text,
)
from bastion.protect.vault import MemoryVaultStore, Vault

SECRET = b"0123456789abcdef0123456789abcdef"

CLASSES = {
    "PERSON": ("pii",),
    "EMAIL_ADDRESS": ("pii",),
    "PHONE_NUMBER": ("pii",),
    "US_SSN": ("pii",),
    "CREDIT_CARD": ("pci", "financial"),
    "IBAN_CODE": ("financial",),
    "IP_ADDRESS": ("pii",),
    "MEDICAL_RECORD_NUMBER": ("phi",),
    "SECRET": ("credentials",),
}

# (type, value, expected mask)
VALUES = [
    ("PERSON", "Jane Doe", "J*** D***"),
    ("EMAIL_ADDRESS", "jane.doe@example.com", "j***@example.com"),
    ("PHONE_NUMBER", "+1 (415) 555-2671", "+* (***) ***-2671"),
    ("US_SSN", "123-45-6789", "***-**-6789"),
    ("CREDIT_CARD", "4242-4242-4242-4242", "****-****-****-4242"),
    ("CREDIT_CARD", "4242 4242 4242 4242", "**** **** **** 4242"),
    ("IBAN_CODE", "DE89 3704 0044 0532 0130 00", "DE** **** **** **** **30 00"),
    ("IP_ADDRESS", "192.168.10.42", "192.***.***.***"),
    ("IP_ADDRESS", "2001:db8::1", "2001:****::****"),
    ("MEDICAL_RECORD_NUMBER", "MRN-00123456", "***-****3456"),
    ("SECRET", "sk-proj-abcdefghijklmnop1234", "sk-p********"),
]


def finding(text: str, value: str, entity_type: str, score: float = 0.9) -> Finding:
    start = text.index(value)
    return Finding(
        type=entity_type,
        start=start,
        end=start + len(value),
        score=score,
        detector="test",
        data_classes=CLASSES.get(entity_type, ()),
    )


@pytest.mark.parametrize(("entity_type", "value", "masked"), VALUES)
def test_mask_keeps_shape_and_hides_value(entity_type: str, value: str, masked: str) -> None:
    assert mask(value, entity_type) == masked


@pytest.mark.parametrize("action", ["allow", "redact", "mask", "hash", "pseudonymize"])
@pytest.mark.parametrize(("entity_type", "value", "masked"), VALUES)
def test_every_action_on_every_type(action: str, entity_type: str, value: str, masked: str) -> None:
    text = f"before {value} after"
    policy = ActionPolicy(default=action)  # type: ignore[arg-type]
    hasher = Hasher(SECRET)
    result = apply_actions(
        text,
        [finding(text, value, entity_type)],
        policy,
        tenant="acme",
        hasher=hasher,
        pseudonymize=lambda v, t: f"<{t}_1>",
    )
    expected = {
        "allow": value,
        "redact": f"[{entity_type}]",
        "mask": masked,
        "hash": f"<{entity_type}:{hasher.digest(value, entity_type, 'acme')}>",
        "pseudonymize": f"<{entity_type}_1>",
    }[action]
    assert result.text == f"before {expected} after"
    (applied,) = result.applied
    assert (applied.type, applied.action, applied.start, applied.end) == (
        entity_type,
        action,
        7,
        7 + len(value),
    )
    assert result.text[applied.new_start : applied.new_end] == expected
    if action != "allow":
        assert value not in result.text
        assert value not in repr(result.to_audit())


@pytest.mark.parametrize(("entity_type", "value", "masked"), VALUES)
def test_block_names_types_never_values(entity_type: str, value: str, masked: str) -> None:
    text = f"x {value} y"
    with pytest.raises(ContentFiltered) as caught:
        apply_actions(text, [finding(text, value, entity_type)], ActionPolicy(default="block"))
    err = caught.value
    assert err.code == "content_filter" and err.status_code == 400
    assert entity_type in err.message
    assert err.details["types"] == [entity_type]
    body = repr(err.to_body("req_1"))
    assert value not in body and value not in err.message


# (policy, finding type, expected action): type beats class, strictest class wins.
PRECEDENCE = [
    ({"types": {"CREDIT_CARD": "mask"}, "classes": {"pci": "redact"}}, "CREDIT_CARD", "mask"),
    ({"classes": {"pci": "redact"}}, "CREDIT_CARD", "redact"),
    ({"classes": {"pci": "mask", "financial": "hash"}}, "CREDIT_CARD", "hash"),
    ({"classes": {"pci": "block", "financial": "allow"}}, "CREDIT_CARD", "block"),
    ({"classes": {"credentials": "block"}, "default": "redact"}, "SECRET", "block"),
    ({"classes": {"credentials": "block"}, "default": "pseudonymize"}, "PERSON", "pseudonymize"),
    ({"types": {"SECRET": "allow"}, "classes": {"credentials": "block"}}, "SECRET", "allow"),
    ({}, "US_SSN", "redact"),
]


@pytest.mark.parametrize(("config", "entity_type", "expected"), PRECEDENCE)
def test_policy_precedence(config: dict[str, object], entity_type: str, expected: str) -> None:
    policy = ActionSettings.model_validate(config).input_policy()
    f = Finding(entity_type, 0, 1, 1.0, "t", CLASSES[entity_type])
    assert policy.action_for(f) == expected


def test_settings_reject_unknown_keys_and_actions() -> None:
    with pytest.raises(ValidationError):
        ActionSettings.model_validate({"defualt": "redact"})
    with pytest.raises(ValidationError):
        ActionSettings.model_validate({"types": {"PERSON": "shred"}})


def test_output_policy_never_pseudonymizes() -> None:
    settings = ActionSettings(output_default="pseudonymize", output_types={"PERSON": "pseudonymize"})
    policy = settings.output_policy()
    assert policy.action_for(Finding("PERSON", 0, 1, 1.0, "t")) == "redact"
    assert policy.action_for(Finding("US_SSN", 0, 1, 1.0, "t")) == "redact"
    assert policy.action_for(Finding("SYSTEM_PROMPT_LEAK", 0, 1, 1.0, "t")) == "redact"
    assert ActionSettings().output_policy().action_for(Finding("SYSTEM_PROMPT_LEAK", 0, 1, 1.0, "t")) == "block"


def test_overlapping_findings_merge_and_take_the_strictest() -> None:
    text = "mail jane.doe@example.com now"
    email = finding(text, "jane.doe@example.com", "EMAIL_ADDRESS")
    person = finding(text, "jane.doe", "PERSON")
    policy = ActionPolicy(by_type={"PERSON": "mask", "EMAIL_ADDRESS": "redact"})
    result = apply_actions(text, [person, email], policy)
    assert result.text == "mail [EMAIL_ADDRESS] now"
    (applied,) = result.applied
    assert applied.merged == ("PERSON",)


def test_overlap_where_weaker_finding_reaches_further_covers_the_union() -> None:
    text = "id 12345678901234 end"
    a = Finding("US_BANK_NUMBER", 3, 14, 0.5, "t")
    b = Finding("CREDIT_CARD", 6, 17, 0.9, "t", ("pci",))
    policy = ActionPolicy(by_type={"US_BANK_NUMBER": "allow", "CREDIT_CARD": "redact"})
    result = apply_actions(text, [a, b], policy)
    assert result.text == "id [CREDIT_CARD] end"
    assert "1234" not in result.text


def test_adjacent_and_separate_findings_all_replaced_in_order() -> None:
    text = "Jane Doe jane@x.io 123-45-6789"
    fs = [
        finding(text, "123-45-6789", "US_SSN"),
        finding(text, "Jane Doe", "PERSON"),
        finding(text, "jane@x.io", "EMAIL_ADDRESS"),
    ]
    result = apply_actions(text, fs, ActionPolicy())
    assert result.text == "[PERSON] [EMAIL_ADDRESS] [US_SSN]"
    assert [a.type for a in result.applied] == ["PERSON", "EMAIL_ADDRESS", "US_SSN"]
    for a in result.applied:
        assert result.text[a.new_start : a.new_end] == f"[{a.type}]"


def test_block_anywhere_blocks_the_whole_text_and_lists_all_blocked_types() -> None:
    text = "key sk-abcdefghijklmnopqrstuv and card 4242424242424242"
    fs = [
        finding(text, "sk-abcdefghijklmnopqrstuv", "SECRET"),
        finding(text, "4242424242424242", "CREDIT_CARD"),
    ]
    policy = ActionPolicy(by_class={"credentials": "block", "pci": "block"})
    with pytest.raises(ContentFiltered) as caught:
        apply_actions(text, fs, policy)
    assert caught.value.details["types"] == ["CREDIT_CARD", "SECRET"]


@pytest.mark.parametrize(
    "bad",
    [
        Finding("PERSON", 5, 50, 1.0, "t"),
        Finding("PERSON", 3, 3, 1.0, "t"),
        Finding("bad type", 0, 2, 1.0, "t"),
    ],
)
def test_findings_that_do_not_fit_fail_closed(bad: Finding) -> None:
    with pytest.raises(BastionError):
        apply_actions("short text", [bad], ActionPolicy())


def test_hash_or_pseudonymize_without_key_or_vault_fail_closed() -> None:
    text = "a jane@x.io"
    f = finding(text, "jane@x.io", "EMAIL_ADDRESS")
    with pytest.raises(BastionError):
        apply_actions(text, [f], ActionPolicy(default="hash"))
    with pytest.raises(BastionError):
        apply_actions(text, [f], ActionPolicy(default="pseudonymize"))


def test_hash_is_stable_per_tenant_normalised_and_keyed() -> None:
    h = Hasher(SECRET)
    a = h.digest("4242 4242 4242 4242", "CREDIT_CARD", "acme")
    assert a == h.digest("4242-4242-4242-4242", "CREDIT_CARD", "acme")
    assert a == Hasher(SECRET).digest("4242424242424242", "CREDIT_CARD", "acme")
    assert a != h.digest("4242424242424242", "CREDIT_CARD", "globex")
    assert a != Hasher(b"another secret of 32 bytes......").digest("4242424242424242", "CREDIT_CARD", "acme")
    assert h.digest("Jane@X.io", "EMAIL_ADDRESS") == h.digest("jane@x.io", "EMAIL_ADDRESS")
    assert len(a) == 10 and int(a, 16) >= 0
    assert len(Hasher(SecretStr("s" * 32), chars=16).digest("x", "PERSON")) == 16
    assert "0123456789abcdef" not in repr(h)
    with pytest.raises(BastionError):
        Hasher(b"short")


@pytest.mark.parametrize(
    ("value", "entity_type", "canonical"),
    [
        ("4242 4242-4242 4242", "CREDIT_CARD", "4242424242424242"),
        ("de89 3704 0044", "IBAN_CODE", "DE8937040044"),
        ("  Jane   DOE ", "PERSON", "jane doe"),
    ],
)
def test_hash_normalisation(value: str, entity_type: str, canonical: str) -> None:
    assert normalise_for_hash(value, entity_type) == canonical


def test_protect_text_same_value_same_placeholder_across_messages() -> None:
    vault = Vault(MemoryVaultStore(), SECRET)
    policy = ActionPolicy(default="pseudonymize")

    async def run() -> tuple[str, str, str]:
        t1 = "Jane Doe wrote to Bob Stone and Jane Doe"
        fs1 = [
            Finding("PERSON", 0, 8, 0.9, "t"),
            Finding("PERSON", 18, 27, 0.9, "t"),
            Finding("PERSON", 32, 40, 0.9, "t"),
        ]
        r1 = await protect_text(t1, fs1, policy, vault=vault, conversation_id="c1")
        t2 = "Bob Stone replied"
        r2 = await protect_text(t2, [Finding("PERSON", 0, 9, 0.9, "t")], policy, vault=vault, conversation_id="c1")
        r3 = await protect_text(t2, [Finding("PERSON", 0, 9, 0.9, "t")], policy, vault=vault, conversation_id="c2")
        return r1.text, r2.text, r3.text

    one, two, other = asyncio.run(run())
    assert one == "<PERSON_1> wrote to <PERSON_2> and <PERSON_1>"
    assert two == "<PERSON_2> replied"
    assert other == "<PERSON_1> replied"


def test_protect_text_without_vault_fails_closed() -> None:
    with pytest.raises(BastionError):
        asyncio.run(protect_text("Jane", [Finding("PERSON", 0, 4, 1.0, "t")], ActionPolicy(default="pseudonymize")))


def _names(text: str) -> list[Finding]:
    out = []
    for name in ("Jane Doe", "Bob Stone"):
        start = text.find(name)
        while start >= 0:
            out.append(Finding("PERSON", start, start + len(name), 0.9, "t", ("pii",)))
            start = text.find(name, start + 1)
    start = text.find("sk-")
    if start >= 0:
        out.append(Finding("SECRET", start, start + 20, 1.0, "t", ("credentials",)))
    return out


def test_protect_messages_walks_strings_and_text_parts() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Assist Jane Doe."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Write to Bob Stone for Jane Doe"},
                    {"type": "image_url", "image_url": {"url": "https://x"}},
                ],
            },
        ],
    }
    vault = Vault(MemoryVaultStore(), SECRET)
    result = asyncio.run(
        protect_messages(body, _names, ActionPolicy(default="pseudonymize"), vault=vault, conversation_id="c")
    )
    msgs = result.body["messages"]
    assert msgs[0]["content"] == "Assist <PERSON_1>."
    assert msgs[1]["content"][0]["text"] == "Write to <PERSON_2> for <PERSON_1>"
    assert msgs[1]["content"][1] == body["messages"][1]["content"][1]  # type: ignore[index]
    assert body["messages"][0]["content"] == "Assist Jane Doe."  # type: ignore[index]
    assert [f.location for f in result.findings] == [
        "messages[0].content",
        "messages[1].content[0].text",
        "messages[1].content[0].text",
    ]
    assert "Jane" not in repr(result.body)
    restored = asyncio.run(vault.restore("c", "Hi <PERSON_1> and <PERSON_2>"))
    assert restored == "Hi Jane Doe and Bob Stone"


def test_protect_messages_block_names_every_blocked_type_across_messages() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "key sk-abcdefghijklmnopq"},
            {"role": "user", "content": "for Jane Doe"},
        ]
    }
    policy = ActionPolicy(by_class={"credentials": "block", "pii": "block"})
    with pytest.raises(ContentFiltered) as caught:
        asyncio.run(protect_messages(body, _names, policy))
    assert caught.value.details["types"] == ["PERSON", "SECRET"]
    assert "sk-" not in caught.value.message and "Jane" not in caught.value.message


def test_protect_messages_covers_tool_call_arguments_and_tool_results() -> None:
    args = json.dumps({"to": "Jane Doe", "body": "hello"})
    body = {
        "messages": [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "send", "arguments": args}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sent to Bob Stone"},
        ]
    }
    result = asyncio.run(protect_messages(body, _names, ActionPolicy()))
    msgs = result.body["messages"]
    sent_args = json.loads(msgs[0]["tool_calls"][0]["function"]["arguments"])
    assert sent_args == {"to": "[PERSON]", "body": "hello"}
    assert msgs[1]["content"] == "sent to [PERSON]"
    assert body["messages"][0]["tool_calls"][0]["function"]["arguments"] == args  # type: ignore[index]
    assert [f.location for f in result.findings] == [
        "messages[0].tool_calls[0].function.arguments",
        "messages[1].content",
    ]


def test_protect_messages_detector_failure_fails_closed() -> None:
    def broken(text: str) -> list[Finding]:
        raise RuntimeError("boom on Jane Doe")

    body = {"messages": [{"role": "user", "content": "Jane Doe"}]}
    with pytest.raises(BastionError) as caught:
        asyncio.run(protect_messages(body, broken, ActionPolicy()))
    assert "Jane" not in caught.value.message
