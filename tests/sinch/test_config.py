"""Effective Sinch settings: real credentials, or the simulator's defaults."""

import pytest
from django.core.checks import Error, Info, Warning

from sinch.checks import check_sinch_settings, check_webhook_secret
from sinch.client import get_sinch_client
from sinch.config import SIMULATOR_ORIGIN, sinch_settings

REAL = {
    "SINCH_PROJECT_ID": "proj-1",
    "SINCH_KEY_ID": "key-1",
    "SINCH_KEY_SECRET": "secret-1",
    "SINCH_APP_ID": "01HXAPP",
}
EMPTY = dict.fromkeys(REAL, "")


@pytest.fixture(autouse=True)
def fresh_factory():
    get_sinch_client.cache_clear()
    yield
    get_sinch_client.cache_clear()


def test_without_credentials_the_simulator_is_the_target(settings):
    settings.DEBUG = True  # make run: the development secret verifies callbacks
    for name, value in EMPTY.items():
        setattr(settings, name, value)
    settings.SINCH_BATCH_API_URL = "https://us.conversationbatch.api.sinch.com"
    settings.SINCH_AUTH_URL = "https://auth.sinch.com"
    settings.SINCH_WEBHOOK_SECRET = ""
    conf = sinch_settings()
    assert conf.simulated
    assert conf.batch_api_url == conf.auth_url == SIMULATOR_ORIGIN
    assert conf.webhook_secrets == ("sim-webhook-secret",)
    client = get_sinch_client()
    assert client.batch_api_url == SIMULATOR_ORIGIN
    assert get_sinch_client() is client
    [info] = check_sinch_settings()
    assert isinstance(info, Info)
    assert SIMULATOR_ORIGIN in info.msg


def test_an_explicit_origin_is_kept_for_the_simulator(settings):
    for name, value in EMPTY.items():
        setattr(settings, name, value)
    settings.SINCH_BATCH_API_URL = "http://127.0.0.1:9000"
    settings.SINCH_AUTH_URL = "http://127.0.0.1:9000/"
    conf = sinch_settings()
    assert (conf.batch_api_url, conf.auth_url) == ("http://127.0.0.1:9000",) * 2


def test_real_credentials_target_sinch_and_secrets_stay_out_of_repr(settings):
    for name, value in REAL.items():
        setattr(settings, name, value)
    settings.SINCH_REGION = "eu"
    settings.SINCH_BATCH_API_URL = "https://eu.conversationbatch.api.sinch.com"
    settings.SINCH_WEBHOOK_SECRET = "new-secret, old-secret"
    conf = sinch_settings()
    assert not conf.simulated
    assert conf.batch_api_url == "https://eu.conversationbatch.api.sinch.com"
    assert conf.webhook_secrets == ("new-secret", "old-secret")
    for secret in ("key-1", "secret-1", "new-secret"):
        assert secret not in repr(conf)
        assert secret not in repr(get_sinch_client())
    assert check_sinch_settings() == []


def test_partial_credentials_are_an_error_and_a_missing_webhook_secret_a_warning(
    settings,
):
    for name, value in REAL.items():
        setattr(settings, name, value)
    settings.SINCH_KEY_SECRET = ""
    [error] = check_sinch_settings()
    assert isinstance(error, Error)
    assert "SINCH_KEY_SECRET" in error.msg
    settings.SINCH_KEY_SECRET = "secret-1"
    settings.SINCH_WEBHOOK_SECRET = ""
    assert check_sinch_settings() == []
    settings.DEBUG = True
    [warning] = check_webhook_secret()
    assert isinstance(warning, Warning)
    settings.DEBUG = False
    [error] = check_webhook_secret()
    assert isinstance(error, Error)
