"""``bastion policy validate | test | explain`` as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import _register, app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    if not any(getattr(g, "name", None) == "policy" for g in app.registered_groups):
        _register()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", *args])
    return result.exit_code, result.output


def test_validate_example_and_line_numbers(tmp_path: Path) -> None:
    code, out = _run("validate", "--config", str(EXAMPLES / "bastion.yaml"))
    assert code == 0 and out.startswith("OK: ")
    bad = tmp_path / "bad.cedar"
    bad.write_text(
        '@id("ok")\npermit(principal, action, resource);\n\n'
        "// broken below\nforbid(principal, action, resource)\nwhen { context.nope };\n"
    )
    code, out = _run("validate", str(bad))
    assert code == 1
    assert f"{bad}:6: " in out and "nope" in out


def test_example_cases_pass_and_json() -> None:
    code, out = _run("test", str(EXAMPLES / "CASES.yaml"))
    assert code == 0, out
    assert "0 failed" in out and "FAIL" not in out
    code, out = _run("test", str(EXAMPLES / "CASES.yaml"), "--json")
    data = json.loads(out)
    assert code == 0 and data["failed"] == 0 and data["passed"] >= 10


def test_failing_case_exits_non_zero(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "bastion.yaml", tmp_path / "bastion.yaml")
    shutil.copytree(EXAMPLES / "policies", tmp_path / "policies")
    (tmp_path / "CASES.yaml").write_text(
        "config: bastion.yaml\ncases:\n"
        "  - name: wrong on purpose\n    principal: {subject: a}\n"
        "    request: {model: echo, data_classes: [credentials]}\n    expect: {decision: allow}\n"
        "  - name: unknown model\n    principal: {subject: a}\n"
        "    request: {model: nope}\n    expect: {decision: deny}\n"
    )
    code, out = _run("test", str(tmp_path / "CASES.yaml"))
    assert code == 1
    assert "FAIL    wrong on purpose" in out and "expected allow, got deny" in out
    assert "not in the configuration" in out


def test_explain_json_shape() -> None:
    code, out = _run(
        "explain",
        "--config",
        str(EXAMPLES / "bastion.yaml"),
        "--principal",
        '{"subject": "hans", "region": "eu-central", "groups": ["engineering"]}',
        "--request",
        '{"model": "gpt-4o", "findings": [{"type": "PERSON"}]}',
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert {"decision", "reasons", "policies"} <= set(data)
    assert data["decision"] == "deny" and data["effect"] == "reroute"
    assert data["policies"][0] == "eu-data-stays-in-eu"
    assert data["reroute"] == ["azure-eu", "local"]
    assert "EU" in data["reasons"][0]
    assert {m["id"] for m in data["matched"]} >= {"eu-data-stays-in-eu", "default-invoke-any-model", "pseudonymize-pii"}


def test_explain_text_and_bad_input() -> None:
    code, out = _run(
        "explain",
        "--config",
        str(EXAMPLES / "bastion.yaml"),
        "--principal",
        '{"subject": "a", "groups": ["engineering"]}',
        "--request",
        '{"model": "gpt-4o"}',
    )
    assert code == 0 and "decision: allow" in out and "default-invoke-any-model" in out
    code, out = _run("explain", "--principal", "{not json", "--request", "{}")
    assert code == 2 and "not valid JSON" in out
    code, out = _run("explain", "--principal", '{"subject": "a"}', "--request", '{"action": "fly", "model": "echo"}')
    assert code == 2 and "unknown action" in out
