"""Labels in and out: CSV (rx, ry, label[, source]) and the paper's YAML files.

The paper's labelling tool writes ``labels: [{file: "X_Y_....png", label: ...}]``
with ``horizontal``, ``vertical`` or ``na``; X and Y are the first two integers
in the file name, and ``na`` means no polarization (our ``none``).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from ghosttui.errors import SessionError
from ghosttui.files import atomic_output
from ghosttui.session.settings import SOURCES
from ghosttui.session.store import LabelStore

PAPER_ALIASES = {"na": "none", "n/a": "none", "no": "none"}
_INTS = re.compile(r"\d+")


def read_label_file(path: str | Path, classes: list[str]) -> list[tuple[int, int, str, str]]:
    """Rows (rx, ry, class, source) from a CSV or a paper YAML file, validated against ``classes``."""
    path = Path(path)
    if not path.exists():
        raise SessionError("no such label file", path)
    suffix = path.suffix.lower()
    rows = _read_yaml(path) if suffix in (".yaml", ".yml") else _read_csv(path)
    out = []
    for where, rx, ry, label, source in rows:
        if label not in classes:
            alias = PAPER_ALIASES.get(label.lower())
            if alias in classes:
                label = alias
            else:
                raise SessionError(
                    f"{where}: unknown class {label!r} (classes: {', '.join(classes)})", path
                )
        if source not in SOURCES:
            raise SessionError(
                f"{where}: unknown source {source!r} (known: {', '.join(SOURCES)})", path
            )
        out.append((rx, ry, label, source))
    return out


def _read_csv(path: Path) -> list[tuple[str, int, int, str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = {f.strip().lower() for f in reader.fieldnames or []}
            if not {"rx", "ry", "label"} <= fields:
                raise SessionError(
                    "CSV needs a header with columns rx, ry, label (and optional source)", path
                )
            rows = []
            for line, row in enumerate(reader, start=2):
                row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                try:
                    rx, ry = int(row["rx"]), int(row["ry"])
                except ValueError:
                    raise SessionError(f"line {line}: rx and ry must be integers", path) from None
                rows.append((f"line {line}", rx, ry, row["label"], row.get("source") or "import"))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SessionError(f"cannot read CSV ({exc})", path) from exc


def _read_yaml(path: Path) -> list[tuple[str, int, int, str, str]]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SessionError(f"cannot read YAML ({type(exc).__name__})", path) from exc
    entries = doc.get("labels") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise SessionError("YAML has no 'labels:' list (expected the paper's label file)", path)
    rows = []
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "file" not in entry or "label" not in entry:
            raise SessionError(f"entry {i}: needs 'file' and 'label'", path)
        numbers = _INTS.findall(os.path.basename(str(entry["file"])))
        if len(numbers) < 2:
            raise SessionError(f"entry {i}: file name {entry['file']!r} has no X_Y position", path)
        rows.append(
            (f"entry {i}", int(numbers[0]), int(numbers[1]), _yaml_label(entry["label"]), "import")
        )
    return rows


def _yaml_label(value: object) -> str:
    """YAML 1.1 reads an unquoted ``no`` as False; the paper's files mean the class name."""
    if isinstance(value, bool):
        return "no" if value is False else "yes"
    return str(value).strip()


def import_labels(store: LabelStore, path: str | Path) -> int:
    """Validate every row first (positions inside the scan, known classes), then record all at once."""
    rows = read_label_file(path, store.classes)
    n_rx, n_ry = store.scan_shape
    for rx, ry, _, _ in rows:
        if not (0 <= rx < n_rx and 0 <= ry < n_ry):
            raise SessionError(f"label at ({rx}, {ry}) is outside the {n_rx}x{n_ry} scan", path)
    return store.import_labels(rows)


def export_labels(store: LabelStore, path: str | Path) -> int:
    """Write the current labels as CSV (atomic; never over a file a session depends on)."""
    path = Path(path)
    labels = sorted(store.labels().values(), key=lambda lab: (lab.rx, lab.ry))
    with (
        atomic_output(path, inputs=[store.path]) as tmp,
        open(tmp, "w", newline="", encoding="utf-8") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(["rx", "ry", "label", "source", "round"])
        for lab in labels:
            writer.writerow([lab.rx, lab.ry, lab.cls, lab.source, lab.round])
    return len(labels)
