"""Logs are copied and kept where erasure cannot reach them: what the
configured LOGGING handlers write on the main paths (import, an inbound STOP
and HELP over the webhook, a campaign's dispatch, an erasure) holds no phone
number in any written form, no name and no message text. django-q2's and
gunicorn's loggers are masked too."""

import copy
import io
import logging
import logging.config
import runpy
import secrets

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from gunicorn.config import Config

from campaigns.tracking import inbox, receipts
from config.gunicorn_logging import MaskedLogger
from config.lib.redaction import phone_forms
from contacts.importing.importer import run_import
from contacts.importing.jobs import create_import_job
from contacts.models import Contact, ImportJob
from contacts.services.erasure import erase
from sinch import signatures
from sinch.simulator import events
from tests.sinch.conftest import ACCOUNT, WEBHOOK_SECRET

IMPORTED = {"+4915123456789": "Zebulon", "+4915123456780": "Quirina"}
REPLIER = "+14155550177"
STOP_TEXT = "STOP sending me the xylophone offers"
HELP_TEXT = "HELP"


@pytest.fixture
def written_logs(settings):
    """Everything the configured console handler writes, at every level."""
    stream = io.StringIO()
    config = copy.deepcopy(settings.LOGGING)
    config["handlers"]["console"]["stream"] = stream
    config["root"]["level"] = "DEBUG"
    logging.config.dictConfig(config)
    yield stream
    logging.config.dictConfig(settings.LOGGING)


def assert_no_personal_data(text: str, numbers, words) -> None:
    assert text  # the paths did log: the test looks at real output
    for number in numbers:
        masked_audit_form = next(f for f in phone_forms(number) if "•" in f)
        for form in phone_forms(number) - {masked_audit_form}:
            assert form not in text, f"{form!r} (a form of {number}) was logged"
    for word in words:
        assert word not in text, f"{word!r} was logged"


def post_inbound(text: str, identity: str) -> None:
    payload = events.inbound(
        ACCOUNT,
        message_id=f"01REPLY{secrets.token_hex(8)}",
        channel="SMS",
        identity=identity.lstrip("+"),
        text=text,
        sender_id="",
        conversation_metadata="",
        mode="DISPATCH",
        now=timezone.now().timestamp(),
    )
    body = events.dumps(payload)
    headers = signatures.sign(body, WEBHOOK_SECRET)
    for answer in (b"ok", b"already received"):  # Sinch's retry is logged too
        response = Client().generic(
            "POST",
            "/webhooks/sinch",
            body,
            content_type="application/json",
            headers=headers,
        )
        assert response.content == answer


def test_import_webhook_dispatch_and_erasure_log_no_number_name_or_text(
    written_logs,
    write_csv,
    make_contact,
    launched_campaign,
    sinch,
    superuser,
    monkeypatch,
):
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)
    # import
    rows = [["phone", "first_name", "channel", "consent"]]
    rows += [[number, name, "SMS", "yes"] for number, name in IMPORTED.items()]
    rows.append(["+4915123456781", "Ulrike", "FAX", "yes"])  # a refused row
    job = create_import_job(
        path=write_csv(rows),
        original_name="crm.csv",
        actor=None,
        target_list=None,
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode=ImportJob.ConsentMode.COLUMN,
        consent_source="IMPORT",
        consent_evidence="Sign-up form",
    )
    run_import(job, dry_run=False, actor=None)
    # an inbound STOP and HELP over the webhook
    replier = make_contact(REPLIER, consent="OPTED_IN", first_name="Wilhelmina")
    post_inbound(STOP_TEXT, REPLIER)
    post_inbound(HELP_TEXT, REPLIER)
    receipts.process_pending()
    # a campaign sent through the simulator (+14155550000 to +14155550006)
    campaign = launched_campaign()
    assert campaign.status != "DRAFT"
    # erasures
    erase(contact=replier, actor=superuser, reason="asked by phone")
    for contact in Contact.objects.filter(first_name__in=IMPORTED.values()):
        erase(contact=contact, actor=superuser)

    logged = written_logs.getvalue()
    numbers = [*IMPORTED, "+4915123456781", REPLIER]
    numbers += [f"+1415555{n:04d}" for n in range(7)]
    assert_no_personal_data(
        logged,
        numbers,
        [*IMPORTED.values(), "Ulrike", "Wilhelmina", "xylophone"],
    )
    assert "+1********77" in logged  # the HELP reply, logged masked


def test_a_number_in_a_django_q2_log_or_traceback_is_masked(written_logs):
    try:
        raise ValueError(f"could not send to {REPLIER}")
    except ValueError:
        logging.getLogger("django-q").exception("task failed for 14155550177")
    logged = written_logs.getvalue()
    assert "task failed for 14*******77" in logged
    assert "could not send to +1********77" in logged
    assert_no_personal_data(logged, [REPLIER], [])


def test_every_written_form_of_a_number_is_masked_but_dates_and_ids_stay(
    written_logs,
):
    logger = logging.getLogger("campaigns.anything")
    for number in (REPLIER, "+4915123456789", "+442071838750"):
        for form in sorted(phone_forms(number)):
            logger.warning("search for %s gave nothing", form)
    logger.warning("batch 12345 at 2026-12-03 07:00:00.123 from 127.0.0.1:8000")
    logged = written_logs.getvalue()
    assert_no_personal_data(logged, [REPLIER, "+4915123456789", "+442071838750"], [])
    assert "batch 12345 at 2026-12-03 07:00:00.123 from 127.0.0.1:8000" in logged


def test_gunicorn_error_and_access_logs_are_masked():
    """gunicorn's loggers do not propagate to the root logger: the logger
    class its config names masks them itself."""
    conf = runpy.run_path(str(settings.BASE_DIR / "config" / "gunicorn.conf.py"))
    assert conf["logger_class"] == "config.gunicorn_logging.MaskedLogger"
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("errorlog", "-")
    logger = MaskedLogger(cfg)
    error, access = io.StringIO(), io.StringIO()
    [error_handler] = logger.error_log.handlers
    [access_handler] = logger.access_log.handlers
    error_handler.setStream(error)
    access_handler.setStream(access)
    try:
        logger.error("worker saw %s", REPLIER)
        logger.access_log.info(
            '"GET /admin/contacts/contact/?q=%s HTTP/1.1" 200', "%2B4915123456789"
        )
        logger.setup(cfg)  # a reload (HUP) sets the handlers up again
        logger.error_log.handlers[0].setStream(error)
        logger.error("after the reload %s", REPLIER)
    finally:
        for log in (logger.error_log, logger.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
    assert "worker saw +1********77" in error.getvalue()
    assert "after the reload +1********77" in error.getvalue()
    assert "?q=%2************89 HTTP/1.1" in access.getvalue()
    both = error.getvalue() + access.getvalue()
    assert_no_personal_data(both, [REPLIER, "+4915123456789"], [])


def test_the_logging_settings_mask_every_handler(settings):
    """A handler added to LOGGING without the mask would write numbers."""
    for name, handler in settings.LOGGING["handlers"].items():
        assert "mask_numbers" in handler.get("filters", []), name
