"""Code-like text with long-range structure, for the character language model's `synthetic` source.

Each document is a small Python-like file of functions whose bodies nest `if` blocks (indentation
in steps of 4 spaces), and whose expressions nest calls `f(...)`, tuples `(...)`, lists `[...]`
and dicts `{...}` up to a few levels deep, with string literals of words in double quotes. What
closes next (`)`, `]` or `}`), whether a quote is open and how far to indent are decided many
characters back: a model must carry them in its state, which is what the app's tests check.

Example:
>>> text = generate(1, seed=0)[0]
>>> text.startswith("def ") and text.count("(") == text.count(")") and text.count('"') % 2 == 0
True
"""

from __future__ import annotations

import random

NAMES = ("alpha", "beta", "count", "data", "item", "key", "left", "node", "path", "size", "total", "value")
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and", "runs", "away")
FUNCTIONS = ("len", "max", "min", "sum", "sorted", "print", "get", "join")
BRACKETS = {"(": ")", "[": "]", "{": "}"}
MAX_DEPTH = 3  # of nested brackets


def _expression(rng: random.Random, depth: int) -> str:
    kind = rng.random() if depth < MAX_DEPTH else 0.0
    if kind < 0.4:  # an atom
        atom = rng.random()
        if atom < 0.55:
            return rng.choice(NAMES)
        if atom < 0.8:
            return str(rng.randint(0, 99))
        return '"' + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))) + '"'
    parts = [_expression(rng, depth + 1) for _ in range(rng.randint(1, 2))]
    # about as many of each closing bracket: ")" also closes print(...)
    if kind < 0.5:
        return f"{rng.choice(FUNCTIONS)}({', '.join(parts)})"
    if kind < 0.55:
        return f"({' + '.join(parts)})"
    if kind < 0.78:
        return f"[{', '.join(parts)}]"
    return "{" + ", ".join(f"{rng.choice(NAMES)}: {p}" for p in parts) + "}"


def _block(rng: random.Random, indent: int, lines: list[str], nesting: int) -> None:
    pad = " " * indent
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.3 and nesting < 3:
            lines.append(f"{pad}if {_expression(rng, 1)}:")
            _block(rng, indent + 4, lines, nesting + 1)
        elif kind < 0.85:
            lines.append(f"{pad}{rng.choice(NAMES)} = {_expression(rng, 0)}")
        else:
            lines.append(f"{pad}print({_expression(rng, 1)})")
    lines.append(f"{pad}return {_expression(rng, 0)}")


def generate_one(rng: random.Random) -> str:
    lines: list[str] = []
    for _ in range(rng.randint(1, 3)):
        args = ", ".join(rng.sample(NAMES, rng.randint(1, 3)))
        lines.append(f"def {rng.choice(NAMES)}_{rng.choice(FUNCTIONS)}({args}):")
        _block(rng, 4, lines, 0)
        lines.append("")
    return "\n".join(lines)


def generate(n: int, seed: int) -> list[str]:
    """`n` documents (files), the same for the same seed."""
    rng = random.Random(seed)
    return [generate_one(rng) for _ in range(n)]
