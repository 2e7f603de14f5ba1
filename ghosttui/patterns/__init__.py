"""Patterns to model inputs: preprocessing settings and pipeline, the pattern cache, previews.

``data/`` reads files; this package turns what it reads into what the model and
the screen see. :mod:`settings` is plain data (no torch), so that sessions and
the CLI can read it without importing torch.
"""
