"""Settings: typed, strict, with line-numbered errors, and every key documented."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from bastion.errors import ConfigError
from bastion.providers.secrets import Secret, SecretResolver, read_secrets_file
from bastion.settings import Settings, embedded_defaults, load_settings, parse_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("audit:\n  contnt: full\n", "cfg.yaml:2: audit.contnt: unknown key"),
        ("server:\n  port: 80\n  bogus: 1\n", "cfg.yaml:3: server.bogus: unknown key"),
        (
            "providers:\n  - name: a\n    base_url: http://x\n  - name: b\n    base_url: http://y\n    extra: 1\n",
            "cfg.yaml:6: providers.1.extra: unknown key",
        ),
        ("audit:\n  content: everything\n", "cfg.yaml:2: audit.content:"),
        ("server:\n  port: -1\n", "cfg.yaml:2: server.port:"),
        ("storage:\n  url: mysql://x\n", "cfg.yaml:2: storage.url:"),
        ("models:\n  - name: m\n    provider: nowhere\n", "model 'm' names provider 'nowhere'"),
        ("providers:\n  - name: a\n    type: azure_openai\n    base_url: https://x\n", "needs api_version"),
        ("providers:\n  - name: a\n    base_url: ftp://x\n", "http:// or https://"),
        ('providers:\n  - name: a\n    base_url: http://x\n    headers: {X-A: "a\\r\\nb"}\n', "CR, LF"),
        ("- just\n- a list\n", "must be a mapping"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_configuration_is_reported_with_its_line(text, expected):
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "cfg.yaml")
    assert expected in str(err.value)


def test_embedded_defaults_have_the_offline_models():
    s = embedded_defaults("/tmp/x")
    assert {m.name for m in s.models} == {"echo", "echo-embedding"}
    assert s.storage_url == "sqlite:////tmp/x/bastion.db"
    assert s.audit.content == "redacted"


def test_relative_data_dir_follows_the_config_file(tmp_path):
    cfg = tmp_path / "conf" / "bastion.yaml"
    cfg.parent.mkdir()
    cfg.write_text("data_dir: state\n")
    assert load_settings(cfg).data_dir == str(tmp_path / "conf" / "state")


def test_secrets_come_from_environment_then_file(tmp_path, monkeypatch):
    f = tmp_path / "secrets.env"
    f.write_text("# provider keys\nA_KEY='from-file'\nB_KEY=b-file\n")
    os.chmod(f, 0o600)
    monkeypatch.setenv("A_KEY", "from-env")
    r = SecretResolver(f)
    assert r.get("A_KEY").reveal() == "from-env"
    assert r.get("B_KEY").reveal() == "b-file"
    assert r.get("C_KEY") is None
    assert "b-file" not in repr(r.get("B_KEY")) and "b-file" not in str(r.get("B_KEY"))
    assert repr(Secret("x")) == "Secret('**********')"


def test_secrets_file_must_be_private(tmp_path):
    f = tmp_path / "secrets.env"
    f.write_text("A=1\n")
    os.chmod(f, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_secrets_file(f)


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        out.append(prefix + name)
        ann = field.annotation
        inner = getattr(ann, "__args__", None) or (ann,)
        for t in inner:
            if isinstance(t, type) and issubclass(t, BaseModel):
                out.extend(_keys(t, prefix + name + "."))
    return out


def _documented(key: str, tokens: set[str]) -> bool:
    last = key.rsplit(".", 1)[-1]
    return any(t == last or key.endswith("." + t) or key == t or t.startswith(last + ".") for t in tokens)


def test_every_setting_is_documented():
    import re

    tokens = set(re.findall(r"`([A-Za-z0-9_.]+)`", DOCS.read_text()))
    missing = [k for k in _keys(Settings) if not _documented(k, tokens)]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def test_configuration_examples_in_the_docs_are_valid():
    import re

    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.S)
    full = [b for b in blocks if b.startswith(("data_dir:", "storage:"))]
    assert full, "docs/configuration.md should show a complete example"
    for block in full:
        parse_settings(block, "docs/configuration.md")


def test_the_example_deployment_config_loads():
    example = Path(__file__).resolve().parents[2] / "examples" / "policies" / "bastion.yaml"
    settings = load_settings(example)
    assert settings.providers and settings.models
