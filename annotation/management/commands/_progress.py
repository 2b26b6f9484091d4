"""A progress bar for long commands, written to the command's stderr (redrawn at most twice a
second; the last draw ends the line)."""

import time

WIDTH = 30


def bar_text(label: str, done: int, total: int, seconds: float) -> str:
    """``importing x: [#########.....................]  300/1000  30.0%   1.2 s``."""
    share = min(1.0, done / total) if total else 1.0
    filled = round(WIDTH * share)
    return (
        f"{label}: [{'#' * filled}{'.' * (WIDTH - filled)}] "
        f"{done:,}/{total:,} {100 * share:5.1f}% {seconds:6.1f} s"
    )


class ProgressLine:
    def __init__(self, stream, label: str) -> None:
        self.stream, self.label, self.start, self.last = stream, label, time.monotonic(), 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.5:
            return
        self.last = now
        end = "\n" if done >= total else ""
        self.stream.write("\r" + bar_text(self.label, done, total, now - self.start), ending=end)
        self.stream.flush()
