"""The app and its webhooks, read from the main Conversation API.

The Batch API sends; the app it sends for, with its processing mode and the
webhooks Sinch posts callbacks to, is configured on the main Conversation API
(sinch.wire: REGION_CONVERSATION_API_URL). `manage.py sinch_check` reads them
here. Every shape Sinch may plausibly answer is read (the UNCONFIRMED notes in
sinch.wire); the raw answer is never trusted to have any field.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sinch import wire
from sinch.auth import TokenProvider
from sinch.config import SinchSettings
from sinch.errors import SinchProtocolError
from sinch.transport import Transport


@dataclass(frozen=True)
class App:
    app_id: str
    display_name: str
    processing_mode: str  # "" when Sinch did not say
    dispatch_retention_days: int | None  # None when Sinch did not say

    @classmethod
    def from_wire(cls, data: Any) -> "App":
        if not isinstance(data, dict):
            raise SinchProtocolError("get app: not a JSON object")
        return cls(
            app_id=str(data.get("id") or data.get("app_id") or ""),
            display_name=str(data.get("display_name") or ""),
            processing_mode=str(data.get("processing_mode") or "").upper(),
            dispatch_retention_days=_retention_days(
                data.get(wire.APP_DISPATCH_RETENTION_FIELD)
            ),
        )


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    target: str
    target_type: str
    triggers: frozenset[str]
    secret: str  # as Sinch showed it: "", masked, or the secret

    @classmethod
    def from_wire(cls, data: Any) -> "Webhook":
        if not isinstance(data, dict):
            raise SinchProtocolError("list webhooks: a webhook is not an object")
        triggers = data.get("triggers") or ()
        if isinstance(triggers, str):
            triggers = triggers.split(",")
        return cls(
            webhook_id=str(data.get("id") or ""),
            target=str(data.get("target") or ""),
            target_type=str(
                data.get("target_type") or wire.WEBHOOK_DEFAULT_TARGET_TYPE
            ).upper(),
            triggers=frozenset(str(t).strip().upper() for t in triggers if t),
            secret=str(data.get("secret") or ""),
        )

    @property
    def secret_masked(self) -> bool:
        return bool(self.secret) and set(self.secret) <= wire.WEBHOOK_SECRET_MASK_CHARS

    def missing(self, triggers: Iterable[str]) -> list[str]:
        """The triggers of `triggers` this webhook is not subscribed to."""
        missing = []
        for trigger in triggers:
            names = (
                wire.BATCH_STATUS_TRIGGER_ALIASES
                if trigger == wire.BATCH_STATUS_TRIGGER
                else (trigger,)
            )
            if not self.triggers & set(names):
                missing.append(trigger)
        return missing


def _retention_days(policy: Any) -> int | None:
    if policy is None:
        return None
    if not isinstance(policy, dict):
        return _int(policy)
    days = policy.get(wire.APP_RETENTION_DAYS_FIELD, 0)  # proto3 leaves out a 0
    return _int(days)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip().rstrip("d"))
    except ValueError:
        return None


def webhooks_from_wire(data: Any) -> list[Webhook]:
    """{"webhooks": [...]} as documented; a bare list, or {} for none."""
    if isinstance(data, dict):
        data = data.get("webhooks", [])
    if not isinstance(data, list):
        raise SinchProtocolError("list webhooks: no list of webhooks")
    return [Webhook.from_wire(item) for item in data]


class AppSetupClient:
    """Reads the configured app and its webhooks (GET only)."""

    def __init__(self, conf: SinchSettings, transport: Transport) -> None:
        self.conf = conf
        self.transport = transport
        self.tokens = TokenProvider(
            key_id=conf.key_id,
            key_secret=conf.key_secret,
            auth_url=conf.auth_url,
            transport=transport,
        )
        ids = {
            "project_id": quote(conf.project_id, safe=""),
            "app_id": quote(conf.app_id, safe=""),
        }
        self.app_url = conf.conversation_api_url + wire.APP_PATH.format(**ids)
        self.webhooks_url = conf.conversation_api_url + wire.APP_WEBHOOKS_PATH.format(
            **ids
        )

    def get_app(self) -> App:
        return App.from_wire(self._get(self.app_url, "get app"))

    def list_webhooks(self) -> list[Webhook]:
        return webhooks_from_wire(self._get(self.webhooks_url, "list webhooks"))

    def _get(self, url: str, operation: str) -> Any:
        response = self.transport.request(
            "GET", url, repeatable=True, tokens=self.tokens, operation=operation
        )
        try:
            return response.json() if response.content else {}
        except ValueError as exc:
            raise SinchProtocolError(f"{operation}: unreadable answer") from exc
