"""Applying a trained model to scans: one scan, an in-situ series, a Dask cluster, LiberTEM.

``series`` finds the scans that ``--data`` names (files, globs, folders, 5D HDF5);
``blocks`` turns one scan (or a block of its rows) into probabilities through the
one per-batch function :func:`ghosttui.model.predict.classify_block`; ``local`` runs a
series in this process and ``cluster`` on Dask workers; ``writer`` is the one
writer of the output file, per scan, in order and resumable; ``jobs`` ties a
session's model to a series; ``udf`` is the LiberTEM UDF (imported only when
LiberTEM is used). Nothing here imports ``distributed`` or ``libertem`` at import
time except ``cluster``/``worker`` and ``udf`` themselves.
"""
