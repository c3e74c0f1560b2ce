"""The sentiment app on a real review set, next to classical baselines on the same split.

    python -m benchmarks.sentiment_real DATA_DIR [--set model.units=128 ...] [--split test|dev]

DATA_DIR holds `train.tsv`, `dev.tsv`, `test.tsv` (`text<TAB>label`, the app's local format; for
example the sentence-level SST-2 split of 6,920 / 872 / 1,821 sentences, or the 3,000 sentences of
`benchmarks/prepare_review_sentences.py`). Trains the app with its
defaults (and `--set` overrides: tune them with `--split dev`, never on test) and prints accuracy
of:

- the majority label of train;
- TF-IDF over word 1-2-grams and character 2-5-grams with a logistic regression, its C chosen
  on dev (scikit-learn: `pip install -e ".[bench]"`);
- our model (`apps/sentiment.py`).

`--average RUN [RUN ...]` trains nothing: it scores the average of the class probabilities of
finished runs on the same data (seeds of one config: an ensemble of separate runs; the app's own,
trained in one run, is `--set model.members=N`).
"""

from __future__ import annotations

import collections
import time

from apps.sentiment import Sentiment
from benchmarks.real_data import config_and_splits, parse_args, print_table, train_ours


def main(argv=None) -> None:
    args = parse_args(__doc__, "directory with train.tsv, dev.tsv, test.tsv (text<TAB>label)", argv,
                      extra=lambda p: p.add_argument("--average", nargs="+", metavar="RUN",
                                                     help="score the average probabilities of these runs"))
    app = Sentiment()
    config, splits = config_and_splits(app, args)
    print(f"{args.data}: " + ", ".join(f"{name} {len(splits[name])}" for name in ("train", "dev", "test")), flush=True)
    results = {} if args.no_baselines else _baselines(splits, args.split)
    if args.average:
        start = time.perf_counter()
        name = f"average of {len(args.average)} runs"
        ours = {"accuracy": averaged_accuracy(app, args.average, splits[args.split]),
                "seconds": time.perf_counter() - start, "examples": len(splits[args.split])}
    else:
        name, ours = train_ours(app, config, args)
    results[name] = ours
    print(f"\n{args.split} split, {ours['examples']} sentences:\n")
    print_table(results, {"accuracy": "accuracy"})


def averaged_accuracy(app, runs, examples) -> float:
    """Accuracy of the mean of the runs' class probabilities (each run's serving `Classifier`,
    whole texts) on `examples`; the runs must share their labels."""
    import numpy as np

    texts = np.array([e.text for e in examples], dtype=object)
    total, labels = 0.0, None
    for run in runs:
        serving = app.serving(app.load(run))
        run_labels = [label.decode("utf-8") for label in serving.labels.numpy()]
        if labels is not None and run_labels != labels:
            raise SystemExit(f"{run}: labels {run_labels}, not {labels} as the runs before it")
        labels = run_labels
        total = total + serving.classify(texts)["probabilities"].numpy()
    predicted = np.array(labels)[np.argmax(total, axis=-1)]
    return float(np.mean(predicted == np.array([e.label for e in examples])))


def _baselines(splits, split: str) -> dict:
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = {name: [e.text for e in examples] for name, examples in splits.items()}
    labels = {name: [e.label for e in examples] for name, examples in splits.items()}
    majority = collections.Counter(labels["train"]).most_common(1)[0][0]
    results = {"majority label": {"accuracy": sum(y == majority for y in labels[split]) / len(labels[split]),
                                  "seconds": 0.0}}
    start = time.perf_counter()
    vectorizers = [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)]
    features = {name: hstack([v.fit_transform(t) if name == "train" else v.transform(t) for v in vectorizers]).tocsr()
                for name, t in sorted(texts.items(), key=lambda item: item[0] != "train")}

    def fitted(c):
        return LogisticRegression(C=c, max_iter=2000).fit(features["train"], labels["train"])

    best_c = max((0.5, 1.0, 2.0, 4.0, 8.0, 16.0), key=lambda c: fitted(c).score(features["dev"], labels["dev"]))
    accuracy = fitted(best_c).score(features[split], labels[split])
    results[f"TF-IDF word 1-2 + char 2-5 grams, logistic regression (C={best_c:g} on dev)"] = {
        "accuracy": float(accuracy), "seconds": time.perf_counter() - start}
    print(f"baselines done: {results}", flush=True)
    return results


if __name__ == "__main__":
    main()
