"""The request signature of the API: HMAC-SHA256 over the sorted query parameters, keyed by the accesstoken.

Both published test vectors are in the spec (`x-ivh-signature.testVectors`) and in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping
from urllib.parse import quote


def string_to_sign(params: Mapping[str, str]) -> str:
    """Join the parameters, sorted by key, as `key=value` pairs with `&` (values raw, not encoded)."""
    return "&".join(f"{key}={params[key]}" for key in sorted(params))


def sign(params: Mapping[str, str], accesstoken: str) -> str:
    """Return the Base64 signature of `params` (every query parameter but `signature`)."""
    digest = hmac.new(accesstoken.encode(), string_to_sign(params).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_query(appkey: str, accesstoken: str, timestamp: int | str) -> str:
    """Return the query string `appkey=…&timestamp=…&signature=…` with the signature URL-encoded."""
    params = {"appkey": appkey, "timestamp": str(timestamp)}
    encoded = {key: quote(value, safe="") for key, value in params.items()}
    signature = quote(sign(params, accesstoken), safe="")
    return f"appkey={encoded['appkey']}&timestamp={encoded['timestamp']}&signature={signature}"


def verify(params: Mapping[str, str], signature: str, accesstoken: str) -> bool:
    """Tell whether `signature` (already URL-decoded) signs `params`; the comparison takes constant time."""
    return hmac.compare_digest(sign(params, accesstoken).encode(), signature.encode("utf-8", "replace"))
