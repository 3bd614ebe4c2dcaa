"""The Sinch Conversation Batch API client.

Build it with `get_sinch_client()` (settings, or the simulator when no
credentials are configured); tests build one directly or clear the factory's
cache. Every method raises a SinchError subclass on failure (see errors.py
and the retry policy in transport.py).
"""

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from sinch import wire
from sinch.auth import TokenProvider
from sinch.config import SinchSettings, sinch_settings
from sinch.errors import SinchProtocolError, SinchUncertainOutcomeError
from sinch.payloads import (
    BatchStatus,
    ConsentInsertResponse,
    ConsentRecord,
    ContactCreate,
    SendBatchRequest,
    SendBatchResponse,
)
from sinch.transport import RetryPolicy, Transport


class SinchClient:
    def __init__(
        self,
        *,
        project_id: str,
        app_id: str,
        key_id: str,
        key_secret: str,
        batch_api_url: str,
        auth_url: str,
        transport: Transport | None = None,
    ) -> None:
        self.project_id = project_id
        self.app_id = app_id
        self.batch_api_url = batch_api_url.rstrip("/")
        self.transport = transport or Transport()
        self._tokens = TokenProvider(
            key_id=key_id,
            key_secret=key_secret,
            auth_url=auth_url,
            transport=self.transport,
        )
        self._project = self.batch_api_url + wire.PROJECT_PATH.format(
            project_id=quote(project_id, safe="")
        )

    @classmethod
    def from_settings(cls, conf: SinchSettings, **kwargs: Any) -> "SinchClient":
        return cls(
            project_id=conf.project_id,
            app_id=conf.app_id,
            key_id=conf.key_id,
            key_secret=conf.key_secret,
            batch_api_url=conf.batch_api_url,
            auth_url=conf.auth_url,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"<SinchClient project={self.project_id} api={self.batch_api_url}>"

    def send_batch(self, request: SendBatchRequest) -> SendBatchResponse:
        """Submit one batch (at most 1000 recipients); the client's app_id
        is used when the request has none.

        Retried only on a 429. Raises SinchUncertainOutcomeError when Sinch may
        have accepted it anyway (timeout, lost connection, 5xx): reconcile with
        `batches_by_metadata` before sending it again.
        """
        body = request.to_json(app_id=self.app_id)
        try:
            answer = self._call(
                "POST", "/messages", body, repeatable=False, operation="send batch"
            )
            return SendBatchResponse.from_wire(answer)
        except SinchProtocolError as exc:
            raise SinchUncertainOutcomeError(
                "send batch: accepted, but the answer was unreadable"
            ) from exc

    def cancel_batch(self, batch_id: str) -> None:
        """Ask Sinch to cancel a scheduled batch. Sinch always answers 200,
        cancelled or not: read the status afterwards to know."""
        self._call(
            "DELETE",
            "/messages",
            {wire.CANCEL_BODY_ID_FIELD: batch_id},
            repeatable=True,
            operation="cancel batch",
        )

    def get_batch(self, batch_id: str) -> BatchStatus:
        """The batch's status; SinchNotFoundError for an unknown id."""
        path = "/messages/" + quote(batch_id, safe="")
        data = self._call("GET", path, repeatable=True, operation="get batch")
        return BatchStatus.from_wire(data)

    def batches_by_metadata(self, key: str, value: str) -> list[BatchStatus]:
        """Batches whose batch_metadata has `key` equal to `value`."""
        data = self._call(
            "GET",
            "/messages",
            params={"metadataKey": key, "metadataValue": value},
            repeatable=True,
            operation="list batches",
        )
        return BatchStatus.list_from_wire(data)

    def create_contacts(self, contacts: Sequence[ContactCreate]) -> None:
        """Create up to 1000 contacts; Sinch reports each in a CONTACT_CREATE
        callback. Not repeated on ambiguity (it would create duplicates)."""
        body = {"contacts": [c.to_wire() for c in contacts]}
        self._call(
            "POST", "/contacts", body, repeatable=False, operation="create contacts"
        )

    def delete_contacts(self, contact_ids: Iterable[str]) -> None:
        """Delete up to 1000 contacts (idempotent)."""
        body = {"contact_ids": list(contact_ids)}
        self._call(
            "DELETE", "/contacts", body, repeatable=True, operation="delete contacts"
        )

    def insert_consents(
        self, records: Sequence[ConsentRecord], *, app_id: str = ""
    ) -> ConsentInsertResponse:
        """Store opt-out records. Not atomic at Sinch: on an error, send the
        whole list again (inserting a record twice is harmless)."""
        body = {
            "app_id": app_id or self.app_id,
            "consent_records": [r.to_wire() for r in records],
        }
        data = self._call(
            "POST", "/consents", body, repeatable=True, operation="insert consents"
        )
        return ConsentInsertResponse.from_wire(data)

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        repeatable: bool,
        operation: str,
    ) -> Any:
        raw = body
        if body is not None and not isinstance(body, bytes):
            raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        response = self.transport.request(
            method,
            self._project + path,
            repeatable=repeatable,
            tokens=self._tokens,
            body=raw,
            params=params,
            operation=operation,
        )
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise SinchProtocolError(f"{operation}: unreadable answer") from exc


@functools.cache
def get_sinch_client() -> SinchClient:
    """The process's client, built from settings on first use.

    Tests call `get_sinch_client.cache_clear()` after changing settings.
    """
    return SinchClient.from_settings(sinch_settings())


__all__ = ["RetryPolicy", "SinchClient", "Transport", "get_sinch_client"]
