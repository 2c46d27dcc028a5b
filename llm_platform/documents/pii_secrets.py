"""Keys, tokens, private keys and passwords in URLs: the secrets half of PII detection.

Token shapes come from `detect-secrets`' regex plugins (Yelp's scanner,
which tracks the providers' formats). A few rules of our own fill its gaps:
whole private-key blocks (the plugin flags only the BEGIN line), AWS secret
keys written without quotes, passwords with characters the basic-auth plugin
leaves out, and token kinds it has no plugin for.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from llm_platform.documents.pii_prefilter import TextGate

Span = tuple[int, int]

# Plugins whose patterns need a provider prefix or a fixed shape. Left out on
# purpose: keyword and entropy detectors (they flag hex hashes and ordinary
# code), the IBM/SoftLayer/Cloudant keyword rules (`key: <word>` matches
# prose), IPPublicDetector (ip_address covers it), PrivateKeyDetector and
# BasicAuthDetector (replaced by the fuller rules below).
_PLUGINS = (
    "aws.AWSKeyDetector",
    "slack.SlackDetector",
    "stripe.StripeDetector",
    "github_token.GitHubTokenDetector",
    "gitlab_token.GitLabTokenDetector",
    "azure_storage_key.AzureStorageKeyDetector",
    "discord.DiscordBotTokenDetector",
    "jwt.JwtTokenDetector",
    "mailchimp.MailchimpDetector",
    "npm.NpmDetector",
    "openai.OpenAIDetector",
    "pypi_token.PypiTokenDetector",
    "sendgrid.SendGridDetector",
    "square_oauth.SquareOAuthDetector",
    "telegram_token.TelegramBotTokenDetector",
    "twilio.TwilioKeyDetector",
)
_SLACK_WEBHOOK = "hooks.slack.com"
# Each starts with a literal, which the regex engine scans for quickly.
_OWN_API_KEYS = tuple(
    re.compile(pattern)
    for pattern in (
        r"gh[pousr]_[A-Za-z0-9_]{30,}",
        r"github_pat_[A-Za-z0-9_]{22,}",
        r"xox[abprs]-[A-Za-z0-9-]{10,}",
        r"[rs]k_(?:live|test)_[0-9A-Za-z]{16,}",
        r"sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",
        r"AIza[0-9A-Za-z_-]{35}",
        r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        r"[Bb]earer +[A-Za-z0-9._~+/-]{20,}=*",
        r"https://(?:discord(?:app)?\.com/api/webhooks|outlook\.office\.com/webhook)/\S+",
        # Providers detect-secrets 1.5 has no plugin for.
        r"hf_[A-Za-z0-9]{30,}",  # Hugging Face user token
        r"api_org_[A-Za-z0-9]{30,}",  # Hugging Face organization token
        r"ya29\.[0-9A-Za-z_-]{20,}",  # Google OAuth access token
        r"GOCSPX-[0-9A-Za-z_-]{24,}",  # Google OAuth client secret
        r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",  # Shopify
        r"do[opr]_v1_[a-f0-9]{64}",  # DigitalOcean
        r"ATATT3[A-Za-z0-9_=-]{50,}",  # Atlassian API token
        r"dapi[a-f0-9]{32}",  # Databricks
        r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}",  # Postman
        r"gl(?:sa|c)_[A-Za-z0-9+/_=]{32,}",  # Grafana service account and cloud tokens
        r"hv[sb]\.[A-Za-z0-9_-]{24,}",  # HashiCorp Vault
        r"sntry[su]_[A-Za-z0-9+/=_-]{40,}",  # Sentry
        r"lin_api_[A-Za-z0-9]{40}",  # Linear
        r"r8_[A-Za-z0-9]{37}",  # Replicate
        r"gsk_[A-Za-z0-9]{48,}",  # Groq
        r"npm_[A-Za-z0-9]{36}",  # npm access token
        r"xapp-\d-[A-Za-z0-9-]{20,}",  # Slack app-level token
        r"dp\.(?:st|ct|pt|sa|scim|audit)\.[A-Za-z0-9_-]{40,}",  # Doppler
        r"NRAK-[A-Z0-9]{27}",  # New Relic
        r"AGE-SECRET-KEY-1[0-9A-Z]{58}",  # age
        r"sbp_[a-f0-9]{40}",  # Supabase
        r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,}",  # PlanetScale
        r"pul-[a-f0-9]{40}",  # Pulumi
    )
)
# An AWS secret access key is 40 base64 characters; only its name tells it
# from any other 40-character string (a SHA-1, say).
_AWS_SECRET = re.compile(
    r"(?i)(?:aws.{0,20}?(?:key|secret|token)|secret[_ -]?access[_ -]?key|secret[_ -]?key)"
    r"[\"']?\s*(?:[:=]|=>|\s)\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
)
_DASHES = r"[-\u2010-\u2015]*"
_KEY_NAME = r"BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?"
# A block with its END line, or (cut off, or END lost in rendering) the header
# lines and base64 runs that follow BEGIN; prose words are never 40 characters long.
_PRIVATE_KEY = re.compile(
    rf"{_DASHES}\s?{_KEY_NAME}\s?{_DASHES}"
    rf"(?:[\s\S]{{0,10000}}?END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?\s?{_DASHES}"
    r"|(?:\s+(?:[A-Za-z0-9+/=]{40,}|[A-Za-z-]+: "
    r"[^\n]*))*(?:\s+(?:[A-Za-z0-9+/]*[0-9+/][A-Za-z0-9+/]*={0,2}|[A-Za-z0-9+/]+={1,2})(?![\w+/=]))?)"
    r"|PuTTY-User-Key-File-\d: .*(?:\n.*){0,40}?Private-MAC: \w+"
)
# scheme://user:password@host — the last "@" before a host name ends the
# password, so passwords holding "@", "!" or ":" are covered whole.
_URL_PASSWORD = re.compile(r"://[^\s:/?#@]+:(\S{1,200}?)@(?=[\w.-]+(?::\d+)?(?:[/?#\s\"'`)\]]|$))")
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]*")
# Plugin patterns whose required literal ("." or ":") is in nearly every text, by their source, each
# with the end of its match as a gate: that starts with a rare literal, the pattern with a character class.
# A pattern a new detect-secrets version changes is no longer a key here and runs ungated.
PLUGIN_GATES = {
    r"\d{8,10}:[0-9A-Za-z_-]{35}": TextGate(re.compile(r":[0-9A-Za-z_-]{35}")),
    r"[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}": TextGate(
        re.compile(r"\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}")
    ),
    r"[0-9a-z]{32}-us[0-9]{1,2}": TextGate(re.compile(r"-us[0-9]")),
}


@functools.lru_cache(maxsize=1)
def _plugin_patterns() -> tuple[tuple[re.Pattern[str], str, str, bool], ...]:
    """(pattern, kind, a literal every match contains, ignore case) for each detect-secrets plugin pattern."""
    import importlib

    patterns = []
    for name in _PLUGINS:
        module, cls = name.rsplit(".", 1)
        plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls)
        for pattern in plugin.denylist:
            kind = "webhook_url" if _SLACK_WEBHOOK in pattern.pattern.replace("\\", "") else "api_key"
            patterns.append((pattern, kind, _required_literal(pattern), bool(pattern.flags & re.IGNORECASE)))
    return tuple(patterns)


def _required_literal(pattern: re.Pattern[str]) -> str:
    # Most plugin patterns scan slowly (they start with a character class); a
    # substring test on the literal they require skips them on most text.
    from re import _constants, _parser  # type: ignore[attr-defined]

    runs, run = [], []
    for op, argument in _parser.parse(pattern.pattern, pattern.flags):
        if op is _constants.LITERAL:
            run.append(chr(argument))
        else:
            runs.append("".join(run))
            run = []
    literal = max([*runs, "".join(run)], key=len)
    return literal.lower() if pattern.flags & re.IGNORECASE else literal


def _group_or_whole(match: re.Match[str]) -> Span:
    # detect-secrets captures the secret in a group where the pattern also
    # matches its context (the AWS rule's variable name); a short group is a
    # prefix alternation such as (ghp|gho), and the whole match is the secret.
    if match.re.groups and match.lastindex and len(match.group(match.lastindex)) >= 16:
        return match.span(match.lastindex)
    return match.span()


def _extend_token(text: str, span: Span) -> Span:
    # Plugins pin a length (Stripe: 24 characters), but real keys run longer;
    # the rest of the token is secret too.
    start, end = span
    if end < len(text) and (text[end].isalnum() or text[end] in "_-") and text[end - 1].isalnum():
        tail = _TOKEN_TAIL.match(text, end)
        end = tail.end() if tail else end
    return start, end


def _api_keys(text: str, kind: str) -> Iterator[Span]:
    lowered = text.lower()
    for pattern, pattern_kind, literal, ignore_case in _plugin_patterns():
        gate = PLUGIN_GATES.get(pattern.pattern)
        if (
            pattern_kind == kind
            and literal in (lowered if ignore_case else text)
            and (gate is None or gate.lets_through(text))
        ):
            for match in pattern.finditer(text):
                yield _extend_token(text, _group_or_whole(match))
    if kind == "api_key":
        for pattern in _OWN_API_KEYS:
            yield from (match.span() for match in pattern.finditer(text))
        if "aws" in lowered or "secret" in lowered:
            yield from (match.span(1) for match in _AWS_SECRET.finditer(text))


def _url_passwords(text: str) -> Iterator[Span]:
    for match in _URL_PASSWORD.finditer(text):
        yield match.span(1)


def secret_spans(text: str, *, kind: str) -> Iterator[Span]:
    """(start, end) of each secret of `kind` (private_key, password, webhook_url, api_key) in `text`."""
    if kind == "private_key":
        if "PRIVATE KEY" in text or "PuTTY" in text:
            yield from (m.span() for m in _PRIVATE_KEY.finditer(text))
    elif kind == "password":
        if "://" in text:
            yield from _url_passwords(text)
    else:
        yield from _api_keys(text, kind)
