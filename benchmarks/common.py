"""Shared by the benchmarks: run each variant in its own process, alternate, take medians.

On 2 cores, thread pools of one library keep spinning after a call and slow the next one, and
absolute speed drifts by about 30% from minute to minute: so every variant runs in a fresh
process, variants alternate within each round, and results are reported as ratios to a
reference measured in the same run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time


def run_variant(module: str, variant: str, extra: list[str]) -> dict:
    """Runs `python -m module --child VARIANT ...` and parses the JSON line it prints last."""
    result = subprocess.run([sys.executable, "-m", module, "--child", variant, *extra],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def rounds(module: str, variants: list[str], count: int, extra: list[str], key: str) -> dict[str, list[float]]:
    """`count` rounds over all variants, rotating the order each round; `key` of each result."""
    results: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(count):
        order = variants[r % len(variants):] + variants[: r % len(variants)]
        for variant in order:
            out = run_variant(module, variant, extra)
            if "error" in out:
                print(f"  {variant}: {out['error']}", file=sys.stderr)
                continue
            results[variant].append(out[key])
            print(f"  round {r + 1}: {variant:<22} {out[key]:>12.1f}", file=sys.stderr, flush=True)
    return results


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def best_time(run, rounds: int) -> float:
    """The shortest of `rounds` timings of `run()` (seconds): the least disturbed by other work."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def write_tsv(path, rows) -> None:
    """`text<TAB>label` lines (tabs inside a text become spaces), written atomically."""
    from apps.rundir import atomic_write_text

    atomic_write_text(path, "".join(f"{text.replace(chr(9), ' ')}\t{label}\n" for text, label in rows))


def write_grouped_splits(groups: dict, out, dev: int, test: int, seed: int, what: tuple[str, str]) -> None:
    """`dev.tsv`, `test.tsv` and `train.tsv` in `out` from `groups` (key -> values; one line
    `key<TAB>value` per value), every key's lines in one split: `dev` and `test` keys drawn with
    `seed`, the rest train. `what` names a key and a line for the counts printed."""
    import pathlib
    import random

    keys = list(groups)
    random.Random(seed).shuffle(keys)
    held = {"dev": keys[:dev], "test": keys[dev: dev + test], "train": keys[dev + test:]}
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for split, chosen in held.items():
        rows = [(key, value) for key in chosen for value in groups[key]]
        write_tsv(out / f"{split}.tsv", rows)
        print(f"{split}: {len(chosen)} {what[0]}, {len(rows)} {what[1]}")
