"""The consent ledger rules, through record_consent and derive_state."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import AuditEvent, ChannelIdentity, ConsentEvent, ConsentState
from contacts.services.consent import Evidence, derive_state, record_consent

EXPLICIT_SOURCES = ["FORM", "ADMIN", "API", "INBOUND_KEYWORD"]
EVIDENCE = Evidence(wording="Yes, send me offers", ip="203.0.113.9", user_agent="UA/1")


@pytest.fixture
def identity(make_contact):
    return make_contact("+4915123456789").identities.get()


def _record(identity, kind, *, source="FORM", at, purpose="MARKETING", **kwargs):
    return record_consent(
        identity=identity,
        kind=kind,
        purpose=purpose,
        source=source,
        evidence=EVIDENCE,
        occurred_at=at,
        **kwargs,
    )


def _stored(identity, purpose="MARKETING"):
    fresh = ChannelIdentity.objects.get(pk=identity.pk)
    field = f"{purpose.lower()}_consent"
    return getattr(fresh, field), getattr(fresh, f"{field}_at")


def _derived(identity, purpose="MARKETING"):
    events = ConsentEvent.objects.filter(identity=identity)
    return derive_state(events).get(purpose, (ConsentState.UNKNOWN, None))


@pytest.fixture
def t0():
    return timezone.now() - timedelta(days=30)


def test_first_opt_in_subscribes_and_is_stored_on_the_identity(identity, t0):
    event = _record(identity, "OPT_IN", at=t0)
    assert _stored(identity) == (ConsentState.OPTED_IN, t0)
    assert (identity.marketing_consent, identity.marketing_consent_at) == (
        ConsentState.OPTED_IN,
        t0,
    )
    assert event.evidence_wording == "Yes, send me offers"
    assert event.evidence_ip == "203.0.113.9"
    assert event.channel == "SMS"
    # The other purpose is untouched.
    assert _stored(identity, "TRANSACTIONAL") == (ConsentState.UNKNOWN, None)


def test_the_newest_event_wins(identity, t0):
    _record(identity, "OPT_IN", at=t0)
    _record(identity, "OPT_OUT", at=t0 + timedelta(hours=1))
    assert _stored(identity) == (ConsentState.OPTED_OUT, t0 + timedelta(hours=1))


def test_an_older_opt_out_from_a_file_does_not_override_a_newer_opt_in(identity, t0):
    # Issue 11 (4a) changed this rule for opt-outs a person gave (see the next
    # test); a file's older opt-out still loses to a newer opt-in.
    _record(identity, "OPT_IN", at=t0 + timedelta(hours=2))
    _record(identity, "OPT_OUT", source="IMPORT", at=t0)
    assert _stored(identity) == (ConsentState.OPTED_IN, t0 + timedelta(hours=2))
    assert _stored(identity) == _derived(identity)


@pytest.mark.parametrize("source", ["FORM", "ADMIN", "INBOUND_KEYWORD", "API"])
def test_an_opt_in_received_before_a_persons_opt_out_never_overrides_it(
    identity, t0, source
):
    """A form opt-in dated 11:00 reaches us; then a STOP dated 10:00 (delayed):
    the opt-in is dated after the opt-out but was not received after it, so
    the person is opted out."""
    _record(identity, "OPT_IN", at=t0 + timedelta(hours=2))
    _record(identity, "OPT_OUT", source=source, at=t0)
    assert _stored(identity) == (ConsentState.OPTED_OUT, t0)
    assert _stored(identity) == _derived(identity)
    # An opt-in both dated and received later does re-subscribe.
    _record(identity, "OPT_IN", at=t0 + timedelta(hours=3))
    assert _stored(identity) == (ConsentState.OPTED_IN, t0 + timedelta(hours=3))


def test_a_future_dated_opt_in_counts_as_received_now(identity):
    claimed = timezone.now().replace(year=2099)
    before = timezone.now()
    event = _record(identity, "OPT_IN", source="API", at=claimed)
    assert before <= event.occurred_at <= timezone.now()
    assert "2099" in event.evidence_note
    assert _stored(identity) == (ConsentState.OPTED_IN, event.occurred_at)


def test_an_event_time_is_bounded_by_when_it_was_received(identity, t0):
    received = t0 + timedelta(minutes=5)
    event = _record(
        identity, "OPT_OUT", at=t0 + timedelta(days=1), received_at=received
    )
    assert event.occurred_at == received


@pytest.mark.parametrize("source", ["ADMIN", "IMPORT"])
def test_a_future_dated_opt_in_already_in_the_ledger_is_read_as_received(
    identity, source
):
    """Rows written before times were bounded: an opt-in dated 2099 is read at
    the time it was recorded, so a later opt-out wins, even one from a file."""
    future = timezone.now().replace(year=2099)
    ConsentEvent.objects.create(
        identity=identity,
        channel=identity.channel,
        purpose="MARKETING",
        kind="OPT_IN",
        source="API",
        actor_label="Sinch consent management",
        occurred_at=future,
    )
    ChannelIdentity.objects.filter(pk=identity.pk).update(
        marketing_consent=ConsentState.OPTED_IN, marketing_consent_at=future
    )
    _record(identity, "OPT_OUT", source=source, at=timezone.now())
    assert _stored(identity)[0] == ConsentState.OPTED_OUT
    assert _stored(identity) == _derived(identity)


def test_an_import_opt_in_never_undoes_an_opt_out(identity, t0):
    _record(identity, "OPT_OUT", source="INBOUND_KEYWORD", at=t0)
    event = _record(identity, "OPT_IN", source="IMPORT", at=t0 + timedelta(days=1))
    assert _stored(identity) == (ConsentState.OPTED_OUT, t0)
    # The ledger still keeps what was claimed.
    assert event.kind == "OPT_IN"
    assert ConsentEvent.objects.filter(identity=identity).count() == 2


@pytest.mark.parametrize("source", EXPLICIT_SOURCES)
def test_a_newer_explicit_opt_in_resubscribes(identity, t0, source):
    _record(identity, "OPT_OUT", source="INBOUND_KEYWORD", at=t0)
    _record(identity, "OPT_IN", source=source, at=t0 + timedelta(minutes=1))
    assert _stored(identity) == (ConsentState.OPTED_IN, t0 + timedelta(minutes=1))


@pytest.mark.parametrize("source", EXPLICIT_SOURCES)
def test_an_older_explicit_opt_in_does_not_resubscribe(identity, t0, source):
    _record(identity, "OPT_OUT", source="INBOUND_KEYWORD", at=t0)
    _record(identity, "OPT_IN", source=source, at=t0 - timedelta(minutes=1))
    assert _stored(identity) == (ConsentState.OPTED_OUT, t0)


@pytest.mark.parametrize("source", [*EXPLICIT_SOURCES, "IMPORT"])
def test_on_equal_times_the_opt_out_wins_in_either_order(make_contact, t0, source):
    first = make_contact().identities.get()
    _record(first, "OPT_OUT", source="ADMIN", at=t0)
    _record(first, "OPT_IN", source=source, at=t0)
    assert _stored(first)[0] == ConsentState.OPTED_OUT

    second = make_contact().identities.get()
    _record(second, "OPT_IN", source=source, at=t0)
    _record(second, "OPT_OUT", source="ADMIN", at=t0)
    assert _stored(second)[0] == ConsentState.OPTED_OUT
    assert _derived(first)[0] == _derived(second)[0] == ConsentState.OPTED_OUT


def test_purposes_are_independent(identity, t0):
    _record(identity, "OPT_IN", purpose="TRANSACTIONAL", at=t0)
    _record(identity, "OPT_OUT", purpose="MARKETING", at=t0 + timedelta(hours=1))
    assert _stored(identity, "TRANSACTIONAL") == (ConsentState.OPTED_IN, t0)
    assert _stored(identity, "MARKETING")[0] == ConsentState.OPTED_OUT


def test_a_late_older_opt_out_cannot_open_the_door_for_an_older_opt_in(identity, t0):
    """Opt-outs at 10:00 and (recorded late) 09:00; then a form opt-in of 09:30.

    The newest event is the 10:00 opt-out, so the person stays opted out.
    """
    _record(identity, "OPT_OUT", source="INBOUND_KEYWORD", at=t0 + timedelta(hours=10))
    _record(identity, "OPT_OUT", source="ADMIN", at=t0 + timedelta(hours=9))
    _record(identity, "OPT_IN", source="FORM", at=t0 + timedelta(hours=9, minutes=30))
    assert _derived(identity)[0] == ConsentState.OPTED_OUT
    assert _stored(identity)[0] == ConsentState.OPTED_OUT


def test_an_opt_out_recorded_late_still_beats_an_import_opt_in(identity, t0):
    """An import claims an opt-in of day 3; a STOP of day 2 is recorded after it.

    Imports never undo an opt-out, so the ledger says opted out; the stored
    state must say the same.
    """
    _record(identity, "OPT_IN", source="IMPORT", at=t0 + timedelta(days=3))
    _record(identity, "OPT_OUT", source="INBOUND_KEYWORD", at=t0 + timedelta(days=2))
    assert _derived(identity)[0] == ConsentState.OPTED_OUT
    assert _stored(identity) == _derived(identity)


def _random_events(rng, count, base, *, in_order):
    sources = [*EXPLICIT_SOURCES, "IMPORT", "IMPORT"]
    when = base
    for _ in range(count):
        if in_order:
            when += timedelta(minutes=rng.choice([0, 0, 1, 5]))
        else:
            # A small set of instants so that equal times happen often.
            when = base + timedelta(minutes=rng.randrange(8))
        yield (
            rng.choice(["OPT_IN", "OPT_OUT"]),
            rng.choice(sources),
            rng.choice(["MARKETING", "TRANSACTIONAL"]),
            when,
        )


def _assert_state_matches_ledger(identity, context, *, with_since=True):
    for purpose in ("MARKETING", "TRANSACTIONAL"):
        stored, derived = _stored(identity, purpose), _derived(identity, purpose)
        if not with_since:
            stored, derived = stored[0], derived[0]
        assert stored == derived, context


def test_state_equals_the_ledger_fold_for_random_events_in_time_order(make_contact, t0):
    rng = random.Random(7)
    for run in range(15):
        identity = make_contact().identities.get()
        history = []
        for kind, source, purpose, at in _random_events(rng, 10, t0, in_order=True):
            _record(identity, kind, source=source, purpose=purpose, at=at)
            history.append((kind, source, purpose, at - t0))
            _assert_state_matches_ledger(identity, (run, history))


def test_state_equals_the_ledger_fold_for_random_events_in_any_order(make_contact, t0):
    """Events reach us out of order (late webhooks, back-dated admin entries)."""
    rng = random.Random(11)
    for run in range(15):
        identity = make_contact().identities.get()
        history = []
        for kind, source, purpose, at in _random_events(rng, 10, t0, in_order=False):
            _record(identity, kind, source=source, purpose=purpose, at=at)
            history.append((kind, source, purpose, at - t0))
            # The state itself; when "since" drifts, see the two tests above.
            _assert_state_matches_ledger(identity, (run, history), with_since=False)


def test_record_consent_writes_an_audit_row(identity, compliance_admin, t0):
    before = AuditEvent.objects.count()
    event = _record(identity, "OPT_OUT", source="ADMIN", at=t0, actor=compliance_admin)
    assert AuditEvent.objects.count() == before + 1
    audit = AuditEvent.objects.latest("id")
    assert audit.action == AuditEvent.Action.CONSENT
    assert audit.actor == compliance_admin
    assert audit.actor_label == "carla"
    assert audit.target_type == "contact"
    assert audit.target_id == str(identity.contact_id)
    assert audit.details == {"consent_event": event.pk, "identity": identity.pk}
    assert "opt-out" in audit.summary
    assert "no record -> opted out" in audit.summary
    assert event.actor == compliance_admin
    assert event.actor_label == "carla"


def test_record_consent_without_a_user_names_the_system_actor(identity, t0):
    event = _record(
        identity, "OPT_OUT", source="INBOUND_KEYWORD", at=t0, actor_name="sinch webhook"
    )
    assert event.actor is None
    assert event.actor_label == "sinch webhook"
    assert AuditEvent.objects.latest("id").actor_label == "sinch webhook"
