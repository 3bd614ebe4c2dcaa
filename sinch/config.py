"""The effective Sinch settings: the real ones, or the local simulator's.

With none of the four credentials set, the product talks to the simulator
(`manage.py sinch_simulator`) and the simulator pretends to be this account,
so the app, the simulator, the system check and `make run` agree without any
configuration. Settings are read when the function is called, never at import.
"""

from dataclasses import dataclass, field

from sinch import wire

SIMULATOR_HOST = "127.0.0.1"
SIMULATOR_PORT = 8025
SIMULATOR_ORIGIN = f"http://{SIMULATOR_HOST}:{SIMULATOR_PORT}"
# The fixed development account the simulator serves. Not secrets: they only
# ever open the local simulator.
SIMULATOR_PROJECT_ID = "sim-project"
SIMULATOR_APP_ID = "01SIMAPP000000000000000000"
SIMULATOR_KEY_ID = "sim-key-id"
SIMULATOR_KEY_SECRET = "sim-key-secret"
# Public (it is in this file), so it verifies callbacks only with DEBUG on.
SIMULATOR_WEBHOOK_SECRET = "sim-webhook-secret"

CREDENTIAL_SETTINGS = (
    "SINCH_PROJECT_ID",
    "SINCH_KEY_ID",
    "SINCH_KEY_SECRET",
    "SINCH_APP_ID",
)


@dataclass(frozen=True)
class SinchSettings:
    project_id: str
    app_id: str
    key_id: str = field(repr=False)
    key_secret: str = field(repr=False)
    region: str
    batch_api_url: str
    auth_url: str
    # The main Conversation API (the app and its webhooks: sinch_check).
    conversation_api_url: str
    # The first secret signs; all of them verify (rotation).
    webhook_secrets: tuple[str, ...] = field(repr=False)
    simulated: bool


def sinch_settings() -> SinchSettings:
    """Sinch settings as the product uses them.

    SINCH_WEBHOOK_SECRET may list several secrets separated by commas while a
    secret is rotated. Without credentials, the Sinch origins that are still at
    their regional defaults point at the simulator instead.

    The simulator's development secret verifies callbacks only with DEBUG on
    (by default when no secret is set); with DEBUG off it is dropped even when
    set explicitly, so without another secret every callback is refused.
    """
    from django.conf import settings

    region = settings.SINCH_REGION
    secrets = webhook_secrets(settings.SINCH_WEBHOOK_SECRET, debug=settings.DEBUG)
    simulated = not any(getattr(settings, name) for name in CREDENTIAL_SETTINGS)
    batch_api_url = settings.SINCH_BATCH_API_URL.rstrip("/")
    auth_url = settings.SINCH_AUTH_URL.rstrip("/")
    conversation_api_url = settings.SINCH_CONVERSATION_API_URL.rstrip(
        "/"
    ) or wire.REGION_CONVERSATION_API_URL.format(region=region)
    if not simulated:
        return SinchSettings(
            project_id=settings.SINCH_PROJECT_ID,
            app_id=settings.SINCH_APP_ID,
            key_id=settings.SINCH_KEY_ID,
            key_secret=settings.SINCH_KEY_SECRET,
            region=region,
            batch_api_url=batch_api_url,
            auth_url=auth_url,
            conversation_api_url=conversation_api_url,
            webhook_secrets=secrets,
            simulated=False,
        )
    if batch_api_url == wire.REGION_BATCH_API_URL.format(region=region):
        batch_api_url = SIMULATOR_ORIGIN
    if auth_url == wire.DEFAULT_AUTH_URL:
        auth_url = SIMULATOR_ORIGIN
    if not settings.SINCH_CONVERSATION_API_URL:
        conversation_api_url = SIMULATOR_ORIGIN
    return SinchSettings(
        project_id=SIMULATOR_PROJECT_ID,
        app_id=SIMULATOR_APP_ID,
        key_id=SIMULATOR_KEY_ID,
        key_secret=SIMULATOR_KEY_SECRET,
        region=region,
        batch_api_url=batch_api_url,
        auth_url=auth_url,
        conversation_api_url=conversation_api_url,
        webhook_secrets=secrets
        or ((SIMULATOR_WEBHOOK_SECRET,) if settings.DEBUG else ()),
        simulated=True,
    )


def webhook_secrets(configured: str, *, debug: bool) -> tuple[str, ...]:
    """The secrets of SINCH_WEBHOOK_SECRET that may verify a callback."""
    secrets = tuple(s.strip() for s in configured.split(",") if s.strip())
    if debug:
        return secrets
    return tuple(s for s in secrets if s != SIMULATOR_WEBHOOK_SECRET)
