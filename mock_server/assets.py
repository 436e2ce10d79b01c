"""The asset host: media for tests and demos served by the mock itself, so CI needs no network.

`POST /__mock__/assets` keeps uploaded bytes and answers with a URL the mock serves (and what the file is, judged by
the active profile); `GET /__mock__/assets/samples` lists generated samples: valid photos and audio, and one file
breaking each rule. The mock reads its own asset URLs from disk when it fetches them (DECISIONS.md D46).
"""

from __future__ import annotations

import functools
import io
import re
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote, unquote, urlsplit

from flask import Flask, jsonify, request, send_file

from .mediacheck import check_audio, check_photo
from .samples import CONTENT_TYPES, SAMPLES, expected

if TYPE_CHECKING:
    from .app import MockContext
    from .blobs import Blobs
    from .config import Config

PREFIX = "/__mock__/assets"
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sample(name: str) -> bytes | None:
    """Return a sample's bytes, generated once per process; None for a name that is not a sample."""
    return _made(name) if name in SAMPLES else None  # only real names reach the cache, which stays bounded


@functools.lru_cache(maxsize=None)
def _made(name: str) -> bytes:
    return SAMPLES[name].make()


class AssetHost:
    def __init__(self, blobs: Blobs, config: Config, profile: dict[str, Any]):
        self.blobs, self.config, self.profile = blobs, config, profile

    def lookup(self, url: str, base_url: str) -> bytes | None:
        """Return the bytes of `url` when it is one of this mock's assets (on its own host, or on loopback under
        any port: assets are named by content, samples by a fixed name), else None."""
        parts = urlsplit(url)
        own = {urlsplit(base_url).netloc, urlsplit(self.config.public_url or "").netloc}
        if parts.netloc not in own and parts.hostname not in LOOPBACK:
            return None
        path = unquote(parts.path)
        if not path.startswith(PREFIX + "/"):
            return None
        folder, _, name = path[len(PREFIX) + 1:].partition("/")
        if folder == "samples":
            return sample(name)
        return self.blobs.get("assets", folder) if SHA256.match(folder) else None

    def keep(self, data: bytes, filename: str, base_url: str) -> dict[str, Any]:
        """Keep uploaded bytes; return where they are served and what they are under the active profile."""
        sha = self.blobs.put("assets", data)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "upload"
        photo = check_photo(data, self.profile["photo"], "the upload")
        judged = photo if photo.format else check_audio(data, self.profile["audio"], "the upload")
        kind = judged.kind if judged.format else None
        return {
            "Url": f"{base_url}{PREFIX}/{sha}/{quote(name)}",
            "Name": name, "Bytes": len(data), "Sha256": sha, "Kind": kind,
            "Format": judged.format, "Width": judged.width or None, "Height": judged.height or None,
            "DurationMs": judged.duration_ms or None,
            "Problems": [vars(problem) for problem in judged.problems] if kind else
                        [{"rule": "formats", "message": "the upload is neither a photo nor audio in a format the "
                                                        "API takes"}],
            "Notes": [vars(note) for note in judged.notes],
        }


def register(app: Flask, ctx: MockContext, guarded: Callable, error: type[Exception]) -> None:
    """Add the asset routes; `guarded` wraps a view with the control token check, `error(status, message)`
    answers in the control API's error format."""
    host: AssetHost = ctx.assets

    def base_url() -> str:
        return (ctx.config.public_url or request.host_url).rstrip("/")

    def upload():
        request.max_content_length = ctx.config.asset_max_bytes
        if request.content_length is not None and request.content_length > ctx.config.asset_max_bytes:
            raise error(413, f"an upload may have at most {ctx.config.asset_max_bytes} bytes")
        if request.mimetype == "multipart/form-data":
            file = request.files.get("file")
            if file is None:
                raise error(400, "a multipart upload needs its file in the form field 'file'")
            data, filename = file.read(), file.filename or ""
        else:
            data, filename = request.get_data(), request.args.get("name", "")
        if not data:
            raise error(400, "the upload is empty: send the file as the body (?name=photo.jpg) or as the form "
                             "field 'file'")
        return jsonify(host.keep(data, filename, base_url())), 201

    def samples():
        profile = ctx.profile
        return jsonify({"samples": [
            {"Name": item.name, "Kind": item.kind, "Breaks": item.breaks, "Description": item.description,
             "Expected": expected(item, profile), "Url": f"{base_url()}{PREFIX}/samples/{item.name}"}
            for item in SAMPLES.values()]})

    def sample_file(name: str):
        data = sample(name)
        if data is None:
            raise error(404, f"no sample {name!r}; GET {PREFIX}/samples lists them")
        return _send(data, SAMPLES[name].content_type, name)

    def asset(sha: str, name: str):
        data = ctx.blobs.get("assets", sha) if SHA256.match(sha) else None
        if data is None:
            raise error(404, f"no asset {sha}")
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        return _send(data, CONTENT_TYPES.get(extension, "application/octet-stream"), name)

    app.add_url_rule(PREFIX, "assets_upload", guarded(upload), methods=["POST"])
    app.add_url_rule(PREFIX + "/samples", "assets_samples", guarded(samples, open_to_all=True), methods=["GET"])
    app.add_url_rule(PREFIX + "/samples/<name>", "assets_sample", guarded(sample_file, open_to_all=True),
                     methods=["GET", "HEAD"])
    app.add_url_rule(PREFIX + "/<sha>/<name>", "assets_file", guarded(asset, open_to_all=True),
                     methods=["GET", "HEAD"])


def _send(data: bytes, mimetype: str, name: str):
    return send_file(io.BytesIO(data), mimetype=mimetype, download_name=name, conditional=True, max_age=0)
