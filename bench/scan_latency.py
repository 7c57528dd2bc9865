"""Per-call cost of the sensitive-data scan and the answer scan, with a text that changes every call.

Run: .venv/bin/python bench/scan_latency.py [--rounds 5] [--sessions 2] [--runs 400] [--compare OTHER_SRC]
     [--pin CORE] [--out FILE]

Each case is measured on a text that differs on every call (one word near the start
is replaced by a made-up lower-case word), so no result cache can answer it; the
cost of a call repeating the previous text exactly (a cache hit) is reported apart.
Cases:

- ``scan_1kb_benign``: ``Scanner.scan`` on 1 KB of prose without any value;
- ``scan_4kb_pii``: ``Scanner.scan`` on a 4 KB prompt with personal data (three sentences repeated);
- ``scan_4kb_typical``: ``Scanner.scan`` on ``PROMPT_4KB_TYPICAL`` of bench/overhead.py (a status update:
  capitalised sentences, one name, an email address, a phone number), its ``@UNIQUE@`` replaced by a
  made-up word on every call;
- ``scan_4kb_dense``: ``Scanner.scan`` on ``PROMPT_4KB`` of bench/overhead.py (the gateway benchmark's
  prompt dense with personal data), ``@UNIQUE@`` replaced the same way;
- ``answer_4kb_typical``: ``OutputScanner.scan`` of the same text as a whole answer;
- ``answer_4kb_typical_echo`` / ``answer_4kb_dense_echo``: the answer the gateway benchmark's upstream
  gives, ``"You said: "`` and the prompt as sent (its values replaced by the default input actions),
  through the output scanner as the gateway passes a whole answer: ``feed`` then ``flush``;
- ``scan_*_repeat``: the same calls on an unchanged text (what a resent chat history costs);
- ``answer_1kb``: ``OutputScanner.scan`` of a whole 1 KB answer (sensitive-data and link detectors);
- ``answer_1kb_stream``: the same answer fed in 49 chunks and flushed, in total, with the time of
  one chunk (``per_chunk_us``) beside it.

``--compare OTHER_SRC`` also measures the package found under ``OTHER_SRC`` (a checkout's
``src`` directory). Each tree has a measuring process of its own that stays up; every case is
measured by one right after the other (which goes first alternates round by round), so both
see the same machine load, and ``--sessions`` starts fresh processes that many times.
``--pin CORE`` runs them on that one core (``taskset``). Figures are medians over all batches
of microseconds of CPU time per call (the measuring thread's, so time spent waiting for a core
that other processes hold is left out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from loadgen import UNIQUE  # noqa: E402
from overhead import PROMPT_4KB as PROMPT_4KB_DENSE  # noqa: E402
from overhead import PROMPT_4KB_TYPICAL  # noqa: E402

BENIGN_1KB = ("Summarise the following meeting notes for the weekly report. " * 16)[:1024]
PROMPT_4KB = ((
    "Customer follow-up from the support desk. Maria Gonzalez (maria.gonzalez@example.com, +1 415 555 0134) "
    "called about invoice INV-2291; her card ending 4242 was charged twice. Please draft a polite reply, "
    "confirm the refund of 49.90 EUR to IBAN DE89 3704 0044 0532 0130 00 and keep the tone friendly. "
) * 12)[:4096]
ANSWER_1KB = ((
    "Here is a summary of the meeting notes. The team agreed to move the release to the second week, "
    "to finish the migration of the reporting jobs first and to review the retry policy for webhooks. "
    "Open questions remain about the budget for the load tests and about who owns the on-call rota. "
) * 4)[:1024]
STREAM_CHUNKS = 49


def _word(i: int) -> str:
    """A lower-case made-up word, different for every ``i`` (never a value of any kind)."""
    letters = "bcdfghjklmnpqrstvwxz"
    out = ""
    i += 1
    while i:
        i, r = divmod(i, len(letters))
        out += letters[r]
    return "zo" + out


def varied(text: str, i: int) -> str:
    """``text`` with its second word replaced by a word unique to ``i`` (same length budget)."""
    head, _, rest = text.partition(" ")
    _, _, rest = rest.partition(" ")
    return f"{head} {_word(i)} {rest}"


def varied_typical(text: str, i: int) -> str:
    """``PROMPT_4KB_TYPICAL`` with its placeholder replaced by a word unique to ``i``."""
    return text.replace(UNIQUE, _word(i))


def _per_call(fn: Any, texts: list[str]) -> float:
    t0 = time.thread_time_ns()
    for t in texts:
        fn(t)
    return (time.thread_time_ns() - t0) / 1e3 / len(texts)


def cases(runs: int) -> dict[str, Callable[[], dict[str, float]]]:
    """Every case, each a call that measures one batch of fresh texts in this process (microseconds per call)."""
    from bastion.protect import ProtectionSettings, Scanner
    from bastion.protect.actions import ActionSettings, apply_actions
    from bastion.protect.outputscan import LinkDetector, OutputScanner

    scanner = Scanner.from_settings(ProtectionSettings())
    scanner.wait_for_engine()
    policy = ActionSettings().output_policy()
    inbound = ActionSettings().input_policy()
    links = LinkDetector()

    def echoed(text: str) -> str:
        """What the benchmark's upstream answers: the prompt as the gateway sent it."""
        return "You said: " + apply_actions(text, scanner.scan(text), inbound).text

    def detectors() -> list[Any]:
        return [lambda text: scanner.scan(text, tenant=None), links]

    def answer(text: str) -> None:
        OutputScanner(detectors(), policy).scan(text)

    def whole(text: str) -> None:
        sc = OutputScanner(detectors(), policy)
        sc.feed(text)
        sc.flush()

    def stream(text: str) -> None:
        sc = OutputScanner(detectors(), policy)
        step = -(-len(text) // STREAM_CHUNKS)
        for k in range(0, len(text), step):
            sc.feed(text[k : k + step])
        sc.flush()

    serial = iter(range(runs * 1000, 10**9))

    def case(name: str, fn: Callable[[str], Any], text: str, n: int,
             prepare: Callable[[str], str] | None) -> Callable[[], dict[str, float]]:
        vary = varied_typical if UNIQUE in text else varied

        def batch() -> dict[str, float]:
            texts = [vary(text, next(serial)) for _ in range(n + 10)]
            if prepare is not None:
                texts = [prepare(t) for t in texts]  # the input scans are not timed
            for t in texts[:10]:
                fn(t)  # warm up (first-use costs, NER cache of the repeated template sentences)
            out = {name: _per_call(fn, texts[10:])}
            if name.startswith("scan_"):
                out[name + "_repeat"] = _per_call(fn, [texts[-1]] * n)
            if name == "answer_1kb_stream":
                out["answer_1kb_stream_per_chunk"] = out[name] / STREAM_CHUNKS
            return out

        return batch

    return {
        "scan_1kb_benign": case("scan_1kb_benign", scanner.scan, BENIGN_1KB, runs, None),
        "scan_4kb_pii": case("scan_4kb_pii", scanner.scan, PROMPT_4KB, max(50, runs // 4), None),
        "scan_4kb_typical": case("scan_4kb_typical", scanner.scan, PROMPT_4KB_TYPICAL, max(50, runs // 2), None),
        "scan_4kb_dense": case("scan_4kb_dense", scanner.scan, PROMPT_4KB_DENSE, max(50, runs // 4), None),
        "answer_1kb": case("answer_1kb", answer, ANSWER_1KB, runs, None),
        "answer_4kb_typical": case("answer_4kb_typical", answer, PROMPT_4KB_TYPICAL, max(50, runs // 2), None),
        "answer_4kb_typical_echo": case("answer_4kb_typical_echo", whole, PROMPT_4KB_TYPICAL, max(50, runs // 2),
                                        echoed),
        "answer_4kb_dense_echo": case("answer_4kb_dense_echo", whole, PROMPT_4KB_DENSE, max(50, runs // 4), echoed),
        "answer_1kb_stream": case("answer_1kb_stream", stream, ANSWER_1KB, max(50, runs // 4), None),
    }


def serve(runs: int) -> None:
    """Measure the case named on each line of standard input; answer each with one line of JSON."""
    batches = cases(runs)
    print(json.dumps(list(batches)), flush=True)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            break
        print(json.dumps(batches[name]()), flush=True)


def main() -> None:
    """Measure (and compare) and print or write the medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=2, help="fresh measuring processes, one after another")
    parser.add_argument("--compare", default="", help="another checkout's src directory to measure alongside")
    parser.add_argument("--pin", default="", help="run the measuring processes on this core only (taskset)")
    parser.add_argument("--out", default="")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.runs)
        return
    trees = {"current": str(ROOT / "src")}
    if args.compare:
        trees = {"compared": str(Path(args.compare).resolve()), **trees}
    samples: dict[str, dict[str, list[float]]] = {k: {} for k in trees}
    pin = ["taskset", "-c", args.pin] if args.pin else []
    for _ in range(args.sessions):
        procs = {
            label: subprocess.Popen([*pin, sys.executable, __file__, "--serve", "--runs", str(args.runs)],
                                    env=dict(os.environ, PYTHONPATH=src), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
            for label, src in trees.items()
        }
        try:
            names = [json.loads(_line(p)) for p in procs.values()][0]
            for r in range(args.rounds):
                # Each case is measured by one tree right after the other (the first one alternating),
                # so both see the same load; the processes stay up, the texts are new every batch.
                order = list(procs.items()) if r % 2 == 0 else list(procs.items())[::-1]
                for name in names:
                    for label, proc in order:
                        assert proc.stdin is not None
                        proc.stdin.write(name + "\n")
                        proc.stdin.flush()
                        for k, v in json.loads(_line(proc)).items():
                            samples[label].setdefault(k, []).append(v)
        finally:
            for proc in procs.values():
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(timeout=60)
    result: dict[str, Any] = {
        label: {k: round(statistics.median(v), 1) for k, v in found.items()} for label, found in samples.items()
    }
    result["unit"] = "microseconds of CPU time per call, median of batches"
    result["batches"] = args.sessions * args.rounds
    if args.pin:
        result["pinned_core"] = args.pin
    if args.compare:
        result["speedup"] = {k: round(result["compared"][k] / result["current"][k], 2)
                             for k in result["current"] if result["current"][k]}
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a measuring process stopped (exit {proc.wait()})")
    return line


if __name__ == "__main__":
    main()
