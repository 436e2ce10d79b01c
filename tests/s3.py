"""A real S3-compatible server for the upload tests: moto's S3 in server mode on 127.0.0.1.

moto stores objects as S3 does but takes any pre-signed URL, expired or not, well signed or not. Real S3 refuses
both with 403, and that refusal is what the mock must report, so the server here checks what moto does not: the
pre-signed URL's SigV4 signature and its expiry (X-Amz-Date + X-Amz-Expires), answering as S3 does (403 with
`SignatureDoesNotMatch` or `AccessDenied: Request has expired`). Everything else is moto's.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote

import boto3
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

ACCESS_KEY, SECRET_KEY, REGION = "mock-access-key", "mock-secret-key", "us-east-1"


class S3Server(ThreadedMotoServer):
    """moto's S3 on a free loopback port, checking pre-signed URLs as S3 does. A context manager."""

    def __init__(self):
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.check = PresignedCheck(DomainDispatcherApplication(create_backend_app), SECRET_KEY)

    def _server_entry(self) -> None:  # ThreadedMotoServer's, with the pre-signed URL check in front of moto's app
        app = self.check
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def __enter__(self) -> S3Server:
        self.start()
        host, port = self.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.client = boto3.client("s3", endpoint_url=self.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                                   aws_secret_access_key=SECRET_KEY, config=Config(signature_version="s3v4"))
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def bucket(self) -> str:
        """Create a bucket of a fresh name (moto's state is per process, shared by every server in it)."""
        name = f"app-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def put_url(self, bucket: str, key: str, content_type: str, expires: int = 600) -> str:
        """A pre-signed PUT URL for `key`, as an app hands it to the service."""
        return self.client.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": key, "ContentType": content_type}, ExpiresIn=expires)

    def puts(self, key: str) -> list[int]:
        """The status of each pre-signed PUT of an object named `key` so far (accepted or refused)."""
        return [status for path, status in self.check.puts if path.endswith("/" + key)]

    def get(self, bucket: str, key: str) -> tuple[bytes, str]:
        """The object's bytes and Content-Type."""
        found = self.client.get_object(Bucket=bucket, Key=key)
        return found["Body"].read(), found["ContentType"]


class PresignedCheck:
    """WSGI middleware: refuse a SigV4 pre-signed request whose signature does not match or that has expired."""

    def __init__(self, app, secret_key: str):
        self.app, self.secret_key = app, secret_key
        self.delay = 0.0  # seconds each pre-signed request is held before it is answered
        self.puts: list[tuple[str, int]] = []  # (path, HTTP status) of each pre-signed PUT
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        params = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        query = dict(params)
        if "X-Amz-Signature" in query:
            time.sleep(self.delay)
            problem = self._problem(environ, params, query)
            if problem:
                self._seen(environ, 403)
                code, message = problem
                body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}'
                        f"</Message></Error>").encode()
                start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                                  ("Content-Length", str(len(body)))])
                environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                return [body]

            def recording(status, headers, exc_info=None):
                self._seen(environ, int(status.split()[0]))
                return start_response(status, headers, exc_info)

            return self.app(environ, recording)
        return self.app(environ, start_response)

    def _seen(self, environ, status: int) -> None:
        if environ["REQUEST_METHOD"] == "PUT":
            with self._lock:
                self.puts.append((environ["PATH_INFO"], status))

    def _problem(self, environ, params, query) -> tuple[str, str] | None:
        signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        if datetime.now(timezone.utc) > signed_at + timedelta(seconds=int(query["X-Amz-Expires"])):
            return "AccessDenied", "Request has expired"
        signed_headers = query["X-Amz-SignedHeaders"].split(";")
        canonical_request = "\n".join([
            environ["REQUEST_METHOD"],
            quote(environ["PATH_INFO"], safe="/-_.~"),
            "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                     for k, v in sorted(params) if k != "X-Amz-Signature"),
            "".join(f"{name}:{' '.join(_header(environ, name).split())}\n" for name in signed_headers),
            ";".join(signed_headers),
            "UNSIGNED-PAYLOAD",
        ])
        scope = query["X-Amz-Credential"].split("/", 1)[1]
        string_to_sign = "\n".join(["AWS4-HMAC-SHA256", query["X-Amz-Date"], scope,
                                    hashlib.sha256(canonical_request.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in scope.split("/"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, query["X-Amz-Signature"]):
            return ("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you "
                    "provided. Check your key and signing method.")
        return None


def _header(environ, name: str) -> str:
    if name in ("content-type", "content-length"):
        return environ.get(name.upper().replace("-", "_"), "")
    return environ.get("HTTP_" + name.upper().replace("-", "_"), "")
