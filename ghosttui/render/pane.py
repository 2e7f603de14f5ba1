"""The pattern pane as pixels: one function draws what the app shows and ``ghosttui show`` writes.

:class:`PatternPane` turns a probe position and the user's :class:`PaneState`
(view, neighbourhood averaging, zoom, references, contrast) into an RGB image
for a pixel budget (a half-block pane of C x R cells is C x 2R pixels), plus a
caption. No UI here: the Textual widget hands the image to its canvas, and the
CLI saves the same array as a PNG.

Drawing a position:

1. its k x k neighbourhood (cut at the scan's edges) is read, every pattern
   centred on its own direct beam, and averaged (``raw`` at k = 1 is the cached
   pattern untouched, as the app showed it before views existed);
2. the view is applied (:func:`ghosttui.render.views.view_values`);
3. the zoom picks a window (1x, 2x, 4x around the beam, or ``native``: detector
   pixels 1:1, unpooled);
4. each class's reference (the mean of its labelled patterns, or of confidently
   predicted ones) gets the same view and is drawn beside the query at half its
   scale, showing the centre of the same window;
5. intensities become colours: grey for ``raw``, a diverging map for differences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from ghosttui.errors import GhostError
from ghosttui.patterns.neighbourhood import neighbourhood
from ghosttui.patterns.references import ClassMeans, confident_members
from ghosttui.patterns.sources import DetectorFrames, ModelInputs, PatternSource
from ghosttui.patterns.variation import MIN_LABELS, SAMPLE, ScanVariation, removable, scan_variation
from ghosttui.render.cells import area_resize, resample_nearest
from ghosttui.render.colour import Contrast, readable_rgb
from ghosttui.render.views import (
    AVERAGES,
    CENTRINGS,
    REFERENCE_VIEWS,
    VIEWS,
    disk_smooth,
    diverging_rgb,
    grid_centre,
    ring_mask,
    signed_unit,
    view_values,
)

ZOOMS = ("1x", "2x", "4x", "native")
REFERENCE_MODES = ("labels", "model", "off")
CONTRASTS = ("linear", "log", "gamma")
CLIPS = (99.0, 99.5, 99.7, 99.9, 100.0)  # raw view: the percentile drawn white
SCALES = (0.05, 0.1, 0.15, 0.25, 0.5)  # difference views: the full scale (normalised units)
# difference views: the scan's own variation that the labels do not tie to the classes is
# removed (ghosttui.patterns.variation), or kept
VARIATIONS = ("removed", "kept")
# the views it applies to: those that do not flip with the sign of a polarization. In the
# inversion and mirror views a class holding both signs has its polar signal at zero mean
# and the same spread as the thickness and tilt around it, so the labels cannot tell the
# signal from the variation (measured: removing there loses most of it, docs/views.md)
VARIATION_VIEWS = ("mean", "local", "transpose")
LABEL_SCORES_INLINE = 16  # label scores a draw computes itself; more wait for the background
# The defaults, chosen by benchmarks/views_visibility.py (docs/views.md): for horizontal
# against vertical the transpose (it swaps the two), for any other classes the generic
# difference from the scan mean; both averaged over 3 x 3 positions.
DEFAULT_VIEW = "mean"
DEFAULT_AVERAGE = 3
SWAPPED_BY_TRANSPOSE = ("horizontal", "vertical")
APP_PANE_CELLS = (76, 41)  # the pattern pane's canvas in a 160x48 terminal (columns, rows)
LOCAL_MARGIN = 2  # the local mean: positions up to this far beyond the averaged block
META_KEY = "pane"  # where a session remembers its pane state

GAP = 2  # pixels between the query and the references, and between references
BAR = 2  # width of the class-colour bar left of each reference
MIN_REF = 8  # smallest reference box side, pixels


# every setting of the pane and the values it takes (in the order the keys cycle them)
STATE_CHOICES: dict[str, tuple[Any, ...]] = {
    "view": tuple(VIEWS),
    "average": AVERAGES,
    "zoom": ZOOMS,
    "references": REFERENCE_MODES,
    "contrast": CONTRASTS,
    "clip": CLIPS,
    "scale": SCALES,
    "smooth": (True, False),
    "centring": CENTRINGS,
    "variation": VARIATIONS,
}


@dataclass(frozen=True)
class PaneState:
    """What the user chose for the pattern pane (remembered per session)."""

    view: str = DEFAULT_VIEW
    average: int = DEFAULT_AVERAGE
    zoom: str = "1x"
    references: str = "labels"
    contrast: str = "linear"
    clip: float = 99.7
    scale: float = 0.1
    smooth: bool = True  # difference views: averaged over the probe's disk
    centring: str = "descan"
    variation: str = "removed"  # difference views: the scan variation not tied to the labels

    def __post_init__(self) -> None:
        for name, known in STATE_CHOICES.items():
            value = getattr(self, name)
            if value not in known:
                raise GhostError(
                    f"unknown {name} {value!r} (known: {', '.join(str(k) for k in known)})"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, default: PaneState | None = None) -> PaneState:
        """A state from remembered values; anything unknown (an older or newer ghosttui) is
        left at ``default`` (the defaults) rather than stopping the app."""
        state = default or cls()
        for f in fields(cls):
            if data and f.name in data:
                try:
                    state = replace(state, **{f.name: data[f.name]})
                except (GhostError, TypeError):
                    continue
        return state

    def cycled(self, name: str, step: int = 1) -> PaneState:
        """The next (or previous) choice of one setting."""
        options = STATE_CHOICES[name]
        index = options.index(getattr(self, name))
        return replace(self, **{name: options[(index + step) % len(options)]})


def default_state(classes: list[str] | tuple[str, ...]) -> PaneState:
    """Where a new session's pattern pane starts: the transpose view when the classes include
    horizontal and vertical (transposing the pattern turns one into the other, so the
    difference shows which is present), the scan-mean difference otherwise."""
    if all(name in classes for name in SWAPPED_BY_TRANSPOSE):
        return PaneState(view="transpose")
    return PaneState()


@dataclass
class Drawing:
    """What the pane shows: the pixels and the caption line that describes them."""

    rgb: np.ndarray  # (H, W, 3) uint8, H even
    caption: tuple[str, str]
    positions: int  # patterns averaged into the query
    references: list[tuple[str, int]]  # (class, patterns averaged) per reference drawn


# -- layout ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    scale: float  # drawn pixels per window pixel, for the query
    query: tuple[int, int]  # drawn size of the query (h, w)
    crop: tuple[int, int]  # window pixels shown (h, w): the whole window unless native
    ref: tuple[int, int]  # drawn size of each reference box (h, w), (0, 0) when none
    below: bool  # references under the query (else right of it)


def _scale(shape: tuple[int, int], height: int, width: int, shrink: bool) -> float:
    h, w = shape
    if h <= height and w <= width:
        return float(max(1, min(height // h, width // w)))
    return min(height / h, width / w) if shrink else 1.0


def plan_layout(
    window: tuple[int, int], n_refs: int, height: int, width: int, *, shrink: bool = True
) -> Layout:
    """Where the query and ``n_refs`` references go in ``height`` x ``width`` pixels.

    The query gets the largest whole-number scale that leaves a strip for the
    references (below or to the right, whichever lets the query be larger, then
    the references); when even scale 1 does not fit it is shrunk, or, with
    ``shrink=False`` (native detector pixels), cropped to what fits.
    """
    height, width = max(2, height), max(1, width)
    h, w = window
    if n_refs == 0:
        s = _scale(window, height, width, shrink)
        crop = (min(h, int(height / s)), min(w, int(width / s)))
        return Layout(s, (int(crop[0] * s), int(crop[1] * s)), crop, (0, 0), True)
    options = []
    for below in (True, False):
        strip = max(MIN_REF, (height if below else width) // 5)
        avail_h = height - GAP - strip if below else height
        avail_w = width if below else width - GAP - strip - BAR
        if avail_h < 2 or avail_w < 1:
            continue
        s = _scale(window, avail_h, avail_w, shrink)
        crop = (min(h, int(avail_h / s)), min(w, int(avail_w / s)))
        qh, qw = int(crop[0] * s), int(crop[1] * s)
        if below:
            ref_h = height - qh - GAP
            ref_w = (width - (n_refs - 1) * GAP) // n_refs - BAR
        else:
            ref_w = width - qw - GAP - BAR
            ref_h = (height - (n_refs - 1) * GAP) // n_refs
        ref = (max(0, min(ref_h, qh)), max(0, min(ref_w, qw)))
        options.append(((s, min(ref), below), Layout(s, (qh, qw), crop, ref, below)))
    if not options:
        return plan_layout(window, 0, height, width, shrink=shrink)
    return max(options, key=lambda o: o[0])[1]


def centre_crop(image: np.ndarray, size: tuple[int, int], centre: tuple[float, float]):
    """The ``size`` window of ``image`` centred on ``centre`` (kept inside the image)."""
    h, w = image.shape[:2]
    ch, cw = min(size[0], h), min(size[1], w)
    top = int(min(max(round(centre[0] + 0.5 - ch / 2), 0), h - ch))
    left = int(min(max(round(centre[1] + 0.5 - cw / 2), 0), w - cw))
    return image[top : top + ch, left : left + cw], (top, left)


def zoom_window(
    image: np.ndarray, zoom: str, centre: tuple[float, float]
) -> tuple[np.ndarray, tuple[float, float]]:
    """The central 1/2 or 1/4 of ``image`` around ``centre`` (``1x`` and ``native``: all of
    it), and where ``centre`` lies in that window."""
    factor = {"2x": 2, "4x": 4}.get(zoom, 1)
    if factor == 1:
        return image, centre
    h, w = image.shape
    size = (max(1, int(h / factor / 2)) * 2, max(1, int(w / factor / 2)) * 2)
    window, (top, left) = centre_crop(image, size, centre)
    return window, (centre[0] - top, centre[1] - left)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Values resized to ``height`` x ``width``: area averages when shrinking (faint disks keep
    their signal), repeated pixels when enlarging."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    if height <= h and width <= w:
        return area_resize(image, height, width).astype(np.float32)
    return resample_nearest(image, height, width)


# -- the pane ----------------------------------------------------------------------------------
class PatternPane:
    """Draws positions of one scan: model inputs, or detector frames for the native zoom."""

    def __init__(
        self,
        inputs: PatternSource,
        classes: list[str],
        colours: list[str],
        state: PaneState | None = None,
        frames: Callable[[], PatternSource] | None = None,
    ) -> None:
        self.inputs = inputs
        self.classes = list(classes)
        self.colours = list(colours)
        self.state = state or PaneState()
        self._frames_factory = frames
        self._frames: PatternSource | None = None
        self._labels: dict[tuple[int, int], int] = {}
        self._probabilities: np.ndarray | None = None
        self._means: dict[tuple[str, int, str], ClassMeans] = {}
        self._model_members: dict[tuple[int, int], int] = {}
        self._members_version = 0
        self._drawn_refs: tuple[tuple[object, ...], list[tuple[int, np.ndarray, int]]] | None = None
        # the scan variation of each (view, averaging, centring, smoothing), the labelled
        # positions' scores along it, and the components last found removable
        self._variations: dict[tuple[object, ...], ScanVariation] = {}
        self._label_scores: dict[tuple[object, ...], dict[tuple[int, int], np.ndarray]] = {}
        self._removable: tuple[tuple[object, ...], tuple[int, ...]] | None = None
        self._decidable = False  # two classes have MIN_LABELS labels (kept by set_labels)

    @classmethod
    def for_session(cls, session: Any, state: PaneState | None = None) -> PatternPane:
        """The pane of a :class:`ghosttui.session.session.Session`: its cache's model inputs,
        its scan's frames for the native zoom, its labels and latest predictions, and the
        pane state it remembers (unless ``state`` is given)."""
        cache = session.cache()
        if state is None:
            state = PaneState.from_dict(
                session.store.get_meta(META_KEY), default_state(session.classes)
            )
        pane = cls(
            ModelInputs(cache),
            session.classes,
            session.colours,
            state,
            frames=lambda: DetectorFrames(session.scan(), cache),
        )
        index = {name: i for i, name in enumerate(session.classes)}
        pane.set_labels({pos: index[lab.cls] for pos, lab in session.store.labels().items()})
        loaded = session.load_predictions()
        pane.set_probabilities(loaded[0] if loaded is not None else None)
        return pane

    # -- inputs ------------------------------------------------------------------------------
    def set_labels(self, labels: dict[tuple[int, int], int]) -> None:
        """Labelled positions -> class index (the labelled references follow them)."""
        if labels != self._labels:
            self._labels = dict(labels)
            self._members_version += 1
            counts = np.bincount(
                np.fromiter(labels.values(), np.int64, len(labels)), minlength=len(self.classes)
            )
            self._decidable = int((counts >= MIN_LABELS).sum()) >= 2

    def set_probabilities(self, probabilities: np.ndarray | None) -> None:
        """The model's class probabilities (Rx, Ry, C) (the model references follow them)."""
        self._probabilities = probabilities
        self._model_members = confident_members(probabilities) if probabilities is not None else {}
        self._members_version += 1

    def source(self) -> PatternSource:
        return self.source_for(self.state)

    def source_for(self, state: PaneState) -> PatternSource:
        """Model inputs, or the detector frames for the native zoom."""
        if state.zoom != "native":
            return self.inputs
        if self._frames is None:
            if self._frames_factory is None:
                raise GhostError("native zoom needs the scan's detector frames")
            self._frames = self._frames_factory()
        return self._frames

    # -- slow inputs ---------------------------------------------------------------------------
    def pending(self, state: PaneState | None = None) -> list[str]:
        """What a state (default: the current one) needs that is not computed yet (each takes
        a pass over a sample of the scan, up to a second on a large one): the descan fit, the
        scan mean."""
        st = state or self.state
        src = self.source_for(st)
        needs = []
        if st.centring == "descan" and not src.has_descan():
            needs.append("descan fit")
        if st.view in REFERENCE_VIEWS and not src.has_mean(st.centring):
            needs.append("scan mean")
        if self.wants_variation(st):
            key = self._variation_key(st)
            known = self._label_scores.get(key, {})
            missing = sum(p not in known for p in self._labels)
            if key not in self._variations or missing > LABEL_SCORES_INLINE:
                needs.append("scan variation")
        return needs

    def prepare(self, state: PaneState | None = None) -> None:
        """Compute what :meth:`pending` lists (thread-safe: the app runs it in a worker, with
        the state it captured)."""
        st = state or self.state
        src = self.source_for(st)
        if st.centring == "descan":
            src.descan()
        if st.view in REFERENCE_VIEWS:
            src.scan_mean(st.centring)
        if self.wants_variation(st):
            self.label_scores(st, self.variation(st))

    def stand_in(self) -> PaneState:
        """What to draw while :meth:`pending` is not empty: one fixed centre, the raw pattern
        instead of a difference from the scan mean, the scan variation kept."""
        st = self.state
        return replace(
            st,
            centring="scan",
            view="raw" if st.view in REFERENCE_VIEWS else st.view,
            variation="kept",
        )

    # -- the scan's own variation ----------------------------------------------------------------
    def wants_variation(self, state: PaneState | None = None) -> bool:
        """Whether a state removes scan variation: one of :data:`VARIATION_VIEWS` on the model
        inputs, set to remove it, with at least two classes of :data:`MIN_LABELS` labels to
        decide what."""
        st = state or self.state
        if st.variation != "removed" or st.view not in VARIATION_VIEWS or st.zoom == "native":
            return False
        return self._decidable

    def _variation_key(self, state: PaneState) -> tuple[object, ...]:
        return (state.view, state.average, state.centring, state.smooth)

    def values_at(self, state: PaneState, positions: list[tuple[int, int]]) -> np.ndarray:
        """(n, H, W) the view values a state draws for the query at each position (before
        the scan variation is removed)."""
        return np.stack(
            [self.finish(self.query_values(rx, ry, state)[0], state) for rx, ry in positions]
        )

    def variation(self, state: PaneState) -> ScanVariation:
        """The scan variation of a state's view (computed once from :data:`SAMPLE` positions
        spread evenly over the scan; thread-safe)."""
        key = self._variation_key(state)
        found = self._variations.get(key)
        if found is None:
            spread = self.inputs.mean_positions()
            if len(spread) > SAMPLE:
                spread = spread[np.linspace(0, len(spread) - 1, SAMPLE).round().astype(int)]
            where = [(int(rx), int(ry)) for rx, ry in spread]
            found = self._variations[key] = scan_variation(self.values_at(state, where))
        return found

    def label_scores(
        self, state: PaneState, variation: ScanVariation
    ) -> dict[tuple[int, int], np.ndarray]:
        """Each labelled position's scores along the scan variation (the new ones computed)."""
        key = self._variation_key(state)
        known = self._label_scores.get(key, {})
        new = [p for p in self._labels if p not in known]
        if new:
            scores = variation.scores(self.values_at(state, new))
            known = {**known, **dict(zip(new, scores, strict=True))}
            self._label_scores[key] = known
        return known

    def removed_components(self) -> tuple[ScanVariation, tuple[int, ...]] | None:
        """The current state's scan variation and the components of it removed (None when the
        state removes none: see :meth:`wants_variation`)."""
        st = self.state
        if not self.wants_variation(st):
            return None
        key = self._variation_key(st)
        variation = self.variation(st)
        wanted = (key, self._members_version)
        if self._removable is None or self._removable[0] != wanted:
            scores = self.label_scores(st, variation)
            labelled = list(self._labels)
            which = removable(
                np.stack([scores[p] for p in labelled]),
                np.array([self._labels[p] for p in labelled]),
            )
            self._removable = (wanted, which)
        return variation, self._removable[1]

    def without_variation(self, values: np.ndarray) -> np.ndarray:
        """``values`` of the current state without the removed scan variation."""
        removed = self.removed_components()
        if removed is None:
            return values
        variation, which = removed
        return variation.remove(values, which)

    # -- values --------------------------------------------------------------------------------
    def query_values(
        self, rx: int, ry: int, state: PaneState | None = None
    ) -> tuple[np.ndarray, int, tuple[float, float]]:
        """The view's values at (rx, ry) on the source's whole pattern, how many positions
        were averaged, and the centre the zoom uses.

        A neighbourhood is averaged first and the mean centred as one pattern: neighbours
        drift by far less than a pixel from each other, and one centre measured on their
        mean is steadier than one per noisy pattern.
        """
        st = state or self.state
        src = self.source_for(st)
        rows, cols = neighbourhood(rx, ry, st.average, src.scan_shape)
        if st.view == "raw" and st.average == 1:
            return src.block(rows, cols)[0], 1, src.centre
        centre = grid_centre(src.centre)
        reference = None
        if st.view == "local":
            outer = neighbourhood(rx, ry, st.average + 2 * LOCAL_MARGIN, src.scan_shape)
            block = src.block(*outer)
            ring = ring_mask(*outer, (rows, cols))
            count = int((~ring).sum())
            means = [block[~ring].mean(0), block[ring].mean(0) if ring.any() else None]
            if means[1] is None:
                means[1] = means[0]
            here = np.array([[rx, ry], [rx, ry]])
            query, reference = src.centred(np.stack(means), st.centring, here)
        else:
            block = src.block(rows, cols)
            count = len(block)
            query = src.centred(block.mean(0, keepdims=True), st.centring, np.array([[rx, ry]]))[0]
            if st.view == "mean":
                reference = src.scan_mean(st.centring)
        return view_values(query, st.view, centre, reference), count, centre

    def reference_values(self) -> list[tuple[int, np.ndarray, int]]:
        """(class index, values, count) of each class reference in the current view, smoothed
        like the query (kept until the labels, predictions or view change).

        In the ``local`` view a reference is its class mean minus the scan mean (the
        neighbourhoods of every member would be needed for more).
        """
        st = self.state
        if st.references == "off":
            return []
        members = self._labels if st.references == "labels" else self._model_members
        if not members:
            return []
        src = self.source()
        wanted = (
            st.references,
            st.view,
            st.centring,
            st.smooth,
            st.variation,
            st.average,
            id(src),
            self._members_version,
        )
        if self._drawn_refs is not None and self._drawn_refs[0] == wanted:
            return self._drawn_refs[1]
        key = (st.references, id(src), st.centring)
        means = self._means.get(key)
        if means is None:
            means = self._means[key] = ClassMeans(src, len(self.classes), st.centring)
        means.sync(members)
        centre = grid_centre(src.centre)
        out = []
        for index, (mean, count) in enumerate(means.means()):
            if mean is None:
                continue
            reference = src.scan_mean(st.centring) if st.view in REFERENCE_VIEWS else None
            view = "mean" if st.view == "local" else st.view
            values = self.without_variation(self.finish(view_values(mean, view, centre, reference)))
            out.append((index, values, count))
        self._drawn_refs = (wanted, out)
        return out

    # -- pixels ----------------------------------------------------------------------------------
    def colour(self, values: np.ndarray) -> np.ndarray:
        st = self.state
        if st.view == "raw":
            return Contrast(mode=st.contrast, low=1.0, high=st.clip).to_rgb(values)
        return diverging_rgb(signed_unit(values, st.scale, st.contrast))

    def finish(self, values: np.ndarray, state: PaneState | None = None) -> np.ndarray:
        """Difference views, when ``smooth``: averaged over the probe's disk."""
        st = state or self.state
        if st.view == "raw" or not st.smooth:
            return values
        return disk_smooth(values, self.source_for(st).radius)

    def draw(
        self,
        rx: int,
        ry: int,
        height: int | None = None,
        width: int | None = None,
        *,
        wait: bool = True,
    ) -> Drawing:
        """The pane for position (rx, ry) in ``height`` x ``width`` pixels (None: the query at
        full resolution, for terminal graphics and the external viewer).

        With ``wait=False`` a state whose slow inputs are not ready yet is drawn as its
        :meth:`stand_in` (the app computes them in the background meanwhile).
        """
        if not wait and self.pending():
            chosen, self.state = self.state, self.stand_in()
            try:
                drawing = self.draw(rx, ry, height, width)
            finally:
                self.state = chosen
            drawing.caption = self.caption(rx, ry)
            return drawing
        st = self.state
        values, count, centre = self.query_values(rx, ry)
        values = self.without_variation(self.finish(values))
        window, centre = zoom_window(values, st.zoom, centre)
        refs = self.reference_values()
        native = st.zoom == "native"
        if height is None or width is None:
            height = window.shape[0] + (GAP + max(MIN_REF, window.shape[0] // 3) if refs else 0)
            width = max(window.shape[1], len(refs) * (MIN_REF + BAR + GAP))
        layout = plan_layout(window.shape, len(refs), height, width, shrink=not native)
        shown, _ = centre_crop(window, layout.crop, centre)
        query_rgb = self.colour(resize(shown, *layout.query))
        pictures = [query_rgb]
        if refs and min(layout.ref) > 0:
            ref_scale = layout.scale / 2
            size = (
                max(1, math.floor(layout.ref[0] / ref_scale)),
                max(1, math.floor(layout.ref[1] / ref_scale)),
            )
            for index, ref_values, _ in refs:
                ref_window, ref_centre = zoom_window(
                    ref_values, st.zoom, grid_centre(self.source().centre)
                )
                crop, _ = centre_crop(ref_window, size, ref_centre)
                drawn_h = min(layout.ref[0], round(crop.shape[0] * ref_scale))
                drawn_w = min(layout.ref[1], round(crop.shape[1] * ref_scale))
                pictures.append(self._with_bar(self.colour(resize(crop, drawn_h, drawn_w)), index))
        rgb = _compose(pictures, layout.below)
        names = [(self.classes[i], n) for i, _, n in refs]
        return Drawing(rgb, self.caption(rx, ry), count, names)

    def _with_bar(self, rgb: np.ndarray, index: int) -> np.ndarray:
        bar = np.empty((rgb.shape[0], BAR, 3), np.uint8)
        bar[:] = readable_rgb(self.colours[index])
        return np.concatenate([bar, rgb], axis=1)

    def positions(self, rx: int, ry: int) -> int:
        """How many positions the query averages (fewer at the scan's edges)."""
        rows, cols = neighbourhood(rx, ry, self.state.average, self.inputs.scan_shape)
        return (rows.stop - rows.start) * (cols.stop - cols.start)

    def reference_counts(self) -> list[tuple[int, int]]:
        """(class index, patterns) of each reference the current state draws."""
        st = self.state
        if st.references == "off":
            return []
        members = self._labels if st.references == "labels" else self._model_members
        counts = np.bincount(
            np.fromiter(members.values(), np.int64, len(members)), minlength=len(self.classes)
        )
        return [(i, int(n)) for i, n in enumerate(counts) if n > 0]

    def variation_caption(self) -> str:
        """`` − scan variation 7/8`` while the drawing has components removed (7 of the 8
        looked at), else nothing. Before the scan variation is ready it waits for it (the
        stand-in keeps the variation); after, it decides as the drawing does."""
        st = self.state
        if not self.wants_variation(st) or "scan variation" in self.pending(st):
            return ""
        removed = self.removed_components()
        if removed is None:
            return ""
        variation, which = removed
        return f" − scan variation {len(which)}/{len(variation.components)}"

    def caption(self, rx: int, ry: int) -> tuple[str, str]:
        """Two short lines saying what the pane shows at (rx, ry): the view and how many
        positions it averages; the resolution, zoom, contrast and references."""
        st = self.state
        k = st.average
        what = (
            VIEWS[st.view]
            + self.variation_caption()
            + " · "
            + ("1 position" if k == 1 else f"{k}x{k}: {self.positions(rx, ry)} positions")
        )
        src = self.source()
        waiting = self.pending()
        if waiting:
            what += f" · preparing {' and '.join(waiting)}…"
        how = [src.label + (" 1:1" if st.zoom == "native" else f" {st.zoom}")]
        if st.view == "raw":
            how.append(f"{st.contrast} {st.clip:g}%")
        else:
            how.append(f"{st.contrast} ±{st.scale:g}" + (" smooth" if st.smooth else ""))
        if st.references != "off":
            counts = self.reference_counts()
            shown = "/".join(str(n) for _, n in counts) if counts else "none yet"
            how.append(f"refs {st.references} {shown}")
        return what, " · ".join(how)


def _compose(pictures: list[np.ndarray], below: bool) -> np.ndarray:
    """The query and its references on a black canvas of even height."""
    query, refs = pictures[0], pictures[1:]
    if not refs:
        height, width = query.shape[:2]
        canvas = np.zeros((height + height % 2, width, 3), np.uint8)
        canvas[:height, :width] = query
        return canvas
    if below:
        strip_w = sum(r.shape[1] for r in refs) + GAP * (len(refs) - 1)
        strip_h = max(r.shape[0] for r in refs)
        width = max(query.shape[1], strip_w)
        height = query.shape[0] + GAP + strip_h
    else:
        strip_w = max(r.shape[1] for r in refs)
        strip_h = sum(r.shape[0] for r in refs) + GAP * (len(refs) - 1)
        width = query.shape[1] + GAP + strip_w
        height = max(query.shape[0], strip_h)
    canvas = np.zeros((height + height % 2, width, 3), np.uint8)
    qh, qw = query.shape[:2]
    left = (width - qw) // 2 if below else 0
    canvas[:qh, left : left + qw] = query
    if below:
        x = (width - strip_w) // 2
        for r in refs:
            canvas[qh + GAP : qh + GAP + r.shape[0], x : x + r.shape[1]] = r
            x += r.shape[1] + GAP
    else:
        y = 0
        for r in refs:
            canvas[y : y + r.shape[0], qw + GAP : qw + GAP + r.shape[1]] = r
            y += r.shape[0] + GAP
    return canvas
