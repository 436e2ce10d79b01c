"""The ivh-mock client package (the typed client arrives with its own issue); for now it re-exports signing."""

from spec.signing import sign, signed_query, string_to_sign

__all__ = ["sign", "signed_query", "string_to_sign"]
