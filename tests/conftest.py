"""Shared fixtures: role personas; factories for contacts, lists, audiences,
templates, campaigns and CSV files; the Sinch simulator and our client."""

import contextlib
import csv
import itertools
import json
import os
from collections.abc import Iterable, Mapping

import pytest
from django.contrib.auth.models import Group, User

from campaigns.authoring import presend
from campaigns.models import Campaign, MessageTemplate
from contacts import roles
from contacts.models import ChannelIdentity, ConsentState, Contact, ContactList
from contacts.services.consent import Evidence, record_consent
from sinch.client import get_sinch_client
from sinch.config import CREDENTIAL_SETTINGS
from sinch.simulator import Simulator
from tests.sdk.contract import SdkUnavailable, SdkValidator
from tests.sinch.conftest import ACCOUNT, Control, fast_knobs

_seq = itertools.count(1)
_names = itertools.count(1)  # templates and campaigns: leaves `_seq` alone


@pytest.fixture
def make_user(db):
    """A staff user in the given role (None: staff without a role)."""

    def make(username: str, role: str | None = None, **extra) -> User:
        user = User.objects.create_user(
            username=username, password="pw", is_staff=True, **extra
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def viewer(make_user):
    return make_user("vera", roles.VIEWER)


@pytest.fixture
def marketer(make_user):
    return make_user("mark", roles.MARKETING)


@pytest.fixture
def sender(make_user):
    return make_user("sandra", roles.SENDER)


@pytest.fixture
def compliance_admin(make_user):
    return make_user("carla", roles.COMPLIANCE)


@pytest.fixture
def outsider(db):
    return User.objects.create_user(username="otto", password="pw", is_staff=False)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(username="root", password="pw")


@pytest.fixture
def make_contact(db):
    """A contact with one identity; `consent` is recorded through the ledger."""

    def make(
        phone: str | None = None,
        *,
        channel: str = "SMS",
        consent: str | None = None,
        purpose: str = "MARKETING",
        lists=(),
        **fields,
    ) -> Contact:
        n = next(_seq)
        phone = phone or f"+1415555{n:04d}"
        fields.setdefault("first_name", f"Person{n}")
        contact = Contact.objects.create(**fields)
        identity = ChannelIdentity.objects.create(
            contact=contact, channel=channel, identity=phone
        )
        if consent in (ConsentState.OPTED_IN, ConsentState.OPTED_OUT):
            record_consent(
                identity=identity,
                kind="OPT_IN" if consent == ConsentState.OPTED_IN else "OPT_OUT",
                purpose=purpose,
                source="FORM",
                evidence=Evidence(wording="Test fixture consent"),
            )
        for lst in lists:
            lst.memberships.create(contact=contact, source="ADMIN")
        return contact

    return make


@pytest.fixture
def make_list(db):
    """A contact list; `seed=True`: marked as a seed list (test sends go there)."""

    def make(name: str | None = None, *, seed: bool = False) -> ContactList:
        return ContactList.objects.create(
            name=name or f"List {next(_seq)}", is_seed_list=seed
        )

    return make


@pytest.fixture
def make_audience(make_contact, make_list):
    """A list of opted-in people, then of opted-out ones; returns the list.

    `opted_in` is a count (the n-th person, from 0, has the number
    `phone.format(n)` when `phone` is given, else one of make_contact's),
    numbers, or a mapping of number to first name; `opted_out` is numbers or
    such a mapping. `fields` go to every person (e.g. attributes).
    """

    def people(spec, phone):
        if isinstance(spec, int):
            return [(phone.format(n) if phone else None, None) for n in range(spec)]
        if isinstance(spec, Mapping):
            return list(spec.items())
        return [(number, None) for number in spec]

    def make(
        name: str | None = None,
        opted_in: int | Iterable[str] | Mapping[str, str] = 0,
        *,
        phone: str | None = None,
        opted_out: Iterable[str] | Mapping[str, str] = (),
        **fields,
    ) -> ContactList:
        audience = make_list(name)
        for consent, spec in (
            (ConsentState.OPTED_IN, opted_in),
            (ConsentState.OPTED_OUT, opted_out),
        ):
            for number, first_name in people(spec, phone):
                named = {"first_name": first_name} if first_name else {}
                make_contact(
                    number, consent=consent, lists=[audience], **named, **fields
                )
        return audience

    return make


@pytest.fixture
def make_template(db):
    """A message template. `text` defaults to "Hi ${first_name}!" for the kinds
    with a text (text, choice) and to "" for the others; `parameters` sets
    fields of its placeholders' parameters, e.g. {"offer": {"source": "CAMPAIGN"}}.
    """

    def make(
        name: str | None = None,
        text: str | None = None,
        kind: str = MessageTemplate.Kind.TEXT,
        *,
        parameters: Mapping[str, Mapping] | None = None,
        **fields,
    ) -> MessageTemplate:
        if text is None:
            text = (
                "Hi ${first_name}!"
                if "text" in MessageTemplate.KIND_FIELDS[kind]
                else ""
            )
        template = MessageTemplate.objects.create(
            name=name or f"Template {next(_names)}", text=text, kind=kind, **fields
        )
        for placeholder, values in (parameters or {}).items():
            updated = template.parameters.filter(name=placeholder).update(**values)
            assert updated == 1, f"the template has no placeholder {placeholder!r}"
        return template

    return make


@pytest.fixture
def make_whatsapp_template(make_template):
    """A WhatsApp channel template (the only kind WhatsApp delivers outside
    its 24-hour window) whose body's first parameter is ${first_name}."""

    def make(name: str | None = None, **fields) -> MessageTemplate:
        values = {
            "template_id": "offer",
            "template_language": "en",
            "template_parameters": {"body[1]text": "${first_name}"},
            **fields,
        }
        return make_template(name, kind=MessageTemplate.Kind.CHANNEL_TEMPLATE, **values)

    return make


@pytest.fixture
def make_campaign(make_template):
    """A campaign (a draft unless `status` says otherwise) of `template`, a new
    one when None, to `lists`; `checked`: its pre-send check has run."""

    def make(
        template: MessageTemplate | None = None,
        lists: Iterable[ContactList] = (),
        name: str | None = None,
        *,
        checked: bool = False,
        **fields,
    ) -> Campaign:
        campaign = Campaign.objects.create(
            name=name or f"Campaign {next(_names)}",
            template=template or make_template(),
            **fields,
        )
        if lists := list(lists):
            campaign.lists.add(*lists)
        if checked:
            presend.run_presend_check(campaign)
            campaign.refresh_from_db()
        return campaign

    return make


@pytest.fixture
def write_csv(tmp_path):
    """Write rows to a CSV file and return its path; `bom`/`delimiter` as asked."""

    def write(rows, *, name="contacts.csv", delimiter=",", bom=False) -> str:
        path = tmp_path / name
        with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
            csv.writer(f, delimiter=delimiter).writerows(rows)
        return str(path)

    return write


# --- Sinch: a real simulator on an ephemeral port, our own client aimed at it ---


@pytest.fixture
def sim():
    simulator = Simulator(account=ACCOUNT, knobs=fast_knobs())
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def control(sim):
    return Control(sim)


@pytest.fixture
def sinch(settings, sim):
    """The product's own client (settings, no credentials) aimed at `sim`."""
    for name in CREDENTIAL_SETTINGS:
        setattr(settings, name, "")
    settings.SINCH_BATCH_API_URL = sim.url
    settings.SINCH_AUTH_URL = sim.url
    get_sinch_client.cache_clear()
    yield sim
    get_sinch_client.cache_clear()


# --- the official Sinch SDK, judging what we send (tests/sdk/contract.py) ---


@pytest.fixture(scope="session")
def sinch_sdk():
    """One validator process for the session: the SDK's request models, strict."""
    try:
        validator = SdkValidator()
    except SdkUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield validator
    validator.close()


@pytest.fixture
def sent_batches(monkeypatch):
    """The Batch API bodies our client sends (POST .../messages), as sent:
    a list filled as the test goes; the calls still go to their target."""
    from sinch.transport import Transport

    bodies: list[dict] = []
    real = Transport.request

    def request(self, method, url, **kwargs):
        if method == "POST" and url.endswith("/messages"):
            bodies.append(json.loads(kwargs["body"]))
        return real(self, method, url, **kwargs)

    monkeypatch.setattr(Transport, "request", request)
    return bodies


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """SQLite's test database is a file in /dev/shm (tests/settings.py).
    Django deletes the file; its WAL and shared-memory files stay when a
    thread's connection outlived the run: they go too (memory, not disk)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    name = database.get("TEST", {}).get("NAME")
    if database["ENGINE"] != "django.db.backends.sqlite3" or not name:
        return
    for leftover in (f"{name}-wal", f"{name}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
