"""The translation app on a real parallel corpus, next to classical baselines on the same split.

    python -m benchmarks.translation_real DATA_DIR [--set train.epochs=8 ...] [--split test|dev] [--beam 4]

DATA_DIR holds `train.tsv`, `dev.tsv`, `test.tsv` (`source<TAB>target`, the app's local format;
`python -m benchmarks.prepare_tatoeba fra.txt DATA_DIR` makes them from Tatoeba's English-French
pairs). Trains the app with its defaults (and `--set` overrides: tune them with `--split dev`,
never on test) and prints sacreBLEU's BLEU (cased, and lowercased) and chrF of:

- copying the source;
- word for word: each source word replaced by its most probable translation under IBM Model 1
  (5 EM iterations on train; a word train lacks is copied), in source order;
- our model (`apps/translation.py`).
"""

from __future__ import annotations

import collections
import time

from apps.seq2seq import translation_scores
from apps.translation import Translation
from benchmarks.real_data import config_and_splits, parse_args, print_table, train_ours
from pipelines.text_rules import detokenize, tokenize_text

NULL = "<null>"


def ibm_model_1(pairs, iterations: int = 5) -> dict[str, str]:
    """The most probable target word of each source word, t(target | source) by EM (Brown et al.,
    1993); sources are case folded, targets keep their case."""
    corpus = [(tokenize_text(p.source) + [NULL], tokenize_text(p.target, lowercase=False)) for p in pairs]
    t = collections.defaultdict(lambda: 1.0)  # uniform start
    for _ in range(iterations):
        counts, totals = collections.Counter(), collections.Counter()
        for source, target in corpus:
            for f in target:
                norm = sum(t[(e, f)] for e in source)
                for e in source:
                    share = t[(e, f)] / norm
                    counts[(e, f)] += share
                    totals[e] += share
        t = collections.defaultdict(float, {(e, f): c / totals[e] for (e, f), c in counts.items()})
    best: dict[str, tuple[float, str]] = {}
    for (e, f), p in t.items():
        if e != NULL and p > best.get(e, (0.0, ""))[0]:
            best[e] = (p, f)
    return {e: f for e, (_, f) in best.items()}


def main(argv=None) -> None:
    args = parse_args(__doc__, "directory with train.tsv, dev.tsv, test.tsv (source<TAB>target)", argv,
                      extra=lambda p: p.add_argument("--beam", type=int, default=0, help="beam width (0: greedy)"))
    app = Translation()
    config, splits = config_and_splits(app, args)
    print(f"{args.data}: " + ", ".join(f"{name} {len(splits[name])} pairs" for name in ("train", "dev", "test")),
          flush=True)
    results = {} if args.no_baselines else _baselines(splits["train"], splits[args.split])
    name, ours = train_ours(app, config, args, beam=args.beam)
    results[name + (f" beam {args.beam}" if args.beam else "")] = ours
    print(f"\n{args.split} split, {ours['examples']} pairs:\n")
    print_table(results, {"bleu": "BLEU", "bleu_lowercase": "BLEU (lowercased)", "chrf": "chrF"})


def _scores(hypotheses, scored) -> dict:
    return translation_scores(hypotheses, [p.target for p in scored])


def _baselines(train, scored) -> dict:
    results = {"copy the source": {**_scores([p.source for p in scored], scored), "seconds": 0.0}}
    start = time.perf_counter()
    dictionary = ibm_model_1(train)
    hypotheses = [detokenize([dictionary.get(w, w) for w in tokenize_text(p.source)]) for p in scored]
    results["word for word (IBM Model 1)"] = {**_scores(hypotheses, scored), "seconds": time.perf_counter() - start}
    print(f"baselines done: {results}", flush=True)
    return results


if __name__ == "__main__":
    main()
