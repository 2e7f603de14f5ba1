"""``predict`` and ``preprocess`` of a series, whatever the engine: what the CLI calls.

Without a :class:`~ghosttui.inference.cluster.ClusterSpec` (or a ready Dask
client) everything runs in this process and nothing of Dask is imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghosttui.data.options import LoadOptions
from ghosttui.inference.blocks import ModelBundle
from ghosttui.inference.report import Reporter, ScanOutcome
from ghosttui.inference.series import ScanRef, discover_series
from ghosttui.inference.writer import SeriesWriter
from ghosttui.patterns.settings import PreprocessSettings

if TYPE_CHECKING:
    from distributed import Client

    from ghosttui.inference.cluster import ClusterSpec
    from ghosttui.session.session import Session


@dataclass(eq=False)
class SeriesResult:
    """What a run did: the scans it finished now and those it found already done."""

    outcomes: list[ScanOutcome]
    skipped: list[ScanRef]
    out: Path | None = None
    round: int | None = None
    model_id: int | None = None
    dropped: list[str] | None = None  # unfinished scans of an earlier run, removed


def run_key(bundle: ModelBundle, settings: PreprocessSettings, options: LoadOptions) -> str:
    """What makes two runs' results interchangeable: the model's weights, the preprocessing
    and how files are opened."""
    blob = json.dumps(
        {
            "model": bundle.digest,
            "preprocess": settings.key(),
            "load": replace(options, series_index=None).to_dict(),
        },
        sort_keys=True,
    )
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


@contextlib.contextmanager
def _engine(
    cluster: ClusterSpec | None, client: Client | None, reporter: Reporter
) -> Iterator[Client | None]:
    """The Dask client to use (a given one, a new one from ``cluster``), or None."""
    if client is not None:
        yield client
        return
    if cluster is None:
        yield None
        return
    from ghosttui.inference.cluster import connect, describe

    with connect(cluster) as new_client:
        reporter.note(describe(new_client, dashboard=cluster.dashboard is not None))
        yield new_client


def _discover(
    client: Client | None,
    inputs: Sequence[str | Path],
    options: LoadOptions,
    exclude: Sequence[str | Path],
) -> list[ScanRef]:
    if client is None:
        return discover_series(inputs, options, exclude=exclude)
    from ghosttui.inference.cluster import discover_on_worker

    absolute = [str(Path(str(i)).expanduser().absolute()) for i in inputs]
    return discover_on_worker(client, absolute, options, [str(Path(e).absolute()) for e in exclude])


def checkpoint_for(session: Session, round: int | None, model_id: int | None = None) -> Any:
    """The checkpoint of the session's model in use, of ``round``'s last model, or of
    model ``model_id``."""
    return session.load_model(session.find_model(round, model_id))


def predict_session(
    session: Session,
    out: str | Path,
    *,
    inputs: Sequence[str | Path] | None = None,
    options: LoadOptions | None = None,
    round: int | None = None,
    model_id: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
    cluster: ClusterSpec | None = None,
    client: Client | None = None,
    reporter: Reporter | None = None,
) -> SeriesResult:
    """Classify the session's scan, or the series ``inputs`` names, into ``out``.

    ``out`` is resumable: scans already finished there by the same model are skipped.
    On Dask when ``cluster`` or ``client`` is given, else in this process.
    """
    reporter = reporter or Reporter()
    out = Path(out).expanduser()
    record = session.find_model(round, model_id)
    bundle = ModelBundle.from_checkpoint(session.load_model(record))
    settings = session.settings.preprocess
    if inputs:
        options = options or LoadOptions()
    else:
        inputs, options = [session.settings.data.path], session.load_options
    device_spec = device or session.settings.model.device
    with _engine(cluster, client, reporter) as dask:
        refs = _discover(dask, inputs, options, [out])
        layout = "scan" if refs[0].name is None else "series"
        with SeriesWriter(
            out,
            session.classes,
            run_key=run_key(bundle, settings, options),
            round=bundle.round,
            session=session.name,
            layout=layout,
            overwrite=overwrite,
            inputs=sorted({ref.path for ref in refs}),
        ) as writer:
            skipped = [ref for ref in refs if writer.done(ref)]
            todo = [ref for ref in refs if ref not in skipped]
            reporter.start(sum(r.n_patterns for r in refs), len(refs), skipped)
            if dask is None:
                from ghosttui.inference.local import predict_local
                from ghosttui.model.device import resolve_device

                outcomes = predict_local(
                    todo, bundle, settings, resolve_device(device_spec), writer, reporter
                )
            else:
                from ghosttui.inference.cluster import ClusterSpec, predict_dask

                outcomes = predict_dask(
                    dask,
                    todo,
                    bundle,
                    settings,
                    device_spec,
                    writer,
                    reporter,
                    cluster or ClusterSpec(),
                )
    return SeriesResult(outcomes, skipped, out, bundle.round, record.id, writer.dropped)


def preprocess_series(
    inputs: Sequence[str | Path],
    options: LoadOptions,
    settings: PreprocessSettings,
    *,
    cache_dir: str | Path | None = None,
    rebuild: bool = False,
    cluster: ClusterSpec | None = None,
    client: Client | None = None,
    reporter: Reporter | None = None,
) -> SeriesResult:
    """Build (or find) the pattern cache of every scan ``inputs`` names.

    On Dask each scan's cache is built on a worker, in that worker's cache folder
    (``cache_dir`` when given: then it must be the same path on every worker).
    """
    reporter = reporter or Reporter()
    folder = str(cache_dir) if cache_dir is not None else None
    with _engine(cluster, client, reporter) as dask:
        refs = _discover(dask, inputs, options, [])
        reporter.start(sum(r.n_patterns for r in refs), len(refs), [])
        if dask is None:
            from ghosttui.inference.local import preprocess_local

            outcomes = preprocess_local(refs, settings, reporter, cache_dir=folder, rebuild=rebuild)
        else:
            from ghosttui.inference.cluster import ClusterSpec, preprocess_dask

            outcomes = preprocess_dask(
                dask,
                refs,
                settings,
                reporter,
                cluster or ClusterSpec(),
                cache_dir=folder,
                rebuild=rebuild,
            )
    return SeriesResult(outcomes, [])
