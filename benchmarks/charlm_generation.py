"""Generation speed of the character model: characters per second of the in-graph sampler
(`apps.charlm.Generator.generate`, a `tf.while_loop`) for a 2x512 LSTM at batch 1, against the
same model stepped from a Python loop (`Generator.step` per character, as a runtime without
the loop would), measured in the same run.

    python -m benchmarks.charlm_generation [--units 512] [--layers 2] [--length 2000] [--rounds 5]
                                           [--prefer-fused]
"""

from __future__ import annotations

import argparse

import numpy as np
import tensorflow as tf

from apps.charlm import CharLM, CharLMConfig, Generator
from apps.config import replace
from benchmarks.common import best_time
from pipelines.char_preprocessor import CharPreprocessor
from pipelines.char_text import Document
from pipelines.synthetic_code import generate


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--length", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; the fastest counts (default: 5)")
    parser.add_argument("--prefer-fused", action="store_true", help="keras.layers.LSTM instead of our cell")
    args = parser.parse_args(argv)
    config = replace(CharLMConfig(), **{"model.units": args.units, "model.num_layers": args.layers,
                                        "model.prefer_fused": args.prefer_fused})
    preprocessor = CharPreprocessor(config.data)
    fitted = preprocessor.fit([Document(text, "synthetic") for text in generate(50, seed=0)])
    model = CharLM().build_model(replace(config, **{"model.vocab_size": fitted["vocab_size"]}))
    g = Generator(model, preprocessor)
    inputs = [tf.constant(["def "]), tf.constant(args.length), tf.constant(0.8), tf.constant(0), tf.constant(0.0),
              tf.constant(1)]
    g.generate(*inputs)  # traced once

    def python_loop():
        states, char_ids = g.zero_states(1), tf.constant([2])
        for _ in range(args.length):
            out = g.step(char_ids, *states)
            states = [out[f"next_{name}"] for name in g.state_sizes]
            char_ids = tf.constant([int(np.argmax(out["logits"].numpy()[0]))])

    g.step(tf.constant([2]), *g.zero_states(1))  # traced once
    in_graph = args.length / best_time(lambda: g.generate(*inputs), args.rounds)
    stepped = args.length / best_time(python_loop, args.rounds)
    kind = "keras.layers.LSTM" if args.prefer_fused else "our cell"
    print(f"{args.layers}x{args.units} LSTM ({kind}), "
          f"{args.length} characters at batch 1, best of {args.rounds} rounds, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'all'} intra-op threads:")
    print(f"  in-graph sampler (Generator.generate): {in_graph:,.0f} characters/s")
    print(f"  Python loop over Generator.step:       {stepped:,.0f} characters/s")
    print(f"  ratio: {in_graph / stepped:.2f}x")


if __name__ == "__main__":
    main()
