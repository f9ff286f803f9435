"""classify: how long the keyword classification of one guardian's message takes (``connector/rules/classify.py``).

Every message of the labelled corpus (``tests/corpus/*.jsonl``) is classified once cold (compiling the shipped
rules, loading simplemma's dictionaries and filling the per-word memory are timed apart), then ``--rounds`` times
warm, as a worker that has seen the same words before meets them. Prints µs per message: the compile and cold
figures, and the median and p90 of the warm rounds (each round is the mean over all messages). No Redis, no
network. Run: ``python -m bench.classify [--rounds 20]``.

``--cross-validate`` instead prints how the thresholds of the net under the rules (``connector/rules/resemblance.py``)
were chosen: five-fold cross-validation on the tuning messages only (a model trained on four fifths, the likeness of
the fifth left out), and for each duty category and threshold the share of its messages that reach it and the share
of harmless messages and absence notices that would. The held-out split is never read here.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench.common import percentile
from connector.rules.classify import classify, compile_rules, merged

ROOT = Path(__file__).resolve().parent.parent
CORPORA = (ROOT / "connector" / "rules" / "corpus" / "guardian_messages.jsonl",
           ROOT / "tests" / "corpus" / "held_out.jsonl")


def bodies() -> list[str]:
    found = []
    for path in CORPORA:
        found += [json.loads(line)["body"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return found


def cross_validate(folds: int = 5) -> None:
    from sklearn.model_selection import StratifiedKFold

    from connector.rules import resemblance

    rows = resemblance.labelled()
    labels = [row["category"] for row in rows]
    likeness: list[dict[str, float]] = [{} for _ in rows]
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(rows, labels):
        fitted = resemblance.train([rows[i] for i in train])
        for i in test:
            likeness[i] = resemblance.likeness(rows[i]["body"], fitted)
    harmless = [i for i, label in enumerate(labels) if label in ("other", "absence_notice")]
    print(f"cross-validation, {folds} folds over {len(rows)} tuning messages: share of a duty's messages reaching "
          f"the threshold / share of {len(harmless)} harmless messages and absence notices reaching it")
    for duty in resemblance.DUTIES:
        own = [i for i, label in enumerate(labels) if label == duty]
        cells = [f"{t:.2f}: {sum(likeness[i][duty] >= t for i in own) / len(own):.2f} / "
                 f"{sum(likeness[i][duty] >= t for i in harmless) / len(harmless):.2f}"
                 for t in (0.2, 0.3, 0.4, 0.5, 0.6)]
        print(f"  {duty:<20} (n={len(own)}, chosen {resemblance.THRESHOLDS[duty]:.2f})   " + "   ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="warm rounds over the whole corpus (default 20)")
    parser.add_argument("--cross-validate", action="store_true", help="instead: how the net's thresholds were chosen")
    args = parser.parse_args()
    if args.cross_validate:
        cross_validate()
        return
    texts = bodies()
    started = time.perf_counter()
    rules = compile_rules(merged(None))
    compiled = time.perf_counter() - started
    started = time.perf_counter()
    first = [classify(text, None, rules) for text in texts]
    cold = (time.perf_counter() - started) / len(texts)
    rounds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        again = [classify(text, None, rules) for text in texts]
        rounds.append((time.perf_counter() - started) / len(texts))
        assert again == first, "the classification changed between rounds"
    print(f"classify: {len(texts)} messages, {args.rounds} warm rounds")
    print(f"  compiling the shipped rules   {compiled * 1e3:9.0f} ms (once per distinct plan)")
    print(f"  first round (cold)            {cold * 1e6:9.0f} µs a message (dictionaries and per-word memory)")
    print(f"  warm                          {statistics.median(rounds) * 1e6:9.0f} µs a message median, "
          f"p90 {percentile(rounds, 90) * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
