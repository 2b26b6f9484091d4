"""``manage.py aggregate_votes`` in file mode as a user runs it (a process that does not set the
site up), and the fast reader against the row reader on awkward files."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

import annotation.vote_files as vote_files

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ENV", "SECRET_KEY")}
    return subprocess.run(
        [sys.executable, "manage.py", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def crowd(path: Path, rng: np.random.Generator, n_items: int = 300) -> None:
    """Three votes an item from 12 workers, tasks out of order, ids of several shapes."""
    truth = rng.integers(0, 4, n_items)
    rows = []
    for i in rng.permutation(n_items):
        for w in rng.choice(12, 3, replace=False):
            label = truth[i] if rng.random() < 0.75 else rng.integers(0, 4)
            rows.append(f"item-{i:04d}-{'x' * (i % 9)},worker {w},{label}\n")
    path.write_text("task,worker,label\n" + "".join(rows))


def test_file_mode_process_matches_the_command_and_never_sets_up_django(tmp_path, rng):
    votes = tmp_path / "votes.csv"
    crowd(votes, rng)
    out_process, out_command = tmp_path / "process.csv", tmp_path / "command.csv"
    args = ["--input", votes, "--num-classes", "4", "--method", "dawid_skene"]
    done = manage("aggregate_votes", *args, "--output", out_process)
    assert done.returncode == 0, done.stderr
    assert "dawid_skene: 300 tasks, 900 votes, 300 resolved" in done.stdout
    assert "Fleiss' kappa" in done.stdout
    call_command("aggregate_votes", *args, "--output", out_command)
    assert out_process.read_bytes() == out_command.read_bytes()
    with open(out_process, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 300 and rows[0]["task"].startswith("item-")

    # the process imported neither Django nor Celery to do it
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys; sys.argv = ['manage.py', 'aggregate_votes', *sys.argv[1:]]\n"
            "try:\n    runpy.run_path('manage.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('django' in sys.modules, 'celery' in sys.modules)",
            *map(str, args),
            "--output",
            str(tmp_path / "probe.csv"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.strip().splitlines()[-1] == "False False", probe.stderr


def test_file_mode_process_refuses_bad_input_with_the_line_and_writes_nothing(tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_text("task,worker,label\na,w,1\na,v,7\n")
    out = tmp_path / "labels.csv"
    done = manage("aggregate_votes", "--input", votes, "--num-classes", "3", "--output", out)
    assert done.returncode == 1
    assert "CommandError:" in done.stderr and "line 3: label 7 outside 0..2" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_help_and_django_options_still_go_through_django(tmp_path):
    done = manage("aggregate_votes", "--help")
    assert done.returncode == 0 and "--dataset" in done.stdout and "--verbosity" in done.stdout
    votes = tmp_path / "votes.csv"
    votes.write_text("task,worker,label\na,w,1\n")
    out = tmp_path / "labels.csv"
    done = manage("aggregate_votes", "--input", votes, "--num-classes", "3", "--output", out,
                  "--verbosity", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[1].startswith("a,1,")


@pytest.mark.parametrize(
    "text",
    [
        "task,worker,label\n07,a,1\n7,a,2\n007,b,0\n",  # leading zeros are other ids
        "task,worker,label\n3,a,1\n1,b,2\n3,b,1\n2,a,0\n",  # integer ids out of order
        "task , worker,label\n1,a,1\n",  # a header the row reader refuses too
        "task,worker,label\n x ,\ta ,1\nx,a, 2\n",  # spaces around fields
        "\ufefftask,worker,label\r\né,ü,1\r\ne,u,2\r\n",  # BOM, CRLF, non-ASCII ids
        "task,worker,label\n" + "a" * 300 + ",w,1\nb,w,0\n",  # a long id
        "task,worker,label\nabcdefg,w,1\nabcdefg\x00,w,0\nabcdefgh,w,2\n",  # near-equal ids
        "task,worker,label\na,w,1\n\nb,w,0\n",  # a blank line
        "task,worker,label,extra\na,w,1,x\nb,v,0\n",  # a short row
        "label,task,worker\n1,a,w\n0,b,w\n",  # columns in another order
    ],
)
def test_fast_reader_reads_what_the_row_reader_reads(tmp_path, text, monkeypatch):
    path = tmp_path / "votes.csv"
    path.write_bytes(text.encode())

    def read():
        try:
            return vote_files.read_votes(path, num_classes=3, kind=None, complementary=False)
        except vote_files.VoteFileError as exc:
            return str(exc)

    fast = read()
    monkeypatch.setattr(vote_files, "read_votes_plain", lambda *a, **kw: None)
    rows = read()
    if isinstance(rows, str):
        assert fast == rows
        return
    assert not isinstance(fast, str), fast
    assert fast.tasks == rows.tasks
    assert fast.num_workers == rows.num_workers
    for name in ("item", "worker", "label"):
        assert np.array_equal(getattr(fast, name), getattr(rows, name)), name
