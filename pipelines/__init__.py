"""tf.data input for rnnapps: sources, tokenization, vocabularies, length statistics, batching.

Nothing here imports from `layers`, `export` or `apps`.
"""
