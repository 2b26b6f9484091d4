"""Hostile dataset imports, through the API upload (over real HTTP) and the import command: each
is refused with a message naming the problem, and leaves the database and the media folder (its
files and its folders) exactly as they were. An import killed half-way leaves nothing for good."""

from __future__ import annotations

import io
import os
import pickle
import signal
import struct
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Dataset, Item, Vote, Worker

from .uploads import api_upload, png_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def site(live_server, django_user_model):
    from rest_framework.authtoken.models import Token

    staff = django_user_model.objects.create_user("staff", password="pw-for-tests-1", is_staff=True)
    return SimpleNamespace(url=live_server.url, token=Token.objects.create(user=staff).key)


def upload(site, fmt: str, filename: str, data: bytes, name: str = "hostile") -> tuple[int, str]:
    """POST /api/datasets/ with one file; (status, the reply's detail or body)."""
    status, body = api_upload(site, {"name": name, "format": fmt}, {"file": (filename, data)})
    return status, body.decode()


@pytest.fixture
def state(media_root):
    """What a refused import must leave as it was: rows, and every file and folder of media."""

    def snapshot() -> tuple:
        root = Path(media_root)
        paths = sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []
        counts = [m.objects.count() for m in (Dataset, Item, Vote, Worker)]
        return counts, paths

    return snapshot


def refused_by_api(site, state, fmt, filename, data, *says: str) -> str:
    before = state()
    status, detail = upload(site, fmt, filename, data)
    assert status == 400, detail
    for text in says:
        assert text in detail, detail
    assert state() == before
    return detail


def refused_by_command(state, *says: str, **opts) -> str:
    before = state()
    with pytest.raises(CommandError) as err:
        call_command("import_dataset", stdout=io.StringIO(), stderr=io.StringIO(), **opts)
    for text in says:
        assert text in str(err.value), str(err.value)
    assert "nothing was written" in str(err.value)
    assert state() == before
    return str(err.value)


# --- pickles ----------------------------------------------------------------------------------


def amplified_pickle(refs: int = 800) -> bytes:
    """A few MB on disk: one 1000x1000 RGB array, referenced ``refs`` times in ``images``
    through the pickle memo, which a plain load would hand on as ~2.4 GB of images."""
    big = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    data = {
        "names": ["a", "b"],
        "images": [big] * refs,
        "ord_labels": [0] * refs,
        "cl_labels": [[1]] * refs,
    }
    return pickle.dumps(data, protocol=4)


def test_pickle_amplification_is_refused_over_the_api(site, state):
    data = amplified_pickle()
    assert len(data) < 4_000_000
    refused_by_api(
        site, state, "climage", "amp.pkl", data, "IMPORT_MAX_BYTES", "shared array", "amp.pkl"
    )


def test_pickle_amplification_is_refused_by_the_command(state, tmp_path, settings):
    path = tmp_path / "amp.pkl"
    path.write_bytes(amplified_pickle(200))
    settings.IMPORT_MAX_BYTES = 100 * 1024 * 1024  # 200 x 3 MB is over, the 3 MB file is not
    refused_by_command(state, "amp.pkl", "IMPORT_MAX_BYTES", path=path, name="amp", fmt="climage")


def test_pickle_asking_for_a_huge_array_or_buffer_is_refused_before_allocating(state, tmp_path):
    # _reconstruct(ndarray, (2**40,), b"b"): a 1 TiB array from a 60-byte file.
    huge_shape = (
        b"\x80\x02cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85C\x01b\x87R."
    )
    # A protocol-5 bytearray whose length prefix claims 1 TiB.
    huge_buffer = b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b"."
    for i, data in enumerate([huge_shape, huge_buffer]):
        path = tmp_path / f"huge{i}.pkl"
        path.write_bytes(data)
        refused_by_command(state, "IMPORT_MAX_BYTES", path=path, name=f"h{i}", fmt="climage")


def test_too_many_items_names_the_setting(site, state, settings):
    settings.IMPORT_MAX_ITEMS = 5
    data = {
        "names": ["a", "b"],
        "images": np.zeros((6, 4, 4, 3), np.uint8),
        "ord_labels": [0] * 6,
    }
    refused_by_api(
        site, state, "climage", "six.pkl", pickle.dumps(data), "6 items", "IMPORT_MAX_ITEMS"
    )


def test_upload_over_the_byte_limit_names_the_setting(site, state, settings):
    settings.IMPORT_MAX_BYTES = 1000
    refused_by_api(site, state, "climage", "big.pkl", b"\x80\x04" + b"N" * 5000, "IMPORT_MAX_BYTES")


# --- zips -------------------------------------------------------------------------------------


def test_zip_bomb_is_refused_by_its_declared_size(site, state, settings):
    settings.IMPORT_MAX_ARCHIVE_BYTES = 8 << 20
    data = zip_bytes({"cats/a.png": png_bytes(), "cats/bomb.png": b"\0" * (64 << 20)})
    assert len(data) < 200_000
    refused_by_api(site, state, "folder", "bomb.zip", data, "IMPORT_MAX_ARCHIVE_BYTES")


def test_zip_bomb_lying_about_its_size_is_refused_while_unpacking(site, state):
    data = bytearray(zip_bytes({"cats/a.png": png_bytes(), "cats/bomb.png": b"\0" * (16 << 20)}))
    # Declare 1 KB for the bomb in its local header and central-directory record.
    local = data.rfind(b"PK\x03\x04", 0, data.find(b"cats/bomb.png"))
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1000)
    struct.pack_into("<I", data, central + 24, 1000)
    refused_by_api(site, state, "folder", "liar.zip", bytes(data), "cats/bomb.png", "refused")


def test_zip_with_too_many_members_is_refused(site, state, settings):
    settings.IMPORT_MAX_ARCHIVE_MEMBERS = 20
    data = zip_bytes({f"cats/{i}.png": png_bytes(i) for i in range(30)})
    refused_by_api(site, state, "folder", "many.zip", data, "IMPORT_MAX_ARCHIVE_MEMBERS")


@pytest.mark.parametrize("member", ["../../escape.png", "/tmp/escape-abs.png", "cats/../../x.png"])
def test_zip_member_escaping_the_folder_is_refused(site, state, tmp_path, member):
    data = zip_bytes({"cats/a.png": png_bytes(), member: png_bytes(1)})
    refused_by_api(site, state, "folder", "escape.zip", data, repr(member), "outside")
    assert not Path("/tmp/escape-abs.png").exists()


def test_zip_symlink_member_is_refused(site, state):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cats/a.png", png_bytes())
        link = zipfile.ZipInfo("cats/passwd.png")
        link.external_attr = (0o120777 << 16) | 0  # a symbolic link, as zip -y stores one
        zf.writestr(link, "/etc/passwd")
    refused_by_api(site, state, "folder", "link.zip", buf.getvalue(), "'cats/passwd.png'", "link")


# --- folders and CSVs (the command) -----------------------------------------------------------


def test_csv_paths_outside_the_folder_are_refused(state, image_folder, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes(9))
    csv_path = image_folder / "labels.csv"
    for rel in ["../outside.png", str(outside), "cat/../../outside.png"]:
        csv_path.write_text(f"path,label\ncat/cat0.png,cat\n{rel},dog\n")
        refused_by_command(
            state, f"line 3: {rel!r} points outside the import folder", name="csv", fmt="folder",
            csv=csv_path,
        )  # fmt: skip


def test_symlinks_out_of_the_folder_are_refused(state, image_folder, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(7))
    (image_folder / "cat" / "link.png").symlink_to(secret)
    refused_by_command(
        state, "'cat/link.png' points outside", str(secret), path=image_folder, name="ln",
        fmt="folder",
    )  # fmt: skip
    (image_folder / "cat" / "link.png").unlink()
    (image_folder / "etc").symlink_to("/etc", target_is_directory=True)
    refused_by_command(state, "'etc' points outside", path=image_folder, name="ln", fmt="folder")
    # A link that stays inside the folder is an ordinary file of the dataset.
    (image_folder / "etc").unlink()
    (image_folder / "dog" / "again.png").symlink_to(image_folder / "cat" / "cat0.png")
    call_command("import_dataset", image_folder, name="ok", fmt="folder", stderr=io.StringIO())
    assert Item.objects.filter(dataset__name="ok", name="dog/again.png").exists()


# --- imports killed half-way ------------------------------------------------------------------


_PARENT_SESSIONS: list = []


def _own_database_session() -> None:
    """In a forked child: a database session of its own. A server connection (PostgreSQL) is
    the parent's session, so the child leaves it untouched (kept referenced, never closed) and
    connects anew; SQLite's in-memory test database is the child's own copy already."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.vendor != "sqlite" and conn.connection is not None:
            _PARENT_SESSIONS.append(conn.connection)
            conn.connection = None
            conn.connect()


def run_killed(child) -> None:
    """Run ``child`` in a forked process that is killed (SIGKILL) where it says so."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            _own_database_session()
            child()
        finally:
            os._exit(3)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the child import did not finish")


def kill_self(*_args) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def media_paths(media_root) -> list[str]:
    root = Path(media_root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.django_db  # the child writes to its own copy of the database and is killed
def test_import_killed_while_writing_is_cleaned_by_the_next_import(make_climage, media_root):
    from annotation.services import dataset_import_from_args

    path, _ = make_climage(n=700, k=3, size=4, per_item=0)
    run_killed(
        lambda: dataset_import_from_args(
            name="killed",
            fmt="climage",
            file=path,
            classes=path.with_suffix(".txt"),
            progress=kill_self,
        )
    )
    left = media_paths(media_root)
    assert any(p.startswith(".import-staging/import-") for p in left)  # 500 staged images
    assert not Dataset.objects.exists()

    small, _ = make_climage("small.pkl", n=3, k=3, size=4)
    ds = dataset_import_from_args(
        name="next", fmt="climage", file=small, classes=small.with_suffix(".txt")
    )
    kept = {it.image.name for it in ds.items.all()}
    assert set(media_paths(media_root)) == {"datasets", f"datasets/{ds.pk}", *kept}


@pytest.mark.django_db
def test_import_killed_between_moving_files_and_committing_is_cleaned_by_the_command(media_root):
    from annotation.staging import StagingFolder

    def child():
        with StagingFolder() as staging:
            for i in range(3):
                staging.add(f"datasets/999/moved-{i}.png", png_bytes(i))
            staging.publish()  # the files are in place; the transaction never commits
            kill_self()

    run_killed(child)
    left = media_paths(media_root)
    assert "datasets/999/moved-0.png" in left and any(".import-staging/" in p for p in left)
    out = io.StringIO()
    call_command("import_dataset", clean_staging=True, stdout=out)
    assert "removed 1 staging folder" in out.getvalue()
    assert media_paths(media_root) == []


@pytest.mark.django_db
def test_a_running_import_is_not_cleaned_from_under_it(media_root):
    from annotation.staging import StagingFolder, staging_cleanup

    with StagingFolder() as staging:
        staging.add("datasets/5/a.png", png_bytes())
        assert staging_cleanup() == 0  # its lock is held: it is alive
        staging.publish()
        staging.keep()
    assert media_paths(media_root) == ["datasets", "datasets/5", "datasets/5/a.png"]
