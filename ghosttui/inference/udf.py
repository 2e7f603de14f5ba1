"""A LiberTEM UDF that classifies every frame with a session's model (``ghosttui[libertem]``).

For people who already run LiberTEM: it runs on LiberTEM's executors (inline,
Dask, GPU workers) and reads every format LiberTEM reads. The classification of
each batch of frames is :func:`ghosttui.model.predict.classify_block`, the same
function the ``predict`` command calls, so the probabilities are the same::

    import libertem.api as lt
    from ghosttui.inference.udf import classify_dataset

    with lt.Context.make_with("inline") as ctx:          # or a Dask / GPU context
        ds = ctx.load("auto", path="scan.mib")
        result = classify_dataset(ctx, ds, "boracite")     # a session name or folder
        result["classes"]          # (Rx, Ry) int8: indices into result["class_names"]
        result["probabilities"]    # (Rx, Ry, C) float32

``classify_dataset`` first surveys the detector (hot pixels, direct beam) from
the same 384 frames the ``predict`` command surveys, with a small sum UDF over a
region of interest, then runs :class:`GhostClassifierUDF`; build the UDF yourself
with :func:`classifier_udf` to run it beside other UDFs in one pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from libertem.udf.base import UDF
from torch import nn

from ghosttui.errors import DataError
from ghosttui.inference.blocks import ModelBundle
from ghosttui.model.device import resolve_device
from ghosttui.model.predict import classify_block
from ghosttui.patterns.detector import (
    DetectorSurvey,
    check_crop,
    survey_from_sum,
    survey_pattern,
    survey_positions,
)
from ghosttui.patterns.preprocess import PatternPipeline, first_bad_pattern
from ghosttui.patterns.settings import PreprocessSettings

BATCH = 512  # frames per model call inside a partition

_MODELS: dict[tuple[str, str], nn.Module] = {}  # built models, per process (worker)


def _model(bundle: ModelBundle, device: torch.device) -> nn.Module:
    key = (bundle.digest, str(device))
    if key not in _MODELS:
        _MODELS[key] = bundle.build(device)
    return _MODELS[key]


class SurveySumUDF(UDF):
    """Sum of the surveyed frames, as :func:`ghosttui.patterns.preprocess.survey` sums them.

    Run it with the ``roi`` of :func:`survey_roi`; parameter ``settings``: a
    :meth:`PreprocessSettings.to_dict`.
    """

    def __init__(self, settings: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(settings=settings, **kwargs)

    def get_preferred_input_dtype(self) -> Any:
        return UDF.USE_NATIVE_DTYPE

    def get_result_buffers(self) -> dict[str, Any]:
        settings = PreprocessSettings.from_dict(self.params.settings)
        shape = tuple(self.meta.dataset_shape.sig)
        if settings.crop is not None:
            qx0, qx1, qy0, qy1 = settings.crop
            shape = (qx1 - qx0, qy1 - qy0)
        return {"total": self.buffer(kind="single", extra_shape=shape, dtype="float64")}

    def process_frame(self, frame: np.ndarray) -> None:
        settings = PreprocessSettings.from_dict(self.params.settings)
        self.results.total[:] += survey_pattern(np.asarray(frame), settings)

    def merge(self, dest: Any, src: Any) -> None:
        dest.total[:] += src.total


def survey_roi(nav_shape: tuple[int, ...]) -> np.ndarray:
    """The frames a survey reads, as a LiberTEM region of interest."""
    roi = np.zeros(int(np.prod(nav_shape)), bool)
    roi[survey_positions(roi.size)] = True
    return roi.reshape(nav_shape)


def survey_dataset(ctx: Any, dataset: Any, settings: PreprocessSettings) -> DetectorSurvey:
    """Hot pixels and the direct beam of a LiberTEM dataset, as ``predict`` finds them."""
    sig = tuple(int(s) for s in dataset.shape.sig)
    if len(sig) != 2:
        raise DataError(f"frames of shape {sig} are not 2D diffraction patterns")
    check_crop(sig, settings, None)
    roi = survey_roi(tuple(int(s) for s in dataset.shape.nav))
    result = ctx.run_udf(dataset=dataset, udf=SurveySumUDF(settings=settings.to_dict()), roi=roi)
    return survey_from_sum(np.asarray(result["total"].data), int(roi.sum()), settings)


class GhostClassifierUDF(UDF):
    """Class probabilities, class map and confidence of every frame, as nav buffers.

    Parameters: ``model`` (a :class:`~ghosttui.inference.blocks.ModelBundle`),
    ``settings`` (the session's :meth:`PreprocessSettings.to_dict`), ``detector``
    (a :class:`DetectorSurvey` of this dataset, see :func:`survey_dataset`),
    ``device`` (``auto``: CUDA on LiberTEM's CUDA workers and wherever torch sees
    one) and ``batch`` (frames per model call).
    """

    def __init__(
        self,
        model: ModelBundle,
        settings: dict[str, Any],
        detector: DetectorSurvey,
        device: str = "auto",
        batch: int = BATCH,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            model=model, settings=settings, detector=detector, device=device, batch=batch, **kwargs
        )

    def get_preferred_input_dtype(self) -> Any:
        return UDF.USE_NATIVE_DTYPE  # raw counts, as predict reads them

    def get_backends(self) -> Any:
        return (UDF.BACKEND_NUMPY, UDF.BACKEND_CUDA)

    def get_result_buffers(self) -> dict[str, Any]:
        n_classes = len(self.params.model.classes)
        return {
            "probabilities": self.buffer(kind="nav", extra_shape=(n_classes,), dtype="float32"),
            "classes": self.buffer(kind="nav", dtype="int8"),
            "confidence": self.buffer(kind="nav", dtype="float32"),
        }

    def get_task_data(self) -> dict[str, Any]:
        spec = self.params.device
        if self.meta.device_class == "cuda" and spec == "auto":
            spec = "cuda"  # LiberTEM's CUDA worker: its one visible GPU
        device = resolve_device(spec)
        settings = PreprocessSettings.from_dict(self.params.settings)
        return {
            "model": _model(self.params.model, device),
            "device": device,
            "pipeline": PatternPipeline(settings, self.params.detector),
        }

    def process_partition(self, partition: np.ndarray) -> None:
        """Whole frames, many at a time (tiles could split a frame; the network needs it whole)."""
        data = self.task_data
        settings = data.pipeline.settings
        for start in range(0, len(partition), self.params.batch):
            block = np.asarray(partition[start : start + self.params.batch])
            bad = first_bad_pattern(block, settings.allow_blank)
            if bad is not None:
                position = tuple(int(v) for v in self.meta.coordinates[start + bad[0]])
                raise DataError(f"pattern {position} {bad[1]}")
            probabilities = classify_block(data.model, data.device, block, data.pipeline)
            stop = start + len(block)
            self.results.probabilities[start:stop] = probabilities
            self.results.classes[start:stop] = probabilities.argmax(-1)
            self.results.confidence[start:stop] = probabilities.max(-1)


def _session_parts(
    session: Any, round: int | None, model_id: int | None
) -> tuple[ModelBundle, PreprocessSettings, list[str]]:
    from ghosttui.inference.jobs import checkpoint_for
    from ghosttui.session.session import Session

    if isinstance(session, (str, Path)):
        with Session.open(str(session), writable=False) as opened:
            return _session_parts(opened, round, model_id)
    bundle = ModelBundle.from_checkpoint(checkpoint_for(session, round, model_id))
    return bundle, session.settings.preprocess, list(session.classes)


def classifier_udf(
    ctx: Any,
    dataset: Any,
    session: Any,
    *,
    round: int | None = None,
    model_id: int | None = None,
    device: str = "auto",
) -> GhostClassifierUDF:
    """The UDF for ``dataset`` with the model of ``session`` (a name, a folder or a Session):
    the model in use, ``round``'s last model or model ``model_id``."""
    bundle, settings, _ = _session_parts(session, round, model_id)
    detector = survey_dataset(ctx, dataset, settings)
    return GhostClassifierUDF(
        model=bundle, settings=settings.to_dict(), detector=detector, device=device
    )


def classify_dataset(
    ctx: Any,
    dataset: Any,
    session: Any,
    *,
    round: int | None = None,
    model_id: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Survey and classify every frame; numpy arrays over the navigation shape, class names."""
    bundle, settings, classes = _session_parts(session, round, model_id)
    detector = survey_dataset(ctx, dataset, settings)
    udf = GhostClassifierUDF(
        model=bundle, settings=settings.to_dict(), detector=detector, device=device
    )
    result = ctx.run_udf(dataset=dataset, udf=udf)
    return {
        "probabilities": np.asarray(result["probabilities"].data),
        "classes": np.asarray(result["classes"].data),
        "confidence": np.asarray(result["confidence"].data),
        "class_names": classes,
        "round": bundle.round,
    }
