"""``ghosttui label``: keyboard labelling with the live domain map and background retraining."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, get_current_worker

from ghosttui.errors import GhostError, StorageError
from ghosttui.loop.controller import Current, LabellingController
from ghosttui.loop.promotion import absent_classes
from ghosttui.loop.report import choice_text, learner_text
from ghosttui.loop.rounds import TrainingJob
from ghosttui.render.pane import META_KEY as PANE_META
from ghosttui.render.pane import PaneState, PatternPane
from ghosttui.session.keys import ACTIONS, key_character
from ghosttui.session.session import Session
from ghosttui.tui.idle_gc import IdleCollector
from ghosttui.tui.keymap import app_bindings, session_keymap
from ghosttui.tui.messages import (
    PanePrepared,
    TrainingFinished,
    TrainingProgress,
    TrainingStopped,
)
from ghosttui.tui.render_mode import colour_warning
from ghosttui.tui.screens.goto import GoToScreen
from ghosttui.tui.screens.help import HelpScreen
from ghosttui.tui.viewer import ExternalViewer
from ghosttui.tui.widgets.pattern_view import PatternView
from ghosttui.tui.widgets.scan_map import ScanMap
from ghosttui.tui.widgets.status_panel import StatusInfo, StatusPanel

MIN_SIZE = (120, 40)
PROGRESS_INTERVAL = 0.25  # seconds between progress messages from the training thread
MAP_META = "map"  # where the session remembers the map's layer and zoom
REMEMBER_AFTER = 1.0  # seconds after the last view change that the session stores it
RETRY_SECONDS = 2.0  # a label the disk refused is saved again this often (and on every key)


def saving(action: Callable[..., None]) -> Callable[..., None]:
    """An action that writes the session: a label the disk refused is saved first, and a
    write that fails (disk full, read-only) is a notice, never a crash."""

    @functools.wraps(action)
    def run(self: GhostApp, *args: Any) -> None:
        if not self.save_unsaved():
            self.bell()
            self.notify_unsaved()
            return
        try:
            action(self, *args)
        except StorageError as exc:
            self.notify(f"cannot save: {exc}", severity="error", timeout=8)
            self.show_current()

    return run


class GhostApp(App[None]):
    """The labelling app. Build one with :func:`create_app`.

    Bindings are static (one per action of :data:`ghosttui.session.keys.ACTIONS`,
    nine label slots); the session's class keys and ``[keys]`` overrides are
    applied as a keymap.
    """

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "ghosttui"
    BINDINGS: ClassVar[list[BindingType]] = app_bindings()

    def __init__(
        self, session: Session, *, render: str = "halfblock", viewer: str | None = None
    ) -> None:
        super().__init__()
        self.session = session
        self.render_mode = render
        self.controller = LabellingController(session)
        self.viewer = ExternalViewer(viewer, session.name)
        self.training_worker: Worker[None] | None = None
        self.recent: list[tuple[int, int, str, str]] = []
        self.sub_title = f"{session.name} · {os.path.basename(session.settings.data.path)}"
        self._cache = session.cache()
        self._idle_gc = IdleCollector()
        self.keys = session_keymap(session.settings)
        self.set_keymap(self.keys.keymap)
        self._clashes_reported: set[str] = set()
        self._remembered: dict[str, object] = {}
        self._remember_timer: Timer | None = None
        self.pane = PatternPane.for_session(session)
        self._preparing = False
        self._pane_probabilities: object = self.controller.probabilities
        # a label the disk refused: (class, the pattern it belongs to); saved again on the
        # next key and every RETRY_SECONDS, and never dropped without telling the user
        self.unsaved: tuple[str, Current] | None = None
        self._quit_warned = False

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="main"):
            yield PatternView(self.pane, self.render_mode, id="pattern")
            yield ScanMap("ascii" if self.render_mode == "ascii" else "halfblock", id="map")
            yield StatusPanel(id="status")
        yield Static("", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        scan_map = self.query_one(ScanMap)
        scan_map.configure(
            self._cache.vbf, self._cache.adf, self.session.classes, self.session.colours
        )
        for problem in self.keys.problems:
            self.notify(problem, severity="warning", timeout=8)
        warning = colour_warning(getattr(self.console, "color_system", None))
        if warning and self.render_mode in ("halfblock", "external"):
            self.notify(warning, severity="warning", timeout=12)
        self._check_size()
        remembered = self.session.store.get_meta(MAP_META) or {}
        scan_map.restore(
            remembered.get("layer"), remembered.get("zoom"), self.controller.probabilities
        )
        self.show_current()
        self.prepare_pane()
        self.query_one(StatusPanel).training(self._model_line())
        self.drive_training()
        self._idle_gc.start()
        self.set_interval(0.25, self._idle_gc.tick)
        self.set_interval(RETRY_SECONDS, self._retry_unsaved)

    def on_unmount(self) -> None:
        self._idle_gc.stop()
        self._save_remembered()

    def remember(self, key: str, value: object) -> None:
        """Keep a view setting in the session, written shortly after the last change (a
        database write with fsync per key press would cost more than the redraw)."""
        self._remembered[key] = value
        if self._remember_timer is not None:
            self._remember_timer.stop()
        self._remember_timer = self.set_timer(REMEMBER_AFTER, self._save_remembered)

    def _save_remembered(self) -> None:
        if self._remember_timer is not None:
            self._remember_timer.stop()
            self._remember_timer = None
        for key, value in self._remembered.items():
            self.session.store.set_meta(key, value)
        self._remembered.clear()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._idle_gc.key_pressed()
        await super().on_event(event)

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int | None = None, height: int | None = None) -> None:
        if width is None or height is None:
            width, height = self.size
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        self.screen.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"ghosttui needs a terminal of at least {MIN_SIZE[0]}x{MIN_SIZE[1]}; this one is "
                f"{width}x{height}. Enlarge it (labels are safe; q quits)."
            )

    # -- showing -------------------------------------------------------------------------------
    def show_current(self) -> None:
        controller = self.controller
        current = controller.current()
        pattern_view = self.query_one(PatternView)
        index = {name: i for i, name in enumerate(self.session.classes)}
        labels = {pos: index[lab.cls] for pos, lab in controller.labels.items()}
        self.pane.set_labels(labels)
        self.prepare_pane()  # enough labels to remove scan variation, or many new ones
        if controller.probabilities is not self._pane_probabilities:
            self._pane_probabilities = controller.probabilities
            self.pane.set_probabilities(controller.probabilities)
        if current is None:
            pattern_view.show(None, f"[b]no query[/]: {controller.message}")
        else:
            source = "manual" if current.manual else current.source
            label = f" · labelled [b]{current.label}[/]" if current.label else ""
            pattern_view.show(
                (current.rx, current.ry), f"[b]({current.rx}, {current.ry})[/] {source}{label}"
            )
            if self.render_mode == "external":
                self._update_viewer(open_viewer=False)
        self.query_one(ScanMap).update_state(
            labels=labels,
            probabilities=controller.probabilities,
            cursor=(current.rx, current.ry) if current else None,
        )
        self.update_status(current)

    def update_status(self, current: Current | None = None) -> None:
        c = self.controller
        current = current if current is not None else c.current()
        verdict = c.stability()
        holdout = c.estimate().holdout
        spec = self.session.settings.sampling
        info = StatusInfo(
            session=self.session.name,
            strategy=spec.strategy,
            round=self.session.store.round,
            position=(current.rx, current.ry) if current else None,
            source=("manual" if current and current.manual else current.source if current else ""),
            current_label=current.label if current else None,
            counts=c.counts(),
            colours=self.session.colours,
            keys=[s.key for s in self.session.settings.classes],
            budget=spec.budget,
            training_labels=sum(1 for lab in c.labels.values() if lab.source != "holdout"),
            pending=len(self.session.store.pending()),
            plan=c.message,
            model_round=c.model.round if c.model else None,
            model_id=c.model.id if c.model else None,
            model_stale=c.model_is_stale(),
            model_absent=absent_classes(c.model.metrics) if c.model else [],
            candidates=len(c.candidates()),
            holdout_accuracy=holdout.accuracy,
            holdout_ci=holdout.ci95,
            holdout_n=holdout.total,
            stability=verdict.verdict,
            stability_reason=verdict.reason,
            stopping_rule=c.stopping_rule,
            recent=self.recent,
        )
        self.query_one(StatusPanel).show(info)

    # -- saving when the disk refuses ------------------------------------------------------------
    def save_unsaved(self) -> bool:
        """Save the label the disk refused earlier; True when no label waits any more."""
        if self.unsaved is None:
            return True
        cls, where = self.unsaved
        current = self.controller.current()
        if current is None or (current.rx, current.ry, current.queue_item) != (
            where.rx,
            where.ry,
            where.queue_item,
        ):
            self.unsaved = None  # the query it answered is gone: say so rather than guess
            self.notify(
                f"the label {cls} at ({where.rx}, {where.ry}) could not be saved; label it again",
                severity="error",
                timeout=12,
            )
            return True
        before = self.session.store.last_event_id()
        try:
            self.controller.label(cls)
        except StorageError:
            if self.session.store.last_event_id() == before:
                return False
        self.unsaved = None
        self._quit_warned = False
        self.notify(f"saved the kept label {cls} at ({where.rx}, {where.ry})", timeout=3)
        return True

    def notify_unsaved(self) -> None:
        if self.unsaved is not None:
            cls, where = self.unsaved
            self.notify(
                f"cannot save yet: label {cls} at ({where.rx}, {where.ry}) is kept and retried; "
                "free some disk space",
                severity="error",
                timeout=6,
            )

    def _retry_unsaved(self) -> None:
        if self.unsaved is not None and self.save_unsaved():
            self.show_current()

    # -- labelling actions ---------------------------------------------------------------------
    @saving
    def action_label(self, index: int) -> None:
        if index >= len(self.session.classes):
            return
        cls = self.session.classes[index]
        before = self.controller.current()
        if before is None:
            self.bell()
            return
        round_before = self.controller.round
        recorded = self.session.store.last_event_id()
        try:
            self.controller.label(cls)
        except StorageError as exc:
            if self.session.store.last_event_id() == recorded:  # not saved: keep it, retry
                self.unsaved = (cls, before)
                self.notify(
                    f"cannot save: {exc} (label kept, will retry)", severity="error", timeout=8
                )
                self.show_current()
                return
            self.notify(f"cannot save the next round: {exc} (label saved)", severity="error")
        self.recent.append((before.rx, before.ry, cls, self.session.colours[index]))
        self.recent = self.recent[-8:]
        self.show_current()
        self._after_answer(round_before)

    def _after_answer(self, round_before: int) -> None:
        """Say when a round ended or the budget is spent; start the training it asks for."""
        c = self.controller
        if c.done and c.current() is None:
            self.notify(f"{c.message}: keep labelling by hand (arrows), or + to raise the budget")
        elif c.round != round_before or c.waiting:
            self.notify(f"round {round_before} ended: {c.message}", timeout=4)
        self.drive_training()

    @saving
    def action_skip(self) -> None:
        round_before = self.controller.round
        if self.controller.skip() is None:
            self.bell()
            return
        self.show_current()
        self._after_answer(round_before)

    @saving
    def action_undo(self) -> None:
        event = self.controller.undo()
        if event is None:
            self.notify("nothing to undo")
            return
        what = f"{event.kind} {event.cls}" if event.cls else event.kind
        self.notify(f"undid {what} at ({event.rx}, {event.ry})", timeout=2)
        if event.kind in ("label", "relabel") and self.recent:
            self.recent.pop()
        self.show_current()
        self.drive_training()

    @saving
    def action_move(self, drx: int, dry: int) -> None:
        self.controller.move_cursor(drx, dry)
        self.show_current()

    def action_goto(self) -> None:
        current = self.controller.current()
        here = (current.rx, current.ry) if current else None
        self.push_screen(GoToScreen(self.session.scan_shape, here), self._go_to)

    @saving
    def _go_to(self, target: tuple[int, int] | None) -> None:
        if target is not None:
            self.controller.goto(*target)
            self.show_current()

    @saving
    def action_leave_manual(self) -> None:
        if self.controller.cursor is not None:
            self.controller.leave_manual()
            self.show_current()

    @saving
    def action_budget(self) -> None:
        budget = self.controller.extend_budget()
        self.notify(f"label budget raised to {budget}")
        self.show_current()
        self.drive_training()

    # -- view actions --------------------------------------------------------------------------
    def set_pane_state(self, state: PaneState) -> None:
        """Show the pattern with new pane settings and remember them in the session."""
        previous = self.pane.state
        self.pane.state = state
        try:
            self.pane.source()  # the native zoom opens the scan's detector frames
        except GhostError as exc:
            self.pane.state = previous
            self.notify(str(exc), severity="error")
            return
        self.remember(PANE_META, state.to_dict())
        self.query_one(PatternView).redraw()
        self.prepare_pane()
        if self.render_mode == "external":
            self._update_viewer(open_viewer=False)

    def prepare_pane(self) -> None:
        """Compute the pane's slow inputs (descan fit, scan mean, scan variation) off the
        keystroke path."""
        if self.pane.pending() and not self._preparing:
            self._preparing = True
            self.prepare_in_background(self.pane.state)

    @work(thread=True, group="pane", exit_on_error=False)
    def prepare_in_background(self, state: PaneState) -> None:
        try:
            self.pane.prepare(state)
        except GhostError as exc:
            self.post_message(PanePrepared(str(exc)))
            return
        self.post_message(PanePrepared())

    def on_pane_prepared(self, message: PanePrepared) -> None:
        self._preparing = False
        if message.error:
            self.notify(message.error, severity="error")
            return
        self.query_one(PatternView).redraw()
        if self.render_mode == "external":
            self._update_viewer(open_viewer=False)
        self.prepare_pane()  # the view may have changed meanwhile

    def action_view(self) -> None:
        self.set_pane_state(self.pane.state.cycled("view"))

    def action_view_back(self) -> None:
        self.set_pane_state(self.pane.state.cycled("view", -1))

    def action_average(self) -> None:
        self.set_pane_state(self.pane.state.cycled("average"))

    def action_references(self) -> None:
        state = self.pane.state.cycled("references")
        if state.references == "model" and self.controller.probabilities is None:
            state = state.cycled("references")  # no model yet: off
        self.set_pane_state(state)

    def action_smooth(self) -> None:
        self.set_pane_state(self.pane.state.cycled("smooth"))

    def action_variation(self) -> None:
        self.set_pane_state(self.pane.state.cycled("variation"))

    def action_contrast(self) -> None:
        self.set_pane_state(self.pane.state.cycled("contrast"))

    def action_clip(self) -> None:
        state = self.pane.state
        self.set_pane_state(state.cycled("clip" if state.view == "raw" else "scale"))

    def action_zoom(self) -> None:
        self.set_pane_state(self.pane.state.cycled("zoom"))

    def action_layer(self) -> None:
        layer = self.query_one(ScanMap).cycle_layer()
        if layer == "labels" and self.controller.probabilities is None:
            self.notify("no domain map yet: it appears after the first training round", timeout=3)

    def action_map_zoom(self) -> None:
        self.query_one(ScanMap).cycle_zoom()

    def on_scan_map_view_changed(self, message: ScanMap.ViewChanged) -> None:
        self.remember(MAP_META, {"layer": message.layer, "zoom": message.zoom})

    def action_external(self) -> None:
        self._update_viewer(open_viewer=True)

    def _update_viewer(self, open_viewer: bool) -> None:
        rgb = self.query_one(PatternView).export_rgb()
        if rgb is None:
            return
        try:
            self.viewer.write(rgb)
            if open_viewer or self.render_mode == "external":
                message = self.viewer.open()
                if open_viewer:
                    self.notify(message, timeout=4)
        except (GhostError, OSError) as exc:
            self.notify(str(exc), severity="error")

    def action_help(self) -> None:
        rows = []
        for i, spec in enumerate(self.session.settings.classes):
            rows.append((f"{spec.key} / {i + 1}", f"label_{i + 1}", f"label as {spec.name}"))
        for action in ACTIONS:
            keys = self.keys.keys[action.id]
            rows.append((_display(keys) if keys else "(no key)", action.id, action.description))
        self.push_screen(HelpScreen(rows))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "label" and parameters:
            return int(parameters[0]) < len(self.session.classes)  # type: ignore[arg-type]
        called = f"{action}({','.join(str(p) for p in parameters)})" if parameters else action
        return not any(a.action == called and a.id in self.keys.disabled for a in ACTIONS)

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node: object) -> None:
        for binding in clashed_bindings:
            if binding.id and binding.id not in self._clashes_reported:
                self._clashes_reported.add(binding.id)
                self.notify(
                    f"key {binding.key!r} of {binding.id} is bound twice; check session.toml [keys]",
                    severity="warning",
                )

    # -- training ------------------------------------------------------------------------------
    def training_running(self) -> bool:
        return self.training_worker is not None and self.training_worker.is_running

    def _model_line(self) -> str:
        c = self.controller
        if c.failure:
            return f"training failed: {c.failure} (r retries)"
        if c.model is None:
            return "model: none yet"
        learner = learner_text(c.model.metrics)
        how = f", {learner}" if learner else ""
        why = choice_text(c.model.metrics)
        line = f"model {c.model.id} (round {c.model.round}{how}) in use"
        return f"{line}\n{why}" if why else line

    def drive_training(self) -> None:
        """Cancel a stale training job; start the job the controller asks for."""
        c = self.controller
        if self.training_running():
            if c.running_job_is_stale() and self.training_worker is not None:
                self.notify("labels changed under the running training: restarting it", timeout=3)
                self.training_worker.cancel()
            return
        job = c.next_training()
        if job is not None:
            self.start_training(job)

    def action_retrain(self) -> None:
        if self.training_running():
            self.notify("already training")
            return
        try:
            self.controller.request_training()
        except GhostError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.drive_training()

    def action_promote(self) -> None:
        try:
            record = self.controller.promote()
        except GhostError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.notify(f"model {record.id} (round {record.round}) is now in use")
        self.query_one(StatusPanel).training(self._model_line())
        self.show_current()

    def start_training(self, job: TrainingJob) -> None:
        self.controller.training_started(job)
        self.query_one(StatusPanel).training(f"training: {job.reason}", 0, None)
        self.training_worker = self.train_in_background(job)

    @work(thread=True, group="training", exit_on_error=False)
    def train_in_background(self, job: TrainingJob) -> None:
        from ghosttui.loop.rounds import RoundUpdate, TrainingCancelled, train_model
        from ghosttui.model.device import cpu_threads

        worker = get_current_worker()
        last = 0.0

        def progress(update: RoundUpdate) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL or update.done >= update.total:
                last = now
                self.post_message(
                    TrainingProgress(update.stage, update.done, update.total, update.message)
                )

        try:
            trained = train_model(
                self.session,
                job,
                progress=progress,
                should_stop=lambda: worker.is_cancelled,
                threads=cpu_threads(reserve=1),  # leave a core for the interface
            )
        except TrainingCancelled:
            self.post_message(TrainingStopped(job))
            return
        except GhostError as exc:
            self.post_message(TrainingStopped(job, str(exc)))
            return
        self.post_message(TrainingFinished(trained))

    def on_training_progress(self, message: TrainingProgress) -> None:
        text = f"{message.stage}: {message.text}" if message.text else message.stage
        self.query_one(StatusPanel).training(text, message.done, message.total)

    def on_training_finished(self, message: TrainingFinished) -> None:
        self.training_worker = None  # its last act was to post this message
        self.save_unsaved()  # before the new model may replace the query it answers
        try:
            verdict = self.controller.training_finished(message.trained)
        except StorageError as exc:
            self.notify(f"cannot record the new model: {exc}", severity="error", timeout=8)
            return
        job = message.trained.job
        if verdict.take:
            self.notify(f"round {job.round} model in use: map and queue updated", timeout=3)
        else:
            self.notify(
                f"round {job.round} model kept as a candidate: {verdict.reason} (p uses it)",
                severity="warning",
                timeout=6,
            )
        self.query_one(StatusPanel).training(self._model_line())
        self.show_current()
        self.drive_training()

    def on_training_stopped(self, message: TrainingStopped) -> None:
        self.training_worker = None
        if message.error is not None:
            self.controller.training_failed(message.job, message.error)
            self.notify(message.error, severity="error")
        else:
            self.controller.training_cancelled(message.job)
        self.query_one(StatusPanel).training(self._model_line())
        self.update_status()
        self.drive_training()

    async def action_quit(self) -> None:
        if not self.save_unsaved() and not self._quit_warned:
            self._quit_warned = True
            self.notify(
                "one label is not saved (the disk refused it); free space and it is saved, "
                "or press q again to quit without it",
                severity="error",
                timeout=12,
            )
            return
        if self.training_worker is not None:
            self.training_worker.cancel()
        self.exit()


def create_app(
    session: Session, *, render: str = "halfblock", viewer: str | None = None
) -> GhostApp:
    """The labelling app for ``session`` (its keys from the session's settings)."""
    return GhostApp(session, render=render, viewer=viewer)


KEY_DISPLAY = {"escape": "esc", "space": "space", "pageup": "pgup", "pagedown": "pgdn"}


def _display(keys: list[str]) -> str:
    """Key names as a person reads them: ``]``, ``?``, ``shift+left``."""
    return " / ".join(KEY_DISPLAY.get(k) or key_character(k) or k for k in keys)
