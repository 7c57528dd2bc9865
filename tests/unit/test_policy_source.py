"""Compiling policy files: problems carry file and line; annotations are checked."""

from __future__ import annotations

import pytest

from bastion.policy.source import PolicySource, compile_sources, default_sources, split_statements


def _problems(text: str, name: str = "p.cedar") -> list[str]:
    return [str(p) for p in compile_sources([PolicySource(name, text)]).problems]


def test_split_respects_strings_and_comments() -> None:
    text = (
        '// a; comment\n@reason("a; b")\npermit(principal, action, resource);\n\n'
        '// x\nforbid(principal, action, resource)\nwhen { "\\";" == "" };\n'
    )
    parts = split_statements(text)
    assert [line for line, _ in parts] == [2, 6]
    assert parts[0][1].startswith('@reason("a; b")')


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "permit(principal, action, resource);\n\npermit(principal, action, resource)\n  when { foo bar };",
            4,
            "unexpected token",
        ),
        (
            "permit(principal, action, resource);\npermit(principal,\n"
            ' action == Bastion::Action::"invoke_model",\n resource)\nwhen { context.nope };',
            5,
            "nope",
        ),
        ('@id("x")\nforbid(principal, action == Bastion::Action::"fly", resource);', 2, "fly"),
        (
            'permit(principal, action, resource);\n@id("r")\n@effect("reroute")\npermit(principal, action, resource);',
            3,
            "forbid",
        ),
        ('@effect("explode")\nforbid(principal, action, resource);', 1, "must be one of"),
        ('@effect("redact")\nforbid(principal, action, resource);', 1, "@applies_to"),
        ('@id("a")\n@applies_to("pii")\npermit(principal, action, resource);', 2, "needs @effect"),
        ('@effect("reroute")\n\n@target("moon")\nforbid(principal, action, resource);', 3, "not understood"),
        ('@target("baa")\nforbid(principal, action, resource);', 1, "only applies"),
        ('@id("bad id!")\npermit(principal, action, resource);', 1, "@id"),
        ("permit(principal, action, resource);\npermit(principal, action, resource)", 2, "does not end"),
        ("permit(principal == ?principal, action, resource);", 1, "templates"),
    ],
)
def test_problem_lines(text: str, line: int, needle: str) -> None:
    problems = _problems(text)
    assert problems, "expected a problem"
    assert problems[0].startswith(f"p.cedar:{line}: "), problems
    assert needle in problems[0]


def test_duplicate_ids_and_unknown_disable() -> None:
    text = '@id("a") permit(principal, action, resource);\n@id("a") forbid(principal, action, resource);'
    result = compile_sources([PolicySource("p.cedar", text)], disabled=["nope"])
    msgs = [str(p) for p in result.problems]
    assert any(m.startswith("p.cedar:2:") and "already used at p.cedar:1" in m for m in msgs)
    assert any("nope" in m for m in msgs)


def test_defaults_compile_and_version_tracks_content() -> None:
    a = compile_sources(default_sources())
    assert a.ok and len(a.policies) >= 10
    b = compile_sources([*default_sources(), PolicySource("x.cedar", "permit(principal, action, resource);")])
    assert b.ok and b.version != a.version
    c = compile_sources(default_sources(), disabled=["default-invoke-any-model"])
    assert c.version != a.version and "default-invoke-any-model" not in {p.id for p in c.policies}


def test_unnamed_policy_id_is_its_location() -> None:
    result = compile_sources([PolicySource("dir/p.cedar", "\n\npermit(principal, action, resource);")])
    assert [p.id for p in result.policies] == ["dir/p.cedar:3"]


def test_policy_count_limit() -> None:
    text = "permit(principal, action, resource);\n" * 5
    assert any("over the limit" in str(p) for p in compile_sources([PolicySource("p", text)], max_policies=4).problems)
