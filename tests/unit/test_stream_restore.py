"""Restoring pseudonyms in streamed answers, with placeholders split at every position."""

from __future__ import annotations

import itertools

import pytest

from bastion.protect.stream import ChoiceRestorers, StreamRestorer
from bastion.protect.vault import MAX_PLACEHOLDER_CHARS, restore_placeholders

VALUES = {
    "<PERSON_1>": "Jane Doe",
    "<PERSON_12>": "Zoë Ngũgĩ",
    "<EMAIL_ADDRESS_1>": "jane@example.com",
    "<US_SSN_3>": "123-45-6789",
}

ANSWERS = [
    "Hello <PERSON_1>, I wrote to <EMAIL_ADDRESS_1>.",
    "<PERSON_12><PERSON_1>",
    "a < b and <PERSON_1> > c, <PERSON_9> unknown, <US_SSN_3>",
    "x <PERSON_ <PERSON_1",  # placeholders that never close
    "<<US_SSN_3>>",
    "plain text with no placeholder at all",
]


def run(chunks: list[str], values: dict[str, str] = VALUES) -> str:
    r = StreamRestorer(values)
    out = "".join(r.feed(c) for c in chunks) + r.flush()
    assert r.held == 0
    return out


@pytest.mark.parametrize("answer", ANSWERS)
def test_every_two_way_split(answer: str) -> None:
    expected = restore_placeholders(answer, VALUES)
    for i in range(len(answer) + 1):
        assert run([answer[:i], answer[i:]]) == expected, i


@pytest.mark.parametrize("answer", ANSWERS[:3])
def test_every_three_way_split(answer: str) -> None:
    expected = restore_placeholders(answer, VALUES)
    for i, j in itertools.combinations(range(len(answer) + 1), 2):
        assert run([answer[:i], answer[i:j], answer[j:]]) == expected, (i, j)


@pytest.mark.parametrize("answer", ANSWERS)
def test_one_character_at_a_time(answer: str) -> None:
    assert run(list(answer)) == restore_placeholders(answer, VALUES)


def test_emits_everything_it_can_at_once() -> None:
    r = StreamRestorer(VALUES)
    assert r.feed("Hello ") == "Hello "
    assert r.feed("<PER") == ""
    assert r.held == 4
    assert r.feed("SON_1>, hi") == "Jane Doe, hi"
    assert r.feed(" a<b") == " a<b"  # lower case after '<' cannot be a placeholder
    assert r.feed(" 3 <") == " 3 "
    assert r.feed(" x") == "< x"
    assert r.flush() == ""


def test_hold_back_is_bounded() -> None:
    r = StreamRestorer(VALUES)
    out = r.feed("<" + "A" * 200)
    assert r.held <= MAX_PLACEHOLDER_CHARS
    out += r.feed("B" * 50)
    assert r.held <= MAX_PLACEHOLDER_CHARS
    assert out + r.flush() == "<" + "A" * 200 + "B" * 50


def test_no_values_passes_chunks_through() -> None:
    r = StreamRestorer({})
    assert r.feed("<PER") == "<PER"


def test_choices_are_restored_independently() -> None:
    c = ChoiceRestorers(VALUES)
    assert c.feed(0, "A <PERSON") == "A "
    assert c.feed(1, "B <US_SSN") == "B "
    assert c.feed(0, "_1> done") == "Jane Doe done"
    assert c.flush(0) == ""
    assert c.flush_all() == {1: "<US_SSN"}


def test_round_trip_with_the_real_scanner_and_vault() -> None:
    import asyncio

    from bastion.protect import ProtectionSettings, Scanner
    from bastion.protect.actions import ActionPolicy, protect_messages
    from bastion.protect.vault import MemoryVaultStore, Vault, derive_conversation_id

    scanner = Scanner.from_settings(ProtectionSettings.model_validate({"ner": {"mode": "off"}}))
    vault = Vault(MemoryVaultStore(), b"round-trip-secret-0123456789")
    body = {"messages": [{"role": "user", "content": "Email jane.doe@example.com about card 4242 4242 4242 4242."}]}
    conv = derive_conversation_id(tenant="acme", subject="alice", messages=body["messages"])
    policy = ActionPolicy(default="pseudonymize")

    async def protect() -> tuple[str, dict[str, str]]:
        result = await protect_messages(body, scanner.scan, policy, vault=vault, conversation_id=conv)
        return result.body["messages"][0]["content"], await vault.values(conv)

    sent, values = asyncio.run(protect())
    assert sent == "Email <EMAIL_ADDRESS_1> about card <CREDIT_CARD_1>."
    answer = "I wrote to <EMAIL_ADDRESS_1> about <CREDIT_CARD_1>."
    expected = "I wrote to jane.doe@example.com about 4242 4242 4242 4242."
    for i in range(len(answer) + 1):
        assert run([answer[:i], answer[i:]], values) == expected
