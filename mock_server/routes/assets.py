"""The asset host's routes under /__mock__/assets: upload a file, list and fetch the generated samples, fetch an
upload. `POST /__mock__/assets` answers with a URL the mock serves and what the file is, judged by the active
profile; `GET /__mock__/assets/samples` lists valid photos and audio, and one file breaking each rule.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from flask import Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..media_in.assets import CONTROL_CHARACTER, PREFIX, SHA256, AssetHost, digest_of, sample
from ..media_in.samples import CONTENT_TYPES, SAMPLES, expected
from . import envelope
from .guard import host_url
from .sendfile import send

if TYPE_CHECKING:
    from ..context import MockContext


log = logging.getLogger("ivh_mock.assets")
SAMPLE_FILES = "samples"  # the data directory's folder of the samples served (each named by its SHA-256)


def register(app: Flask, ctx: MockContext, guarded: Callable, error: type[Exception]) -> None:
    """Add the asset routes; `guarded` wraps a view with the control token check, `error(status, message)`
    answers in the control API's error format."""
    host: AssetHost = ctx.assets

    def base_url() -> str:
        try:  # the URLs it answers are built from it, as the API's are
            own = host_url(request.environ)
        except ValueError as problem:
            raise error(400, str(problem)) from None
        return (ctx.config.public_url or own).rstrip("/")

    def upload():
        request.max_content_length = ctx.config.asset_max_bytes
        if request.content_length is not None and request.content_length > ctx.config.asset_max_bytes:
            raise error(413, f"an upload may have at most {ctx.config.asset_max_bytes} bytes")
        coding = envelope.coding_problem(request.headers.get("Content-Encoding"), "the file itself")
        if coding:  # kept as sent, a gzip photo had been served back as a broken image/jpeg
            raise error(415, coding)
        if request.mimetype == "multipart/form-data":
            try:
                file = request.files.get("file")
            except RequestEntityTooLarge:  # werkzeug's bound on a form's parts, not on its bytes
                raise error(413, f"a multipart upload may have at most {request.max_form_parts} parts; send the "
                                 f"file alone, in the form field 'file'") from None
            if file is None and "file" in request.form:
                raise error(400, "the form field 'file' holds no file: its part needs a filename "
                                 "(Content-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\")")
            if file is None:
                found = sorted({*request.files, *request.form})
                raise error(400, "a multipart upload needs its file in the form field 'file'; " + (
                    f"it has {', '.join(map(repr, found))}" if found else
                    "none was read: is the Content-Type's boundary the one between the parts, the body whole, and "
                    "each part's headers UTF-8? (a file name in another encoding, GBK say, is not read: send the "
                    "name in UTF-8, or the file alone as the body, named by ?name=)"))
            data, filename = file.read(), request.args.get("name") or file.filename or ""  # ?name= as named
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
        # sent from a file, as an upload is: from memory, each answer a client had not read held a copy of the sample
        # (werkzeug copies the bytes of an in-memory file it sends), 21 MB for the largest
        sha = digest_of(data)
        try:
            kept: Path | bytes = ctx.blobs.path(SAMPLE_FILES, ctx.blobs.put(SAMPLE_FILES, data, sha))
        except OSError as problem:  # a data directory full or unwritable: from memory, as before (it had been a 500)
            log.warning("sample %s is sent from memory: it could not be kept in the data directory: %s", name, problem)
            kept = data
        return _send(kept, SAMPLES[name].content_type, name, sha)

    def asset(sha: str, name: str):
        if CONTROL_CHARACTER.search(name):  # it would end up in the Content-Disposition header
            raise error(400, f"an asset name must not contain control characters, got {name!r}")
        kept = ctx.blobs.path("assets", sha) if SHA256.match(sha) else None
        if kept is None or not kept.is_file():
            raise error(404, f"no asset {sha}")
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        # from the file, not a copy in memory per answer: 30 clients that read nothing of a 30 MB upload held 1 GB
        return _send(kept, CONTENT_TYPES.get(extension, "application/octet-stream"), name, sha)

    app.add_url_rule(PREFIX, "assets_upload", guarded(upload), methods=["POST"])
    app.add_url_rule(PREFIX + "/samples", "assets_samples", guarded(samples, open_to_all=True), methods=["GET"])
    app.add_url_rule(PREFIX + "/samples/<name>", "assets_sample", guarded(sample_file, open_to_all=True),
                     methods=["GET", "HEAD"])
    app.add_url_rule(PREFIX + "/<sha>/<name>", "assets_file", guarded(asset, open_to_all=True),
                     methods=["GET", "HEAD"])


def _send(source: Path | bytes, mimetype: str, name: str, sha: str):
    # the file's SHA-256 as its ETag: a sample's, made in memory, had none (no If-None-Match, no If-Range could name it)
    answer = send(io.BytesIO(source) if isinstance(source, bytes) else source, mimetype=mimetype, download_name=name,
                  max_age=0, etag=sha)
    # anyone's upload, served from the control API's own origin: a browser must not read it as a page (sniffed as
    # HTML, it could call that API as the dashboard does)
    answer.headers["X-Content-Type-Options"] = "nosniff"
    return answer
