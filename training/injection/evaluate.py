#!/usr/bin/env python3
"""Score the injection detector on a labelled set with the shared scorer.

usage: evaluate.py [GOLD.jsonl] [--pred PRED.jsonl] [--source user|tool|document] [--no-classifier] [--no-rules]
                   [--classifier ARTEFACT.json] [--engine auto|hyperscan|python] [--all-benign] [--errors]

Writes predictions in the scorer's format ({"id", "injection": {"flagged", "score"}})
and runs ``score_injection.py GOLD PRED``. Defaults to the development set next
to the repository (``../shared/data/injection-dev.jsonl``). With ``--all-benign``
every text of the file is taken as benign (e.g. ``../shared/data/pii-dev.jsonl``,
which has no injection labels) and the flag rate is printed instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from bastion.protect.injection import InjectionDetector, InjectionSettings, build_detector  # noqa: E402
from bastion.protect.injection.rules import RuleSet  # noqa: E402

SHARED = ROOT.parent / "shared"
DEFAULT_GOLD = SHARED / "data" / "injection-dev.jsonl"
SCORER = SHARED / "eval" / "score_injection.py"


def main() -> int:
    """Command-line entry."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gold", nargs="?", default=str(DEFAULT_GOLD))
    ap.add_argument("--pred", default=str(Path(tempfile.gettempdir()) / "injection-pred.jsonl"))
    ap.add_argument("--source", default="user", choices=["user", "tool", "document"])
    ap.add_argument("--no-classifier", action="store_true", help="rules only")
    ap.add_argument("--no-rules", action="store_true", help="classifier only")
    ap.add_argument("--errors", action="store_true", help="print the texts that were misjudged")
    ap.add_argument("--classifier", default=None, help="another classifier artefact")
    ap.add_argument("--all-benign", action="store_true", help="every text is benign: print the flag rate")
    ap.add_argument("--engine", default="auto", choices=["auto", "hyperscan", "python"], help="rule prefilter")
    args = ap.parse_args()

    det = build_detector(InjectionSettings(classifier_path=args.classifier, engine=args.engine))
    # The verdicts do not depend on it, but evaluate what the gateway runs once started.
    det.wait_for_engine()
    if args.no_classifier:
        det = InjectionDetector(det.rules, None, det.settings)
    if args.no_rules:
        det = InjectionDetector(RuleSet([]), det.classifier, det.settings)
    rows = [json.loads(line) for line in open(args.gold, encoding="utf-8") if line.strip()]
    if args.all_benign:
        flagged = {"all": 0, "classifier alone": 0}
        for row in rows:
            res = det.score(row["text"], source=args.source)
            if res.flagged:
                flagged["all"] += 1
                flagged["classifier alone"] += res.kind == "classifier"
                if args.errors:
                    print(f"FLAGGED {res.score:.2f} {res.reasons[:2]} {row['text'][:160]!r}")
        n = max(1, len(rows))
        print(
            f"flagged {flagged['all']} of {len(rows)} benign texts ({flagged['all'] / n:.3%}); "
            f"by the classifier alone {flagged['classifier alone']}"
        )
        return 0
    with open(args.pred, "w", encoding="utf-8") as fh:
        for row in rows:
            res = det.score(row["text"], source=args.source)
            fh.write(json.dumps({"id": row["id"], "injection": {"flagged": res.flagged, "score": res.score}}) + "\n")
            wrong = res.flagged != (row.get("label") == "injection")
            if args.errors and wrong:
                print(f"MISS {row.get('kind')} {res.score:.2f} {res.reasons[:2]} {row['text'][:160]!r}")
    return subprocess.call([sys.executable, str(SCORER), args.gold, args.pred])  # noqa: S603 - fixed argv


if __name__ == "__main__":
    raise SystemExit(main())
