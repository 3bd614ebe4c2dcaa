"""ConsentEvent and AuditEvent rows are append-only: no update, no delete."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from contacts.models import AppendOnlyError, AuditEvent, ConsentEvent
from contacts.services.audit import record_audit
from contacts.services.consent import Evidence, record_consent


@pytest.fixture
def consent_event(make_contact):
    identity = make_contact("+4915123456789").identities.get()
    return record_consent(
        identity=identity,
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(wording="Sign-up form v3", ip="198.51.100.7"),
        occurred_at=timezone.now() - timedelta(days=1),
    )


@pytest.fixture
def audit_event(db):
    return record_audit(
        actor=None,
        action=AuditEvent.Action.EXPORT,
        target_type="contacts",
        summary="Exported contacts: all",
        details={"rows": 3},
    )


@pytest.fixture(params=["consent", "audit"])
def ledger_row(request):
    return request.getfixturevalue(f"{request.param}_event")


def _snapshot(model):
    return sorted(
        (
            tuple(sorted(model_to_dict(row).items(), key=str))
            for row in model.objects.order_by("pk")
        ),
        key=str,
    )


def _change(row):
    if isinstance(row, ConsentEvent):
        return {"kind": "OPT_OUT", "evidence_wording": "rewritten"}
    return {"summary": "rewritten", "actor_label": "someone else"}


@pytest.fixture
def unchanged(ledger_row):
    """Asserts after the test that no ledger or audit row changed."""
    model = type(ledger_row)
    before = _snapshot(model), model.objects.count()
    yield
    assert (_snapshot(model), model.objects.count()) == before


@pytest.mark.usefixtures("unchanged")
def test_saving_a_changed_row_is_refused(ledger_row):
    for name, value in _change(ledger_row).items():
        setattr(ledger_row, name, value)
    with pytest.raises(AppendOnlyError):
        ledger_row.save()
    with pytest.raises(AppendOnlyError):
        ledger_row.save(update_fields=list(_change(ledger_row)))


@pytest.mark.usefixtures("unchanged")
def test_saving_a_row_loaded_from_the_database_is_refused(ledger_row):
    loaded = type(ledger_row).objects.get(pk=ledger_row.pk)
    with pytest.raises(AppendOnlyError):
        loaded.save()


@pytest.mark.usefixtures("unchanged")
def test_deleting_a_row_is_refused(ledger_row):
    with pytest.raises(AppendOnlyError):
        ledger_row.delete()


@pytest.mark.usefixtures("unchanged")
def test_queryset_update_is_refused(ledger_row):
    model = type(ledger_row)
    with pytest.raises(AppendOnlyError):
        model.objects.filter(pk=ledger_row.pk).update(**_change(ledger_row))
    with pytest.raises(AppendOnlyError):
        model.objects.update(**_change(ledger_row))
    with pytest.raises(AppendOnlyError):
        model.objects.all().select_for_update().update(**_change(ledger_row))


@pytest.mark.usefixtures("unchanged")
def test_queryset_delete_is_refused(ledger_row):
    model = type(ledger_row)
    with pytest.raises(AppendOnlyError):
        model.objects.filter(pk=ledger_row.pk).delete()
    with pytest.raises(AppendOnlyError):
        model.objects.all().delete()


@pytest.mark.usefixtures("unchanged")
def test_bulk_update_is_refused(ledger_row):
    for name, value in _change(ledger_row).items():
        setattr(ledger_row, name, value)
    # bulk_update runs in atomic(savepoint=False); the savepoint here keeps the
    # test transaction usable after the refusal.
    with pytest.raises(AppendOnlyError), transaction.atomic():
        type(ledger_row).objects.bulk_update([ledger_row], list(_change(ledger_row)))


def test_a_new_instance_carrying_an_existing_pk_cannot_overwrite_the_row(ledger_row):
    """Model(pk=<existing>, ...).save() is an UPDATE in Django: still a rewrite."""
    model = type(ledger_row)
    before = _snapshot(model)
    values = {
        f.attname: getattr(ledger_row, f.attname) for f in model._meta.concrete_fields
    }
    values.update(_change(ledger_row))
    forged = model(**values)
    assert forged.pk == ledger_row.pk
    refused = False
    try:
        with transaction.atomic():
            forged.save()
    except AppendOnlyError:
        refused = True
    assert _snapshot(model) == before, "the stored row was rewritten"
    assert refused


def test_new_rows_can_still_be_appended(consent_event, audit_event):
    record_audit(
        actor=None,
        action=AuditEvent.Action.CONSENT,
        target_type="contact",
        summary="another row",
    )
    assert AuditEvent.objects.count() >= 3
    assert ConsentEvent.objects.filter(pk=consent_event.pk).exists()
