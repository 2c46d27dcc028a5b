"""The object-store tests use the session's moto server and per-test
buckets from `llm_platform_tests/s3_fixtures.py`.
"""
