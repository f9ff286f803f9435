"""classify: how long the keyword classification of one guardian's message takes (``connector/rules/classify.py``).

Every message of the labelled corpus (``tests/corpus/*.jsonl``) is classified once cold (compiling the shipped
rules, loading simplemma's dictionaries and filling the per-word memory are timed apart), then ``--rounds`` times
warm, as a worker that has seen the same words before meets them. Prints µs per message: the compile and cold
figures, and the median and p90 of the warm rounds (each round is the mean over all messages). No Redis, no
network. Run: ``python -m bench.classify [--rounds 20]``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench.common import percentile
from connector.rules.classify import classify, compile_rules, merged

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"


def bodies() -> list[str]:
    found = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        found += [json.loads(line)["body"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="warm rounds over the whole corpus (default 20)")
    args = parser.parse_args()
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
