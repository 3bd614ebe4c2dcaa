"""Erasure leaves no trace of the person (design §5, invariant 10).

Zebulon Quarterfield gets a full history through the real code paths: an
import of a CSV file, a campaign sent through the simulator with receipts
over the signed webhook, a reply, pre-send checks, an export, an admin log
entry, a stray queue record. After the erasure, every text column of every
table (django-q2's included) and every file under MEDIA_ROOT is scanned for
each written form of his number, his names, his attribute value and his
reply: nothing is found. Later callbacks from his number are matched by the
keyed hash and never store the number again.
"""

import json
import logging
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ, Task
from django_q.signing import SignedPackage

from campaigns import tasks
from campaigns.compliance import cap_exemption
from campaigns.models import InboundMessage, Recipient, WebhookEvent
from campaigns.tracking import inbox, receipts
from contacts.importing.importer import run_import
from contacts.importing.jobs import create_import_job, store_upload
from contacts.models import AuditEvent, ChannelIdentity, ConsentState, Contact
from contacts.services.audit import record_audit
from contacts.services.consent import Evidence, record_consent
from contacts.services.erasure import erase_contact, erased_identity

NUMBER = "+14155550101"
FORMS = ["+14155550101", "14155550101", "4155550101", "(415) 555-0101"]
NAMES = ["Zebulon", "Quarterfield"]
CITY = "Xylophonia"  # his attribute value
REPLY = "Quarterfield here: is the purple kangaroo offer real?"
NEEDLES = [*FORMS, *NAMES, CITY, "purple kangaroo"]
TEXT_TYPES = {"CharField", "TextField", "JSONField", "SlugField", "EmailField"}


def hits_in_tables() -> list[str]:
    """Every (model.field: needle) found in any text or JSON column, django-q2's
    pickled task values and queued payloads included."""
    found = []
    for model in apps.get_models():
        names = [
            f.name
            for f in model._meta.concrete_fields
            if f.get_internal_type() in TEXT_TYPES
            or type(f).__name__ == "PickledObjectField"
        ]
        if not names:
            continue
        for row in model._base_manager.values_list(*names):
            for name, value in zip(names, row, strict=True):
                text = f"{json.dumps(value, default=str)} {value!r}"
                found += [
                    f"{model.__name__}.{name}: {needle}"
                    for needle in NEEDLES
                    if needle.lower() in text.lower()
                ]
    for queued in OrmQ.objects.all():
        payload = repr(SignedPackage.loads(queued.payload))
        found += [f"OrmQ payload: {n}" for n in NEEDLES if n.lower() in payload.lower()]
    return found


def hits_in_files(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace").lower()
            found += [f"{path.name}: {n}" for n in NEEDLES if n.lower() in text]
    return found


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def import_people(write_csv, customers, *, validate_only=False):
    """The real importer, from an upload under MEDIA_ROOT/imports. Zebulon's
    number is written nationally; a second line repeats it (rejected, so it
    is in the import's report and samples)."""
    path = write_csv(
        [
            ["phone", "first_name", "last_name", "city"],
            ["(415) 555-0101", "Zebulon", "Quarterfield", CITY],
            ["+14155550102", "Ada", "Other", "Paris"],
            ["+14155550103", "Bert", "Other", "Lyon"],
            ["415-555-0101", "Zebulon", "Quarterfield", CITY],
        ],
        name="validate.csv" if validate_only else "people.csv",
    )
    with open(path, "rb") as handle:
        upload = store_upload(SimpleUploadedFile("people.csv", handle.read()))
    job = create_import_job(
        path=upload,
        original_name="people.csv",
        actor=None,
        target_list=customers,
        default_channel="SMS",
        purpose="MARKETING",
        consent_mode="DECLARED_OPT_IN",
        consent_source="IMPORT",
        consent_evidence="Shop sign-up form, 2026",
    )
    run_import(job, dry_run=True)
    if not validate_only:
        run_import(job, dry_run=False)
    return job


def send_and_reply(campaign, launched_campaign, control, live_server):
    """Launch through the simulator, wait for every receipt over the signed
    webhook, then Zebulon replies; everything is processed."""
    control.knobs(
        webhook_url=live_server.url + "/webhooks/sinch",
        # After the launch returns: on SQLite the live server shares the
        # test's connection.
        processing_delay_s=1.5,
        latency_s=0.02,
    )
    launched_campaign(campaign)
    deadline = time.monotonic() + 15
    while True:
        state = control.state(limit=100)
        done = all(m["status"] == "DELIVERED" for m in state["messages"])
        answered = not state["callback_backlog"] and all(
            c["http_status"] == 200 for c in state["callbacks"]
        )
        if len(state["messages"]) == 3 and done and answered:
            break
        assert time.monotonic() < deadline, state["counters"]
        time.sleep(0.05)
    sent = len(state["callbacks"])
    control.post("inbound", channel="SMS", identity=FORMS[1], text=REPLY)
    while len(control.state(limit=100)["callbacks"]) <= sent:
        assert time.monotonic() < deadline, "the reply never came"
        time.sleep(0.05)
    time.sleep(0.2)
    receipts.process_pending()


@pytest.fixture
def zebulon_with_history(
    media,
    write_csv,
    make_list,
    make_template,
    make_campaign,
    launched_campaign,
    sinch,
    control,
    live_server,
    monkeypatch,
    compliance_admin,
    caplog,
):
    caplog.set_level(logging.DEBUG)
    # On SQLite the live server shares this thread's connection: the events
    # are processed here, once the simulator has sent everything.
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)
    customers = make_list("Customers")
    import_people(write_csv, customers)
    pending = import_people(write_csv, make_list("Fair"), validate_only=True)
    zebulon = Contact.objects.get(first_name="Zebulon")
    # His number on Viber too, opted in: the campaign's fallback channel.
    viber = ChannelIdentity.objects.create(
        contact=zebulon, channel="VIBERBM", identity=NUMBER
    )
    record_consent(
        identity=viber,
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Viber offers, 2026"),
    )
    template = make_template("Sale", "Hi ${first_name} from ${city}: sale!")
    campaign = make_campaign(
        template,
        [customers],
        "Sale",
        checked=True,
        channel_priority_order=["SMS", "VIBERBM"],
    )
    # A WhatsApp campaign: Zebulon is an excluded example of its pre-send summary.
    make_campaign(
        template, [customers], "On WhatsApp", checked=True, channel="WHATSAPP"
    )
    # A frequency-cap exemption whose reason names him (typed by Compliance).
    cap_exemption.exempt_from_cap(
        make_campaign(template, [customers], "Recall notice"),
        compliance_admin,
        "Recall notice asked for by Zebulon Quarterfield, (415) 555-0101",
    )
    send_and_reply(campaign, launched_campaign, control, live_server)
    (media / "exports").mkdir()
    export = media / "exports" / "all.csv"
    call_command("export_contacts", str(export), stdout=StringIO())
    identity = zebulon.identities.get(channel="SMS")
    LogEntry.objects.log_actions(
        compliance_admin.pk,
        [zebulon],
        CHANGE,
        change_message=[
            {"changed": {"name": "channel identity", "object": str(identity)}}
        ],
        single_object=True,
    )
    record_audit(
        actor=compliance_admin,
        action=AuditEvent.Action.EXPORT,
        target_type="contacts",
        summary="Exported contacts: search '(415) 555-0101'",
        details={"search": FORMS[0]},
    )
    Task.objects.create(
        id="0" * 32,
        name="stray",
        func="campaigns.tasks.tick",
        args=(NUMBER,),
        kwargs={"name": "Zebulon Quarterfield"},
        result="sent",
        started=timezone.now(),
        stopped=timezone.now(),
        success=True,
    )
    # His number typed as a username at the login page, and a login reached
    # from a search for it: django-axes keeps login attempts.
    for username in (FORMS[3], compliance_admin.username):
        Client().post(
            f"/admin/login/?next=/admin/contacts/contact/%3Fq%3D{FORMS[1]}",
            {"username": username, "password": "wrong", "next": f"?q={FORMS[1]}"},
        )
    return zebulon, campaign, pending


def test_after_erasure_no_table_no_file_and_no_log_holds_the_person(
    zebulon_with_history, media, admin_client_of, compliance_admin, caplog
):
    zebulon, campaign, pending = zebulon_with_history
    # The history is real: each place the scan looks at holds him now.
    before = hits_in_tables()
    for place in (
        "InboundMessage.text",
        "WebhookEvent.body",
        "Recipient.identity",
        "Recipient.fallback_identities",
        "Campaign.presend",
        "Campaign.cap_exempt_reason",
        "LogEntry.object_repr",
        "ImportJob.sample_errors",
        "Task.args",
        "AccessAttempt.username",
        "AccessFailureLog.username",
    ):
        assert any(hit.startswith(place) for hit in before), place
    files = {hit.split(":")[0] for hit in hits_in_files(media)}
    assert {"all.csv", f"campaign-{campaign.pk}.csv"} <= files
    assert f"import-{pending.pk}-validation.csv" in files
    assert Path(pending.file_path).name in files  # the upload waiting to import

    client = admin_client_of(compliance_admin)
    response = client.post(reverse("admin:contacts_contact_erase", args=[zebulon.pk]))
    assert response.status_code == 302

    assert hits_in_tables() == []
    assert hits_in_files(media) == []
    # The others' rows stay in the rewritten files.
    assert "+14155550102" in (media / "exports" / "all.csv").read_text()
    assert "Ada" in Path(pending.file_path).read_text()
    logged = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("sinch.sim")
    )
    assert [n for n in FORMS if n in logged] == []
    # What is kept: his suppressed identity, the ledger, the figures.
    identity = ChannelIdentity.objects.get(contact=zebulon, channel="SMS")
    assert identity.identity == erased_identity("SMS", NUMBER)
    assert identity.marketing_consent == ConsentState.OPTED_OUT
    assert Recipient.objects.filter(campaign=campaign, status="DELIVERED").count() == 3
    assert InboundMessage.objects.get(contact=zebulon).identity == identity.identity


@pytest.fixture
def admin_client_of(client):
    def login(user):
        client.force_login(user)
        return client

    return login


# --- callbacks from a number erased before ------------------------------------------


@pytest.fixture
def erased(make_contact, compliance_admin):
    person = make_contact(NUMBER, consent=ConsentState.OPTED_IN, first_name="Zebulon")
    erase_contact(contact=person, actor=compliance_admin)
    return person


def _inbound(text, identity=FORMS[1]):
    from tests.campaigns.test_receipts import inbound

    return inbound(text, identity)


@pytest.mark.parametrize("text", ["STOP", "START", "Who is this? purple kangaroo"])
def test_a_message_from_an_erased_number_is_matched_by_hash_and_stored_without_it(
    erased, text
):
    contacts = Contact.objects.count()
    event = _inbound(text)
    receipts.process_pending()

    assert Contact.objects.count() == contacts  # no bare contact with the number
    assert not ChannelIdentity.objects.filter(identity__contains="4155550101").exists()
    reply = InboundMessage.objects.get()
    assert reply.contact_id == erased.pk
    assert reply.identity == erased_identity("SMS", NUMBER)
    assert reply.text == ""
    event.refresh_from_db()
    assert event.state == WebhookEvent.State.PROCESSED
    assert [n for n in [*FORMS, "kangaroo"] if n in event.body + event.error] == []
    assert erased_identity("SMS", NUMBER) in event.body
    # Suppressed for good: a START does not opt the erased number back in.
    identity = ChannelIdentity.objects.get(contact=erased)
    assert identity.marketing_consent == ConsentState.OPTED_OUT


def test_a_consent_notification_for_an_erased_number_stores_nothing_of_it(erased):
    from tests.campaigns.test_receipts import consent_note

    contacts = Contact.objects.count()
    event = consent_note("OPT_OUT", FORMS[1])
    receipts.process_pending()
    assert Contact.objects.count() == contacts
    event.refresh_from_db()
    assert event.state == WebhookEvent.State.PROCESSED
    assert [n for n in FORMS if n in event.body + event.error] == []


def test_a_stop_from_a_number_never_seen_still_creates_a_suppressed_contact(db):
    """The erased path does not swallow a stranger's STOP."""
    _inbound("STOP", "+14155550177")
    receipts.process_pending()
    identity = ChannelIdentity.objects.get(identity="+14155550177")
    assert identity.marketing_consent == ConsentState.OPTED_OUT


# --- retention of raw bodies ----------------------------------------------------------


def test_processed_webhook_bodies_are_deleted_after_the_retention(db, settings):
    settings.WEBHOOK_EVENT_RETENTION_DAYS = 30
    old, recent, young = _inbound("a"), _inbound("b"), _inbound("c")
    receipts.process_pending()
    waiting = _inbound("d")
    long_ago = timezone.now() - timedelta(days=31)
    WebhookEvent.objects.filter(pk__in=[old.pk, waiting.pk]).update(
        received_at=long_ago
    )
    WebhookEvent.objects.filter(pk=young.pk).update(
        received_at=timezone.now() - timedelta(days=29)
    )

    summary = tasks.reconcile_deliveries()

    assert "'expired webhook bodies': 1" in summary
    left = set(WebhookEvent.objects.values_list("pk", flat=True))
    assert left == {recent.pk, young.pk, waiting.pk}  # NEW is never deleted
    # The reply stays, without its link to the deleted body.
    assert InboundMessage.objects.filter(text="a", event__isnull=True).exists()


def test_the_retention_is_a_setting(db, settings):
    settings.WEBHOOK_EVENT_RETENTION_DAYS = 3
    event = _inbound("a")
    receipts.process_pending()
    WebhookEvent.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - timedelta(days=4)
    )
    tasks.reconcile_deliveries()
    assert not WebhookEvent.objects.filter(pk=event.pk).exists()


# --- logs ------------------------------------------------------------------------


def test_a_number_that_slips_into_a_log_line_is_masked_in_what_is_written():
    from config.lib.redaction import MaskNumbers

    console = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, MaskNumbers) for f in h.filters)
    )
    written = StringIO()
    old = console.setStream(written)
    try:
        logger = logging.getLogger("campaigns.anything")
        logger.warning("batch 7 refused: recipient %s invalid", FORMS[1])
        try:
            raise ValueError(f"bad identity {NUMBER}")
        except ValueError:
            logger.exception("failed on 2026-12-03 07:00:00")
    finally:
        console.setStream(old)
    text = written.getvalue()
    assert "batch 7 refused: recipient 14*******01 invalid" in text
    assert "ValueError: bad identity +1********01" in text
    assert "2026-12-03 07:00:00" in text  # dates and times are left alone
    assert [n for n in FORMS[:3] if n in text] == []
