"""One progress line per image on stderr: redrawn in place on a terminal, plain lines otherwise."""

import shutil
import sys
import threading

BAR_WIDTH = 24
NAME_WIDTH = 32


def bar(fraction: float) -> str:
    filled = round(fraction * BAR_WIDTH)
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction:4.0%}"


def joined(*parts: str) -> str:
    return " ".join(part for part in parts if part)


class ProgressBoard:
    def __init__(self, names: list[str], stream=None):
        self.stream = stream or sys.stderr
        self.redraw = self.stream.isatty()
        self.names = [name if len(name) <= NAME_WIDTH else "…" + name[-(NAME_WIDTH - 1) :] for name in names]
        self.lines = ["waiting"] * len(names)
        # Plain output gets one line per stage, not one per upload chunk.
        self.stages: list[str | None] = [None] * len(names)
        self.lock = threading.Lock()
        if self.redraw:
            self._draw()

    def show(self, index: int, stage: str, fraction: float | None = None, detail: str = "") -> None:
        with self.lock:
            self.lines[index] = joined(stage, bar(fraction) if fraction is not None else "", detail)
            if self.redraw:
                # Back to the first of our lines (ESC[nF) to rewrite them all.
                self.stream.write(f"\x1b[{len(self.lines)}F")
                self._draw()
            elif stage != self.stages[index]:
                self.stream.write(f"{self.names[index]}: {joined(stage, detail)}\n")
                self.stream.flush()
            self.stages[index] = stage

    def _draw(self) -> None:
        name_width = max(map(len, self.names))
        # A line that wrapped would take two rows and break the move back up.
        columns = shutil.get_terminal_size().columns - 1
        for name, line in zip(self.names, self.lines, strict=True):
            self.stream.write(f"\x1b[2K{f'{name:<{name_width}}  {line}'[:columns]}\n")
        self.stream.flush()
