"""Keystroke-to-screen latency and start-up time of ``ghosttui label``, measured end to end.

The real app runs in a pseudo-terminal of 160x48 (half-block rendering,
COLORTERM=truecolor). A keystroke (a label) is written to the terminal and
two clocks stop: ``latency_ms`` at the last byte of the update that carries
half-block cells (the next pattern, and the map, drawn in full), and
``until_quiet_ms`` at the last byte before the terminal stays silent for
``--quiet`` ms (status text and training progress included). Keystrokes
whose update drew no pattern are not counted in ``latency_ms``.
With training, the app's own background round runs for the whole
measurement (the session's epoch count is raised so that it cannot finish;
the result says whether a round finished); ``--no-training`` first trains
the session so that the app has nothing to train.

Start-up is measured from process start to the end of the first full frame,
on a session whose cache exists.

With ``--press da --name tui_latency_views`` the keystrokes switch the pattern
pane's view and averaging size (d, a) instead of labelling: every view at k = 1,
3 and 5 is drawn in turn.

    python benchmarks/tui_latency.py [--keys 150] [--no-training] [--press hvn] [--name NAME]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, simulated

COLS, ROWS = 160, 48
HALF_BLOCK = "▀".encode()


class Terminal:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.received = bytearray()

    def read_burst(
        self, quiet: float, first_timeout: float
    ) -> tuple[float | None, float | None, bytes, float | None]:
        """Wait for output; once quiet return (first byte time, last byte time, bytes,
        time of the last chunk that carried half-block cells, i.e. pattern or map pixels)."""
        first = last = last_pixels = None
        data = bytearray()
        deadline = time.perf_counter() + first_timeout
        while True:
            timeout = quiet if first is not None else max(0.0, deadline - time.perf_counter())
            ready, _, _ = select.select([self.master], [], [], timeout)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            now = time.perf_counter()
            if first is None:
                first = now
            last = now
            if HALF_BLOCK in chunk:
                last_pixels = now
            data += chunk
        self.received += data
        return first, last, bytes(data), last_pixels

    def drain(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.read_burst(0.02, max(0.0, end - time.perf_counter()))

    def send(self, text: str) -> float:
        os.write(self.master, text.encode())
        return time.perf_counter()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        os.close(self.master)


def prepare(root: Path, data: Path, env: dict[str, str], epochs: int) -> None:
    """A session with 30 labels from the truth (every class), its cache built."""
    import h5py

    with h5py.File(data, "r") as f:
        truth = f["truth"][()]
    names = ["horizontal", "vertical", "none"]
    rng = np.random.default_rng(0)
    rows = []
    for index in range(3):
        for flat in rng.choice(np.flatnonzero(truth.ravel() == index), 10, replace=False):
            rx, ry = divmod(int(flat), truth.shape[1])
            rows.append(f"{rx},{ry},{names[index]},random")
    csv = root / "labels.csv"
    csv.write_text("rx,ry,label,source\n" + "\n".join(rows) + "\n")
    exe = [sys.executable, "-m", "ghosttui"]
    subprocess.run(
        [*exe, "new", "bench", "--data", str(data)], env=env, check=True, capture_output=True
    )
    subprocess.run(
        [*exe, "labels", "import", "bench", str(csv)], env=env, check=True, capture_output=True
    )
    subprocess.run([*exe, "preprocess", str(data)], env=env, check=True, capture_output=True)
    settings = root / "sessions" / "bench" / "session.toml"
    text = settings.read_text()
    text = re.sub(r"(?m)^epochs = \d+$", f"epochs = {epochs}", text)
    text = text.replace("budget = 100", "budget = 2000")
    settings.write_text(text)


def percentiles(values: np.ndarray) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
        "p99": round(float(np.percentile(values, 99)), 1),
        "max": round(float(values.max()), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=150)
    parser.add_argument(
        "--quiet", type=float, default=0.04, help="silence (s) that ends a screen update"
    )
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--press", default="hvn", help="keys pressed in turn (default: labels)")
    parser.add_argument("--name", default="", help="result name (default: tui_latency[_idle])")
    args = parser.parse_args()
    data = simulated()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        env = {
            **os.environ,
            "TERM": "xterm-256color",
            "COLORTERM": "truecolor",
            "GHOSTTUI_SESSIONS": str(root / "sessions"),
            "GHOSTTUI_CACHE_DIR": os.environ.get("GHOSTTUI_CACHE_DIR", str(root / "cache")),
        }
        env.pop("TMUX", None)
        prepare(root, data, env, epochs=2000)
        checkpoints = root / "sessions" / "bench" / "checkpoints"
        if args.no_training:  # a current model: the app has no reason to train
            subprocess.run(
                [sys.executable, "-m", "ghosttui", "train", "bench", "--epochs", "2"],
                env=env,
                check=True,
                capture_output=True,
            )
        rounds_before = len(list(checkpoints.glob("*"))) if checkpoints.exists() else 0
        terminal = Terminal(
            [sys.executable, "-m", "ghosttui", "label", "bench", "--render", "halfblock"], env
        )
        try:
            deadline = time.perf_counter() + 60
            last = None
            while b"query" not in terminal.received and time.perf_counter() < deadline:
                # one burst on a quiet machine; a busy one may pause between the cache
                # check and the first frame
                _, end, _, _ = terminal.read_burst(0.5, 30)
                last = end or last
            startup = (last or 0) - terminal.started
            assert b"query" in terminal.received, terminal.received[-2000:]
            terminal.drain(2.0)  # the app starts a round by itself when labels are new
            training_at_start = b"epoch" in terminal.received
            rng = np.random.default_rng(1)
            latencies, quiet_after, full = [], [], 0
            for i in range(args.keys):
                terminal.drain(rng.uniform(0.08, 0.2))
                sent = terminal.send(args.press[i % len(args.press)])
                _, end, burst, pixels = terminal.read_burst(args.quiet, 5.0)
                if end is None:
                    continue
                quiet_after.append((end - sent) * 1000)
                if burst.count(HALF_BLOCK) >= 1000:  # the next pattern was drawn
                    full += 1
                    latencies.append((pixels - sent) * 1000)
        finally:
            terminal.close()
        rounds_after = len(list(checkpoints.glob("*"))) if checkpoints.exists() else 0
    lat = np.array(latencies)
    result = {
        "data": str(data),
        "terminal": f"{COLS}x{ROWS}, halfblock, truecolor",
        "background_training": not args.no_training,
        "keys_pressed": args.press,
        "training_running_at_start": bool(training_at_start),
        # a round of 2000 epochs cannot finish during the measurement: no new checkpoint
        # means it ran (or never started) throughout; --no-training expects no round at all
        "rounds_finished_during_measurement": rounds_after - rounds_before,
        "keystrokes": len(lat),
        "full_pattern_redraws": int(full),
        # keystroke -> last byte of the next pattern's cells (the "fully drawn")
        "latency_ms": percentiles(lat),
        # keystroke -> the screen quiet again (status, training progress and map included)
        "until_quiet_ms": percentiles(np.array(quiet_after)),
        "startup_seconds": round(startup, 2),
        "note": f"update end = last byte before {args.quiet * 1000:.0f} ms of silence",
    }
    print(json.dumps(result, indent=2))
    save(args.name or "tui_latency" + ("_idle" if args.no_training else ""), result)


if __name__ == "__main__":
    main()
