"""PII and secret detection: false positives on technical text, recall on probes, speed.

    .venv/bin/python benchmarks/pii_detectors.py

Four detectors side by side, each on the kinds it covers:
- llm_platform.documents.pii (what cleaning uses);
- llm_platform.documents.pii_audit (the independent second opinion behind
  `no_pii_left`; it must find every probe too, and nothing in technical text);
- detect-secrets as a user runs it (`detect-secrets scan`: every default plugin,
  entropy and keyword detectors included), for keys and tokens;
- phonenumbers' matcher in every region the platform reads, VALID leniency, with
  no rule for bare digit runs, for phone numbers.
"Technical text" is Python's own help topics (pydoc_data, no personal data in
it), so every hit there is a false positive; so is every hit on "integers":
1,000 random 10-digit numbers in a sentence ("the counter reached N"), the
shape of timestamps, ids and sizes. The probes are one sentence per kind and
format variant, the shapes issues 9 and 16 reported as leaking.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from pydoc_data.topics import topics

from llm_platform.documents.pii import find_pii
from llm_platform.documents.pii_audit import audit_pii
from llm_platform.documents.pii_phones import PHONE_REGIONS

SECRET_KINDS = {"api_key", "webhook_url", "private_key", "password", "credential"}
PROBES = [
    ("email", "alice [at] example [dot] com"),
    ("email", "bob(at)example(dot)org"),
    ("email", "carol.white@example.net"),
    ("phone", "Call 4155550134"),
    ("phone", "415 555 0134"),
    ("phone", "(212) 555-0199"),
    ("phone", "07911 123456"),
    ("phone", "+44 7700 900123"),
    ("phone", "030 12345678"),
    ("phone", "+49 (0)30 12345678"),
    ("phone", "0171 1234567"),
    ("phone", "030/12345678"),
    ("phone", "01 23 45 67 89"),
    ("phone", "+33 6 12 34 56 78"),
    ("phone", "+91 98765 43210"),
    ("phone", "022 2345 6789"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "GB82WEST12345698765432"),
    ("ssn", "123-45-6789"),
    ("credit_card", "4111 1111 1111 1111"),
    ("ip_address", "10.20.30.40"),
    ("api_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("webhook_url", "https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/q1w2e3r4t5y6u7i8o9p0a1s2"),
    ("api_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("api_key", "rk_live_51H8abcdefghijklmnopqrstu"),
    ("api_key", "ghp_" + "a1B2c3D4e5" * 4),
    ("api_key", "ghp\\_" + "a1B2c3D4e5" * 4),
    (
        "private_key",
        (
            "-----BEGIN RSA PRIVATE KEY-----\n"
            "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
            "-----END RSA PRIVATE KEY-----"
        ),
    ),
    ("password", "postgresql://app:Tr0ub4dor@db.example.com:5432/app"),
    # issue 16
    ("credential", "host=db user=app password=s3cr3tP4ss dbname=x"),
    ("credential", "jdbc:postgresql://db:5432/app?user=app&password=hunter2xyz"),
    ("credential", "DB_PASSWORD=Pl4in-Env-Secret"),
    ("credential", "password: yaml-Pa55word"),
    ("credential", "Authorization: Basic dXNlcjpwYXNzd29yZA=="),
    ("credit_card", "4111.1111.1111.1111"),
    ("credit_card", "4111 11111111 1111"),
    ("ssn", "123.45.6789"),
    ("api_key", "hf_aBcD1234eFgH5678iJkL9012mNoP3456qR"),
    ("iban", "DE89-3704-0044-0532-0130-00"),
    ("email", "jörg@exämple.de"),
]


def platform_hits(text: str) -> int:
    return len(find_pii(text))


def detect_secrets_hits(text: str) -> int:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    with tempfile.TemporaryDirectory() as folder, default_settings():
        path = Path(folder) / "document.txt"
        path.write_text(text, encoding="utf-8")
        secrets = SecretsCollection()
        secrets.scan_file(str(path))
        return sum(len(found) for _, found in secrets.data.items())


def phonenumbers_hits(text: str) -> int:
    import phonenumbers

    spans = {
        (match.start, match.end)
        for region in PHONE_REGIONS
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
    }
    return len(spans)


def measure(name: str, hits: Callable[[str], int], kinds: set[str] | None) -> dict:
    texts = list(topics.values())
    started = time.perf_counter()
    false_positives = sum(hits(text) for text in texts)
    seconds = time.perf_counter() - started
    probes = [value for kind, value in PROBES if kinds is None or kind in kinds]
    found = sum(hits(f"For this case, the contact is {value}, as noted.") > 0 for value in probes)
    megabytes = sum(len(text) for text in texts) / 1e6
    integers = sum(hits(f"the counter reached {n} today") > 0 for n in _random_integers())
    return {
        "detector": name,
        "false positives": false_positives,
        "integers": integers,
        "recall": f"{found}/{len(probes)}",
        "MB/s": megabytes / seconds,
    }


def _random_integers() -> list[int]:
    rng = random.Random(9)
    return [rng.randrange(10**9, 10**10) for _ in range(1000)]


def main() -> None:
    rows = [
        measure("llm_platform pii (all kinds)", platform_hits, None),
        measure("llm_platform pii_audit (no_pii_left)", lambda t: len(audit_pii(t)), None),
        measure("llm_platform pii (secrets)", lambda t: sum(k in SECRET_KINDS for k, _ in find_pii(t)), SECRET_KINDS),
        measure("detect-secrets scan defaults (secrets)", detect_secrets_hits, SECRET_KINDS),
        measure("llm_platform pii (phones)", lambda t: sum(k == "phone" for k, _ in find_pii(t)), {"phone"}),
        measure("phonenumbers, all regions, no bare-number rule", phonenumbers_hits, {"phone"}),
    ]
    print(
        f"technical text: {len(topics)} Python help topics, "
        f"{sum(map(len, topics.values())) / 1e6:.2f} MB; probes: {len(PROBES)}"
    )
    print(f"{'detector':<48} {'hits on help topics':>20} {'hits on integers':>17} {'probe recall':>13} {'MB/s':>7}")
    for row in rows:
        print(
            f"{row['detector']:<48} {row['false positives']:>20} "
            f"{row['integers']:>17} {row['recall']:>13} {row['MB/s']:>7.2f}"
        )


if __name__ == "__main__":
    main()
