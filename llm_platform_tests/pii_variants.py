"""Secrets and PII in the shapes an outside tester found leaking into chunks, the index and search (issue 16).

(kind, text as written in a document, the value that must never be stored)
"""

HF_TOKEN = "hf_aBcD1234eFgH5678iJkL9012mNoP3456qR"
REPORTED_VARIANTS = [
    ("credential", "host=db user=app password=s3cr3tP4ss dbname=x", "s3cr3tP4ss"),
    ("credential", "jdbc:postgresql://db:5432/app?user=app&password=hunter2xyz", "hunter2xyz"),
    ("credential", "DB_PASSWORD=Pl4in-Env-Secret", "Pl4in-Env-Secret"),
    ("credential", "password: yaml-Pa55word", "yaml-Pa55word"),
    ("credit_card", "4111.1111.1111.1111", "4111.1111.1111.1111"),
    ("credit_card", "4111 11111111 1111", "4111 11111111 1111"),
    ("ssn", "123.45.6789", "123.45.6789"),
    ("api_key", HF_TOKEN, HF_TOKEN[3:]),
    ("credential", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("iban", "DE89-3704-0044-0532-0130-00", "0532-0130"),
    ("email", "jörg@exämple.de", "jörg"),
]
# The other config and URL syntaxes a credential is written in.
CREDENTIAL_SYNTAXES = [
    ('"client_secret": "c1ient-S3cret-value"', "c1ient-S3cret-value"),
    ("'api_key' => 'perl-K3y-9f8e7d'", "perl-K3y-9f8e7d"),
    ("export GITHUB_TOKEN=env-T0ken-4a5b6c", "env-T0ken-4a5b6c"),
    ("Driver={PostgreSQL};Server=db;Uid=app;Pwd=odbc-Pa55;", "odbc-Pa55"),
    ("https://api.example.com/v1?access_key=q-Acc3ss-77&page=2", "q-Acc3ss-77"),
    ("authToken := goT0ken-c0de", "goT0ken-c0de"),
    ("x-api-key: h3ader-key-0042", "h3ader-key-0042"),
    ("Authorization: Bearer abc.def-ghi_jkl~mno", "abc.def-ghi_jkl~mno"),
    ("**Password:** `md-B0ld-pass`", "md-B0ld-pass"),
    ("__api_key__ = md-Und3r-key", "md-Und3r-key"),
]
