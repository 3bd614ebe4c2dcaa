"""Demo data for a first look at the product: two lists, mixed consent, and a
seed list of three opted-in colleagues for trying a test send."""

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from contacts.models import ChannelIdentity, Contact, ContactList, ListMembership
from contacts.phones import InvalidIdentity, normalise_phone
from contacts.services.consent import Evidence, record_consent

FIRST = [
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Emma",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Silva",
    "Müller",
    "Smith",
    "Nguyen",
    "García",
    "Kowalski",
    "Okafor",
    "Rossi",
    "Tanaka",
    "Dubois",
    "Larsen",
    "Haddad",
    "Novak",
    "Kim",
    "Brown",
]
TIERS = ["bronze", "silver", "gold"]
NUMBERS = [
    ("+1415555{:04d}", "en", "America/Los_Angeles"),
    ("+4915123{:06d}", "de", "Europe/Berlin"),
    ("+447911123{:03d}", "en", "Europe/London"),
    ("+5511987{:06d}", "pt-BR", "America/Sao_Paulo"),
]


def load_demo_data(count: int = 300) -> int:
    """Create demo contacts once; returns how many were created (0 if present)."""
    if ContactList.objects.filter(name="Newsletter (demo)").exists():
        return 0
    rng = random.Random(2026)
    now = timezone.now()
    with transaction.atomic():
        newsletter = ContactList.objects.create(
            name="Newsletter (demo)", description="Demo: signed up on the website."
        )
        vip = ContactList.objects.create(
            name="VIP customers (demo)", description="Demo: loyalty programme."
        )
        created = 0
        for n in range(count):
            pattern, language, tz = NUMBERS[n % len(NUMBERS)]
            try:
                phone = normalise_phone(pattern.format(100 + n))
            except InvalidIdentity:
                continue
            contact = Contact.objects.create(
                first_name=rng.choice(FIRST),
                last_name=rng.choice(LAST),
                language=language,
                time_zone=tz,
                external_id=f"demo-{n:04d}",
                attributes={
                    "loyalty_tier": rng.choice(TIERS),
                    "city": rng.choice(["Lisbon", "Berlin", "Austin", ""]),
                },
            )
            identity = ChannelIdentity.objects.create(
                contact=contact, channel="SMS", identity=phone
            )
            ListMembership.objects.create(
                contact_list=newsletter, contact=contact, source="DEMO"
            )
            if n % 3 == 0:
                ListMembership.objects.create(
                    contact_list=vip, contact=contact, source="DEMO"
                )
            _demo_consent(identity, rng, now - timedelta(days=rng.randint(1, 400)))
            created += 1
    return created


SEED_LIST = "Seed: demo team"
SEED_PEOPLE = [
    ("+14155559901", "Sam", "Tester"),
    ("+14155559902", "Alex", "Tester"),
    ("+14155559903", "Kim", "Tester"),
]


def ensure_demo_seed_list() -> bool:
    """The demo seed list (marked as one), once; True when it was created.

    Run on every bootstrap, so databases loaded before it existed get it too.
    """
    if ContactList.objects.filter(name=SEED_LIST).exists():
        return False
    now = timezone.now()
    with transaction.atomic():
        seed = ContactList.objects.create(
            name=SEED_LIST,
            description="Demo: colleagues' phones that receive test sends.",
            is_seed_list=True,
            seed_marked_at=now,
        )
        for n, (phone, first, last) in enumerate(SEED_PEOPLE):
            contact = Contact.objects.create(
                first_name=first,
                last_name=last,
                language="en",
                time_zone="America/Los_Angeles",
                external_id=f"demo-seed-{n}",
                attributes={"loyalty_tier": "gold", "city": "Austin"},
            )
            identity = ChannelIdentity.objects.create(
                contact=contact, channel="SMS", identity=phone
            )
            ListMembership.objects.create(
                contact_list=seed, contact=contact, source="DEMO"
            )
            _opt_in(identity, now - timedelta(days=30))
    return True


def _opt_in(identity, when) -> None:
    record_consent(
        identity=identity,
        kind="OPT_IN",
        purpose="MARKETING",
        source="FORM",
        evidence=Evidence(
            wording="Yes, send me offers by SMS. Reply STOP to opt out.",
            note="Demo sign-up form",
        ),
        actor_name="demo data",
        occurred_at=when,
    )


def _demo_consent(identity, rng, when) -> None:
    roll = rng.random()
    if roll < 0.1:
        return  # no consent on record
    _opt_in(identity, when)
    if roll > 0.85:
        record_consent(
            identity=identity,
            kind="OPT_OUT",
            purpose="MARKETING",
            source="INBOUND_KEYWORD",
            evidence=Evidence(wording="STOP", note="Demo inbound keyword"),
            actor_name="demo data",
            occurred_at=when + timedelta(days=3),
        )
