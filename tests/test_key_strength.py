"""With DEBUG off, a guessable SECRET_KEY or ERASURE_HASH_KEY is a system
check error: too short, too few distinct characters, a development value
from the source, or Django's 'django-insecure-' prefix."""

import secrets

import pytest
from django.core.checks import Error, run_checks

from config.lib.key_strength import DEV_ERASURE_HASH_KEY, DEV_SECRET_KEY

STRONG = secrets.token_urlsafe(50)
STRONG_ERASURE = secrets.token_urlsafe(32)


def key_errors() -> dict[str, str]:
    return {m.id: m.msg for m in run_checks() if m.id in ("config.E001", "config.E002")}


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = STRONG
    settings.SECRET_KEY_FALLBACKS = []
    settings.ERASURE_HASH_KEY = STRONG_ERASURE
    return settings


def test_strong_random_keys_pass(production):
    assert key_errors() == {}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (DEV_SECRET_KEY, "development value"),
        ("django-insecure-" + secrets.token_urlsafe(50), "django-insecure-"),
        (secrets.token_urlsafe(20), "at least 50 needed"),
        ("ab" * 40, "2 distinct characters"),
    ],
    ids=["dev value", "django-insecure", "too short", "few characters"],
)
def test_a_weak_secret_key_is_an_error(production, value, says):
    production.SECRET_KEY = value
    errors = key_errors()
    assert list(errors) == ["config.E001"]
    assert "SECRET_KEY is too weak" in errors["config.E001"]
    assert says in errors["config.E001"]
    assert value not in errors["config.E001"]  # a key is never printed


def test_a_weak_old_key_kept_for_rotation_is_an_error_too(production):
    production.SECRET_KEY_FALLBACKS = ["x" * 60]
    assert "SECRET_KEY_FALLBACKS is too weak" in key_errors()["config.E001"]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (DEV_ERASURE_HASH_KEY, "development value"),
        ("short-key", "at least 32 needed"),
        ("0" * 64, "1 distinct characters"),
    ],
    ids=["dev value", "too short", "few characters"],
)
def test_a_weak_erasure_hash_key_is_an_error(production, value, says):
    production.ERASURE_HASH_KEY = value
    errors = key_errors()
    assert list(errors) == ["config.E002"]
    assert "ERASURE_HASH_KEY is too weak" in errors["config.E002"]
    assert says in errors["config.E002"]
    check = next(m for m in run_checks() if m.id == "config.E002")
    assert isinstance(check, Error)
    assert "suppression of earlier erasures" in check.hint


def test_with_debug_on_the_development_keys_are_fine(production):
    production.DEBUG = True
    production.SECRET_KEY = DEV_SECRET_KEY
    production.ERASURE_HASH_KEY = DEV_ERASURE_HASH_KEY
    assert key_errors() == {}
