"""The labelling loop: what to show next, when to train, one round of training.

The terminal app, ``ghosttui train`` and ``ghosttui bench`` all drive this package.
"""
