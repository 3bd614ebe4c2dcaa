"""POST /webhooks/sinch: where Sinch (or the simulator) delivers callbacks.

Thin on purpose: it checks the size, the signature on the raw body (with the
timestamp window), that the body is a JSON object, stores the raw event
(campaigns.tracking.inbox) and answers 200 within milliseconds; the processing happens
in a background task. Every refusal changes nothing and is logged at warning
level, without the body:

- 405 any method but POST;
- 413 a body larger than WEBHOOK_MAX_BODY_BYTES (declared or read);
- 401 unsigned, badly signed, outside the timestamp window, or a nonce seen
  before with another body;
- 200 and nothing stored: the very callback stored before (same nonce, same
  body), which Sinch delivers again when our first 200 was lost; refusing
  it would have Sinch retry it again and again;
- 400 not a JSON object, or JSON nested deeper than json_input.MAX_DEPTH (20
  levels; Sinch's callbacks nest about 5);
- 503 the database (or the missing webhook secret) keeps us from storing it:
  Sinch delivers it again later.

It is the one view exempt from CSRF: the signature is its authentication.
"""

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

from campaigns.tracking import inbox
from config.lib.json_input import JsonInputError, parse_json
from sinch import signatures, wire
from sinch.config import sinch_settings

logger = logging.getLogger(__name__)

NONCE_MAX_LENGTH = 128  # WebhookEvent.nonce


def _refuse(request: HttpRequest, status: int, why: str, size: int) -> HttpResponse:
    logger.warning(
        "Sinch webhook refused (%s): %s; %s bytes from %s",
        status,
        why,
        size,
        request.META.get("REMOTE_ADDR", "?"),
    )
    return HttpResponse(why, status=status, content_type="text/plain")


@csrf_exempt
def sinch_webhook(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refuse(request, 400, "bad Content-Length", 0)
    if declared > limit:
        return _refuse(request, 413, f"body over {limit} bytes", declared)
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return _refuse(request, 413, f"body over {limit} bytes", len(raw))

    verdict = signatures.verify(
        request.headers,
        raw,
        sinch_settings().webhook_secrets,
        tolerance_s=settings.SINCH_WEBHOOK_TOLERANCE_S,
    )
    if verdict is signatures.Verdict.NO_SECRET:
        # Our configuration, not the sender, is at fault: Sinch retries.
        logger.error(
            "Sinch webhook refused (503): no usable SINCH_WEBHOOK_SECRET (unset, "
            "or the simulator's development secret, which is never accepted "
            "with DEBUG off); %s bytes from %s",
            len(raw),
            request.META.get("REMOTE_ADDR", "?"),
        )
        return HttpResponse(
            "webhook secret not configured", status=503, content_type="text/plain"
        )
    if not verdict.ok:
        return _refuse(request, 401, f"signature {verdict.value}", len(raw))
    nonce = request.headers[wire.NONCE_HEADER]
    if len(nonce) > NONCE_MAX_LENGTH or not (nonce.isascii() and nonce.isprintable()):
        return _refuse(request, 401, "unusable nonce", len(raw))

    try:
        body = raw.decode("utf-8")
        data = parse_json(body, nul=True)
    except JsonInputError as exc:
        return _refuse(request, 400, f"not a JSON object: {exc}", len(raw))
    except ValueError:  # UnicodeDecodeError
        return _refuse(request, 400, "not a JSON object: not UTF-8", len(raw))
    if not isinstance(data, dict):
        return _refuse(request, 400, "not a JSON object", len(raw))

    signed_at = int(request.headers[wire.TIMESTAMP_HEADER])
    try:
        event = inbox.store(body, nonce, signed_at)
    except DatabaseError:
        logger.exception("Sinch webhook: could not store the callback (503)")
        return HttpResponse("try again later", status=503, content_type="text/plain")
    if event is None:
        if inbox.already_stored(nonce, body):
            logger.info("Sinch webhook: a callback stored before came again")
            return HttpResponse("already received", content_type="text/plain")
        return _refuse(request, 401, "nonce already used (replay)", len(raw))
    inbox.wake_processor()
    return HttpResponse("ok", content_type="text/plain")
