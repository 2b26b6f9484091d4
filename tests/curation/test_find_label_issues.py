"""manage.py find_label_issues: arrays in, ranked flagged indices out; no database."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command


@pytest.fixture
def arrays(tmp_path):
    """Three separated clusters, 6 planted flips, probabilities that doubt exactly those."""
    rng = np.random.default_rng(0)
    true = np.repeat(np.arange(3), 40)
    centers = rng.normal(size=(3, 8)) * 5
    feats = (centers[true] + rng.normal(size=(true.size, 8))).astype(np.float32)
    labels = true.copy()
    planted = np.array([3, 17, 45, 60, 88, 101])
    labels[planted] = (true[planted] + 1) % 3
    probs = np.full((true.size, 3), 0.05)
    probs[np.arange(true.size), true] = 0.9
    paths = {
        "labels": tmp_path / "labels.npy",
        "probs": tmp_path / "probs.npy",
        "features": tmp_path / "features.npy",
    }
    np.save(paths["labels"], labels.astype(np.uint16))
    np.save(paths["probs"], probs)
    np.save(paths["features"], feats)
    return paths, labels, true, set(planted.tolist())


@pytest.mark.parametrize(
    ("method", "inputs"),
    [
        ("confident_learning", ["--pred-probs"]),
        ("low_confidence", ["--pred-probs"]),
        ("knn", ["--features"]),
        ("combined", ["--pred-probs", "--features"]),
    ],
)
def test_writes_ranked_indices_npy(arrays, tmp_path, method, inputs):
    paths, _labels, _true, planted = arrays
    out = tmp_path / "out.npy"
    args = ["--labels", str(paths["labels"]), "--method", method, "--output", str(out)]
    for flag in inputs:
        args += [flag, str(paths["probs" if flag == "--pred-probs" else "features"])]
    if method == "low_confidence":
        args += ["--fraction", "0.05"]
    call_command("find_label_issues", *args, "--device", "cpu")
    ranked = np.load(out)
    assert ranked.dtype == np.int64
    assert set(ranked.tolist()) == planted


def test_writes_csv_rows(arrays, tmp_path):
    paths, labels, true, planted = arrays
    out = tmp_path / "issues.csv"
    call_command(
        "find_label_issues",
        "--labels",
        str(paths["labels"]),
        "--pred-probs",
        str(paths["probs"]),
        "--method",
        "confident_learning",
        "--output",
        str(out),
    )
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {int(r["index"]) for r in rows} == planted
    for row in rows:
        i = int(row["index"])
        assert int(row["given_label"]) == labels[i]
        assert int(row["suggested_label"]) == true[i]
        assert float(row["score"]) > 0.5


@pytest.mark.parametrize(
    ("tweak", "message"),
    [
        ("missing", "missing.npy: no such file"),
        ("short_probs", "probs.npy: expected shape (120, K)"),
        ("label_range", "labels.npy: label 7 is out of range"),
        ("nan_probs", "probs.npy: contains NaN"),
        ("knn_without_features", "--method knn needs --features"),
        ("bad_suffix", "out.txt: must end in .npy or .csv"),
    ],
)
def test_bad_input_is_a_command_error(arrays, tmp_path, tweak, message):
    paths, labels, _true, _planted = arrays
    probs = np.load(paths["probs"])
    method, output = "confident_learning", tmp_path / "out.npy"
    labels_path, probs_path = paths["labels"], paths["probs"]
    if tweak == "missing":
        probs_path = tmp_path / "missing.npy"
    elif tweak == "short_probs":
        np.save(probs_path, probs[:10])
    elif tweak == "label_range":
        bad = labels.copy()
        bad[0] = 7
        np.save(labels_path, bad)
    elif tweak == "nan_probs":
        probs[5, 1] = np.nan
        np.save(probs_path, probs)
    elif tweak == "knn_without_features":
        method = "knn"
    elif tweak == "bad_suffix":
        output = tmp_path / "out.txt"
    with pytest.raises(CommandError) as excinfo:
        call_command(
            "find_label_issues",
            "--labels",
            str(labels_path),
            "--pred-probs",
            str(probs_path),
            "--method",
            method,
            "--output",
            str(output),
        )
    assert message in str(excinfo.value)
    assert not output.exists()


@pytest.mark.parametrize(
    ("method", "inputs", "message"),
    [
        ("low_confidence", ["--features"], "--method low_confidence needs --pred-probs"),
        ("combined", [], "--method combined needs --pred-probs and/or --features"),
        ("knn", ["--bad-features"], "features.npy: contains NaN or inf, or is not numeric"),
        ("knn", ["--short-features"], "features.npy: expected shape (120, D) to match --labels"),
    ],
)
def test_missing_or_bad_inputs_are_named(arrays, tmp_path, method, inputs, message):
    paths, _labels, _true, _planted = arrays
    output = tmp_path / "out.npy"
    args = ["--labels", str(paths["labels"]), "--method", method, "--output", str(output)]
    feats = np.load(paths["features"])
    if "--bad-features" in inputs:
        np.save(paths["features"], feats.astype(np.complex64))
    if "--short-features" in inputs:
        np.save(paths["features"], feats[:10])
    if inputs:
        args += ["--features", str(paths["features"])]
    with pytest.raises(CommandError) as excinfo:
        call_command("find_label_issues", *args)
    assert message in str(excinfo.value)
    assert not output.exists()


def test_importing_the_command_does_not_import_torch():
    code = (
        "import sys, curation.management.commands.find_label_issues; print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def _manage(*args: str) -> subprocess.CompletedProcess:
    """``python manage.py ...`` in a plain shell, with a probe of what the process imported."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['manage.py', *sys.argv[1:]]\n"
        "try:\n    runpy.run_path('manage.py', run_name='__main__')\n"
        "except SystemExit as stop:\n    code = stop.code\n"
        "print('imported:', 'django' in sys.modules, 'torch' in sys.modules, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ENV", "SECRET_KEY")}
    return subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_as_a_process_flags_the_planted_errors_without_django_or_torch(
    arrays, tmp_path
):
    paths, _labels, _true, planted = arrays
    out = tmp_path / "out.npy"
    done = _manage("find_label_issues", "--labels", str(paths["labels"]), "--pred-probs",
                   str(paths["probs"]), "--method", "confident_learning", "--output", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"confident_learning: flagged 6 of 120 items; wrote {out}" in done.stdout
    assert set(np.load(out).tolist()) == planted
    assert "imported: False False" in done.stderr

    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 3)))
    done = _manage("find_label_issues", "--labels", str(paths["labels"]), "--pred-probs",
                   str(bad), "--method", "confident_learning", "--output", str(tmp_path / "x.npy"))  # fmt: skip
    assert done.returncode == 1
    assert "CommandError: --pred-probs" in done.stderr and "expected shape (120, K)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.npy").exists()
