"""Checkpoints: weights plus plain metadata, loaded with ``weights_only=True``.

A checkpoint is a dict of tensors and strings saved by ``torch.save``; the
metadata (classes, input size, preprocessing, round, metrics, session id) is a
JSON string, so loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ghosttui.errors import ModelError
from ghosttui.files import storage_error, write_bytes_atomic
from ghosttui.model.network import build_network

FORMAT = "ghosttui-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    path: Path
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def round(self) -> int:
        return int(self.meta.get("round", 0))

    def build(self) -> nn.Module:
        model = build_network(
            self.meta["arch"],
            len(self.classes),
            int(self.meta["input_size"]),
            **self.meta.get("arch_config", {}),
        )
        model.load_state_dict(self.state_dict)
        return model.eval()


def save_checkpoint(
    path: str | Path,
    state_dict: dict[str, torch.Tensor],
    meta: dict[str, Any],
    *,
    guard: bool = False,
) -> Path:
    """Write atomically and durably (serialised in memory, then one checked write).

    Checkpoints are a session's own files (``checkpoints/``), so the session guard is
    off unless asked for. Serialising first means a full disk is an ``OSError`` of a
    plain write, reported as one line naming ``path``, never torch's own error.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, path.parent, "cannot create the folder") from exc
    payload = {
        "format": FORMAT,
        "version": torch.tensor(VERSION),
        "meta": json.dumps(meta, sort_keys=True),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return write_bytes_atomic(path, buffer.getvalue(), guard=guard)


def load_checkpoint(
    path: str | Path,
    *,
    session_id: str | None = None,
    classes: list[str] | None = None,
    data: bytes | None = None,
) -> Checkpoint:
    """Load and check a checkpoint; a corrupt file or a foreign one is a ModelError.

    ``data``: the file's bytes, already read (then exactly these bytes are checked,
    e.g. before an export writes them). Loading never unpickles arbitrary objects.
    """
    path = Path(path)
    if data is None and not path.exists():
        raise ModelError("no such checkpoint", path)
    try:
        source = io.BytesIO(data) if data is not None else path
        payload = torch.load(source, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError("not a ghosttui checkpoint")
        meta = json.loads(payload["meta"])
        state = payload["state_dict"]
        if not isinstance(state, dict):
            raise ValueError("no weights inside")
    except Exception as exc:  # torch raises many types for damaged files
        raise ModelError(
            f"corrupt or foreign checkpoint ({type(exc).__name__}: {exc})".splitlines()[0], path
        ) from exc
    if session_id is not None and meta.get("session_id") not in (None, session_id):
        raise ModelError(
            f"checkpoint belongs to another session ({meta.get('session_name', meta.get('session_id'))})",
            path,
        )
    if classes is not None and list(meta.get("classes", [])) != list(classes):
        raise ModelError(
            f"checkpoint classes {','.join(meta.get('classes', []))} differ from {','.join(classes)}",
            path,
        )
    checkpoint = Checkpoint(path, state, meta)
    try:
        checkpoint.build()
    except Exception as exc:
        raise ModelError(
            f"checkpoint weights do not fit its architecture ({exc})".splitlines()[0], path
        ) from exc
    return checkpoint
