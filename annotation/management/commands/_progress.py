"""A progress line for long commands, written to the command's stderr."""

import time


class ProgressLine:
    def __init__(self, stream, label: str) -> None:
        self.stream, self.label, self.start, self.last = stream, label, time.monotonic(), 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.5:
            return
        self.last = now
        pct = 100.0 * done / total if total else 100.0
        end = "\n" if done >= total else ""
        self.stream.write(
            f"\r{self.label}: {done}/{total} ({pct:5.1f}%) {now - self.start:6.1f}s", ending=end
        )
        self.stream.flush()
