"""Request bodies the security tests post: a multipart upload and a small real PNG."""

import io
import urllib.error
import urllib.request
import uuid

import numpy as np
from PIL import Image


def png_bytes(seed: int = 0, size: int = 16) -> bytes:
    """A real PNG of random pixels."""
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for key, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    for key, (filename, data) in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def api_upload(site, fields: dict[str, str], files: dict[str, tuple[str, bytes]]):
    """POST /api/datasets/ as the site's staff token, over HTTP: (status, body bytes)."""
    body, ctype = multipart(fields, files)
    req = urllib.request.Request(
        site.url + "/api/datasets/",
        data=body,
        method="POST",
        headers={"Authorization": f"Token {site.token}", "Content-Type": ctype},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
