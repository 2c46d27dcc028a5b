"""Credentials masked out of URIs and of text that may quote them (logs, metadata, exception messages)."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

MASK = "***"
# Query parameters that carry credentials in database and object-store URIs.
_SECRET_PARAMS = {
    "password",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "secret",
    "secret_key",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
}


def redact_uri(uri: str) -> str:
    """`uri` with the password of its user info and any secret query
    parameter replaced by `***`; otherwise unchanged.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return MASK
    redacted = uri
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        redacted = redacted.replace(parts.netloc, f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}", 1)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(key.lower() in _SECRET_PARAMS for key, _ in pairs):
        query = urlencode([(key, MASK if key.lower() in _SECRET_PARAMS else value) for key, value in pairs], safe="*")
        redacted = redacted.replace(f"?{parts.query}", f"?{query}", 1)
    return redacted


def uri_secrets(uri: str) -> list[str]:
    """The secret strings inside `uri` (user-info password or token, secret query values), raw and decoded."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return [uri]
    secrets: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        secrets.append(userinfo.split(":", 1)[1] if ":" in userinfo else userinfo)
    secrets += [value for key, value in parse_qsl(parts.query, keep_blank_values=True) if key.lower() in _SECRET_PARAMS]
    found = {s for secret in secrets if secret for s in (secret, unquote(secret))}
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, uri: str) -> str:
    """`text` with `uri` shown redacted and every secret inside it masked wherever else it appears."""
    text = text.replace(uri, redact_uri(uri))
    for secret in uri_secrets(uri):
        text = text.replace(secret, MASK)
    return text
