"""The speech app on real recordings, next to classical baselines on the same split.

    python -m benchmarks.speech_real DATA_DIR [--set model.units=64 ...] [--split test|dev]

DATA_DIR is what `rnnapps train speech --data` reads: `train/`, `dev/`, `test/` with one folder
of `.wav` files per label (for the Lithuanian Speech Commands,
`python -m benchmarks.prepare_lt_commands REPO DATA_DIR` lays it out by speaker). Trains the app
with its defaults (and `--set` overrides: tune them with `--split dev`, never on test), then
prints accuracy of:

- 13 MFCCs per frame (the app's feature code, not normalised), their mean and standard
  deviation over the utterance (26 numbers), standardised -> logistic regression, and -> an RBF
  SVM; each with C chosen on dev from 0.1, 1, 10, 100 (scikit-learn: `pip install -e ".[bench]"`);
- our model: log-mel frames -> recurrent encoder -> pooling (`apps/speech.py`).
"""

from __future__ import annotations

import time

import numpy as np

from apps.speech import Speech
from benchmarks.real_data import config_and_splits, parse_args, print_table, train_ours
from pipelines.audio_features import FeatureSettings, numpy_features


def utterance_statistics(utterances, rate: int) -> np.ndarray:
    """(utterances, 26): the mean and standard deviation of 13 MFCCs over each utterance's frames."""
    settings = FeatureSettings.from_ms(rate, 25, 10, num_mfccs=13, normalize=False, upper_hz=rate / 2)
    features, counts = numpy_features([u.samples for u in utterances], settings)
    mfccs = [f[:n, :-1] for f, n in zip(features, counts)]  # the utterance's frames, without the flag
    return np.array([np.concatenate([m.mean(axis=0), m.std(axis=0)]) for m in mfccs])


def baselines(splits, scored: str, rate: int) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    start = time.perf_counter()
    x = {k: utterance_statistics(splits[k], rate) for k in {"train", "dev", scored}}
    y = {k: np.array([u.label for u in splits[k]]) for k in x}
    seconds = time.perf_counter() - start
    results = {}
    for name, make in (("MFCC mean+std, logistic regression", lambda c: LogisticRegression(C=c, max_iter=5000)),
                       ("MFCC mean+std, RBF SVM", lambda c: SVC(C=c, kernel="rbf", gamma="scale"))):
        start = time.perf_counter()
        dev = {c: make_pipeline(StandardScaler(), make(c)).fit(x["train"], y["train"]).score(x["dev"], y["dev"])
               for c in (0.1, 1.0, 10.0, 100.0)}
        best = max(dev, key=dev.get)
        model = make_pipeline(StandardScaler(), make(best)).fit(x["train"], y["train"])
        results[f"{name} (C={best:g})"] = {"accuracy": float(model.score(x[scored], y[scored])),
                                           "seconds": seconds + time.perf_counter() - start}
    print(f"baselines done: {results}", flush=True)
    return results


def main(argv=None) -> None:
    args = parse_args(__doc__, "directory with train/, dev/, test/ of <label>/*.wav", argv)
    app = Speech()
    config, splits = config_and_splits(app, args)
    print(f"{args.data}: " + ", ".join(f"{k} {len(v)} utterances" for k, v in splits.items())
          + f"; {len({u.label for u in splits['train']})} labels", flush=True)
    results = {} if args.no_baselines else baselines(splits, args.split, config.data.sample_rate)
    name, ours = train_ours(app, config, args)
    results[name] = ours
    print(f"\n{args.split} split, {ours['examples']} utterances:\n")
    print_table(results, {"accuracy": "accuracy"})


if __name__ == "__main__":
    main()
