"""The REST API and the admin, as a researcher uses them."""

import io
import pickle
import re
import zipfile

import numpy as np
import pytest

from annotation.models import Dataset
from annotation.services import dataset_import_from_args

pytestmark = pytest.mark.django_db


def test_api_refuses_anonymous_requests(client):
    assert client.get("/api/datasets/").status_code in (401, 403)


def test_upload_list_detail_items_votes_export(admin_client_token, make_climage, tmp_path):
    api = admin_client_token
    path, data = make_climage(n=12, k=4, size=8, per_item=2)
    with open(path, "rb") as fh, open(path.with_suffix(".txt"), "rb") as classes:
        resp = api.post(
            "/api/datasets/",
            {"name": "up", "format": "climage", "file": fh, "classes": classes},
            format="multipart",
        )
    assert resp.status_code == 201, resp.content
    ds_id = resp.json()["id"]
    assert resp.json()["counts"]["items"] == 12
    assert resp.json()["counts"]["votes"] == 24

    assert [d["name"] for d in api.get("/api/datasets/").json()["results"]] == ["up"]
    detail = api.get(f"/api/datasets/{ds_id}/").json()
    assert detail["class_names"] == [f"class{i}" for i in range(4)]

    items = api.get(f"/api/items/?dataset={ds_id}&label=1").json()
    expected = [i for i, y in enumerate(data["ord_labels"]) if y == 1]
    assert [it["index"] for it in items["results"]] == expected
    img = api.get(items["results"][0]["image_url"]) if expected else None
    if img is not None:
        assert img.status_code == 200 and img["Content-Type"] == "image/png"
        assert "immutable" in img["Cache-Control"]

    votes = api.get(f"/api/votes/?dataset={ds_id}").json()
    assert votes["count"] == 24
    assert all(re.fullmatch(r"[0-9a-f]{64}", v["worker"]) for v in votes["results"])

    resp = api.get(f"/api/datasets/{ds_id}/export/?format=climage")
    assert resp.status_code == 200
    exported = pickle.loads(b"".join(resp.streaming_content))
    assert exported["names"] == data["names"]
    assert np.array_equal(np.stack(exported["images"]), np.stack(data["images"]))
    assert exported["cl_labels"] == data["cl_labels"]

    resp = api.get(f"/api/datasets/{ds_id}/export/?format=label-errors")
    zf = zipfile.ZipFile(io.BytesIO(b"".join(resp.streaming_content)))
    files = sorted(n for n in zf.namelist() if not n.endswith("/"))
    assert files == [
        "cross_validated_predicted_labels/up_pyx_argmax_predicted_labels.npy",
        "cross_validated_predicted_probabilities/up_pyx.npy",
        "original_test_labels/up_original_labels.npy",
    ]
    pyx = np.load(io.BytesIO(zf.read("cross_validated_predicted_probabilities/up_pyx.npy")))
    assert pyx.shape == (12, 4)

    bad = api.get(f"/api/datasets/{ds_id}/export/?format=xml")
    assert bad.status_code == 400 and "format must be one of" in bad.json()["detail"]


def test_upload_refusal_names_the_problem(admin_client_token, make_climage):
    path, _ = make_climage(n=3, k=3, ord_labels=[0, 1, 7])
    with open(path, "rb") as fh, open(path.with_suffix(".txt"), "rb") as classes:
        resp = admin_client_token.post(
            "/api/datasets/",
            {"name": "bad", "format": "climage", "file": fh, "classes": classes},
            format="multipart",
        )
    assert resp.status_code == 400
    assert "label 7 is out of range 0..2" in resp.json()["detail"]
    assert not Dataset.objects.exists()


def test_openapi_schema_is_served(admin_client_token):
    resp = admin_client_token.get("/api/schema/")
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "/api/datasets/{id}/export/" in body and "/api/items/" in body


def test_schema_is_public_outside_production(client):
    resp = client.get("/api/schema/")
    assert resp.status_code == 200 and "/api/items/" in resp.content.decode()


def test_schema_is_staff_only_in_production(
    client, admin_client, admin_client_token, django_user_model, settings
):
    settings.API_SCHEMA_PUBLIC = False  # what DJANGO_ENV=production sets
    anonymous = client.get("/api/schema/")
    assert anonymous.status_code == 401
    assert "Authentication credentials were not provided" in anonymous.content.decode()
    assert "/api/items/" not in anonymous.content.decode()

    django_user_model.objects.create_user("worker", password="pw-for-tests-1")
    client.login(username="worker", password="pw-for-tests-1")
    not_staff = client.get("/api/schema/")
    assert not_staff.status_code == 403
    assert "for staff only" in not_staff.content.decode()

    for staff in (admin_client_token, admin_client):  # token, then session
        resp = staff.get("/api/schema/")
        assert resp.status_code == 200 and "/api/items/" in resp.content.decode()


def test_bad_filters_name_the_parameter(admin_client_token, make_climage):
    api = admin_client_token
    assert api.get("/api/votes/?dataset=abc").json() == {
        "dataset": ["A valid integer is required."]
    }
    too_big = api.get(f"/api/items/?dataset=1&label={10**30}")
    assert too_big.status_code == 400 and "label" in too_big.json()
    unknown = api.get("/api/items/?dataset=424242")
    assert unknown.status_code == 400 and unknown.json() == {"dataset": ["unknown dataset 424242"]}
    status = api.get("/api/items/?dataset=1&status=done")
    assert status.status_code == 400 and "status" in status.json()


def test_admin_shows_the_dataset_with_images(admin_client, make_climage):
    path, _ = make_climage(n=5, k=3, size=8)
    ds = dataset_import_from_args(
        name="shown", fmt="climage", file=path, classes=path.with_suffix(".txt")
    )
    page = admin_client.get(f"/admin/annotation/dataset/{ds.pk}/change/").content.decode()
    srcs = re.findall(r'<img src="(/i/[^"]+\.png)"', page)
    assert len(srcs) == 5
    img = admin_client.get(srcs[0])
    assert img.status_code == 200 and img.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Import a dataset" in admin_client.get("/admin/annotation/dataset/").content.decode()


def test_admin_import_form_imports_a_zip_of_class_folders(admin_client, image_folder, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in image_folder.rglob("*.png"):
            zf.write(p, arcname=f"top/{p.relative_to(image_folder)}")
    buf.seek(0)
    buf.name = "folder.zip"
    resp = admin_client.post(
        "/admin/annotation/dataset/import/", {"name": "zipped", "format": "folder", "file": buf}
    )
    assert resp.status_code == 302
    assert Dataset.objects.get(name="zipped").items.count() == 12


def test_admin_import_form_shows_the_refusal(admin_client, tmp_path):
    junk = io.BytesIO(b"not a zip")
    junk.name = "x.zip"
    resp = admin_client.post(
        "/admin/annotation/dataset/import/", {"name": "junk", "format": "folder", "file": junk}
    )
    assert resp.status_code == 200
    assert "not a zip archive" in resp.content.decode()
    assert not Dataset.objects.exists()
