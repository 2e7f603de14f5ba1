"""Showing a pattern in an external image viewer (a desktop viewer on a mounted disk, or
an image-reloading viewer such as ``feh --auto-reload`` or ``eog``)."""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ghosttui.errors import GhostError
from ghosttui.files import atomic_output


class ExternalViewer:
    """Writes the shown pattern to one PNG (replaced atomically) and starts the viewer once."""

    def __init__(self, command: str | None, session: str, folder: str | Path | None = None) -> None:
        self.command = command or os.environ.get("GHOSTTUI_VIEWER") or ""
        base = (
            Path(folder)
            if folder
            else Path(tempfile.gettempdir()) / f"ghosttui-{getpass.getuser()}"
        )
        base.mkdir(parents=True, exist_ok=True)
        self.path = base / f"{session}-pattern.png"
        self._process: subprocess.Popen | None = None

    def write(self, rgb: np.ndarray, scale: int = 0) -> Path:
        if scale == 0:
            scale = max(1, 512 // max(rgb.shape[:2]))
        big = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
        # ghosttui's own scratch file: no session guard, no fsync (it is redrawn on every key)
        with atomic_output(self.path, guard=False, durable=False) as tmp:
            Image.fromarray(big).save(tmp, format="PNG")
        return self.path

    def open(self) -> str:
        """Start the viewer on the PNG unless it is still running; returns what happened."""
        if not self.command:
            return f"wrote {self.path} (set --viewer or $GHOSTTUI_VIEWER to open it automatically)"
        if self._process is not None and self._process.poll() is None:
            return f"updated {self.path}"
        args = shlex.split(self.command)
        args = (
            [a.replace("{}", str(self.path)) for a in args]
            if "{}" in self.command
            else [*args, str(self.path)]
        )
        try:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise GhostError(f"cannot start viewer {args[0]!r} ({exc.strerror})") from exc
        return f"opened {self.path} in {args[0]}"
