"""One progress line per image on stderr: redrawn in place on a terminal, plain lines otherwise."""

import sys
import threading

BAR_WIDTH = 24
NAME_WIDTH = 32


def bar(fraction: float) -> str:
    filled = round(fraction * BAR_WIDTH)
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction:4.0%}"


class ProgressBoard:
    def __init__(self, names: list[str], stream=None):
        self.stream = stream or sys.stderr
        self.redraw = self.stream.isatty()
        self.names = [name if len(name) <= NAME_WIDTH else "…" + name[-(NAME_WIDTH - 1) :] for name in names]
        self.lines = ["waiting"] * len(names)
        # Plain output gets one line per stage, not one per upload chunk.
        self.stages = [None] * len(names)
        self.lock = threading.Lock()
        if self.redraw:
            self._write_all(first=True)

    def show(self, index: int, stage: str, fraction: float | None = None, detail: str = "") -> None:
        with self.lock:
            self.lines[index] = " ".join(part for part in (stage, bar(fraction) if fraction is not None else "", detail) if part)
            if self.redraw:
                self._write_all(first=False)
            elif stage != self.stages[index]:
                self.stream.write(f"{self.names[index]}: {' '.join(part for part in (stage, detail) if part)}\n")
                self.stream.flush()
            self.stages[index] = stage

    def _write_all(self, first: bool) -> None:
        width = max(map(len, self.names))
        # Move back to the first of our lines (ESC[nF), then rewrite each one cleared (ESC[2K).
        text = "" if first else f"\x1b[{len(self.lines)}F"
        text += "".join(f"\x1b[2K{name:<{width}}  {line}\n" for name, line in zip(self.names, self.lines))
        self.stream.write(text)
        self.stream.flush()
