"""Applying a trained model to scans: one scan, an in-situ series, a Dask cluster, LiberTEM.

* ``series``: the scans ``--data`` names (files, globs, folders, 5D HDF5) as plain data;
* ``blocks``: one scan, or a block of its rows, to probabilities through the one per-batch
  function :func:`ghosttui.model.predict.classify_block`;
* ``writer``: the one writer of the output file, per scan, in order, resumable;
* ``local``: the series in this process; ``cluster`` (client side) and ``worker`` (the
  plugin and tasks): the series on Dask;
* ``jobs``: ``predict`` and ``preprocess`` of a series, whatever the engine (what the CLI
  calls); ``report``: what a run tells its user;
* ``udf``: the LiberTEM UDF.

``distributed`` is imported only by ``cluster`` and ``worker``, LiberTEM only by ``udf``;
nothing imports them unless a cluster or LiberTEM is asked for.
"""
