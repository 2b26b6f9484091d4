"""Long commands draw a progress bar on stderr: filled in proportion, with counts, share and
time, and one finished line at the end."""

import io

from django.core.management.base import OutputWrapper

from annotation.management.commands._progress import ProgressLine, bar_text


def test_the_bar_fills_in_proportion():
    assert bar_text("importing x", 300, 1000, 1.24) == (
        "importing x: [#########.....................] 300/1,000  30.0%    1.2 s"
    )
    assert bar_text("y", 0, 0, 0).startswith("y: [" + "#" * 30 + "] 0/0 100.0%")


def test_the_last_draw_ends_the_line():
    out = io.StringIO()
    progress = ProgressLine(OutputWrapper(out), "exporting d")
    for done in range(0, 1001, 100):
        progress(done, 1000)
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    assert (
        text.rstrip().rsplit("\r", 1)[-1].startswith("exporting d: [" + "#" * 30 + "] 1,000/1,000")
    )
