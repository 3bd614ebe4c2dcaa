"""Turns a valid segment definition into one query over contacts.

Each condition is a WHERE term on the contact row or an EXISTS subquery on
an indexed table (identities, memberships, recipients, replies), so the
database counts a million contacts without Python touching a row:

- country and consent from the contact row's own facts (its live
  identities' countries, by contacts.countries' prefix rule, and
  consent states: contacts.segment_facts), a substring test on the row the
  count reads anyway; retired identities never count;
- list memberships by (list, contact); campaign engagement and "not
  messaged in N days" by the recipients' recipient_by_campaign index
  (campaign, batch), their status read from the rows (no index holds it:
  campaigns.models.sending.Recipient), and the replies' indexes;
  clicks by the clicks' (campaign, is_test, is_preview, recipient) index,
  then those recipients by primary key ("did not click" is every contact
  without such a click, whether or not the campaign reached them);
- attributes are JSON: their key lookups are evaluated row by row (neither
  SQLite nor a plain PostgreSQL index serves arbitrary keys), which is why
  they are cheap only combined with an indexed condition or on fewer rows.

Erased contacts never match.
"""

import datetime
import re
from collections.abc import Callable

from django.db import connection, transaction
from django.db.models import (
    Exists,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, StrIndex, Substr
from django.utils import timezone

from campaigns.compliance.frequency import COUNTED
from campaigns.models import Batch, Click, InboundMessage, Recipient
from contacts import segment_facts
from contacts.models import Contact, ListMembership


class InvalidDefinitionError(ValueError):
    """A definition that campaigns.segments.definition.validate refuses."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def matching_contacts(definition) -> QuerySet:
    """The contacts (never erased) the definition matches, as one query.

    Raises InvalidDefinitionError with validate()'s messages when invalid.
    """
    from campaigns.segments.definition import validate

    errors = validate(definition)
    if errors:
        raise InvalidDefinitionError(errors)
    return Contact.objects.filter(erased_at=None).filter(definition_q(definition))


def count(definition) -> int:
    """How many contacts the definition matches now."""
    matched = matching_contacts(definition)
    if not _merges_lists(definition):
        return matched.count()
    # PostgreSQL hashes a million contact ids and each list's members, where
    # reading them side by side in id order (the (list, contact) index gives
    # members so) costs a third less: hash joins off for this count only.
    # Without parallel workers too: a merge join's worker reads the whole of
    # each list beside its share of the contacts, so two workers took as
    # long as one process (about 260 ms either way at 1,000,000 on a quiet
    # machine) for three times the CPU, and longer when the cores are busy.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        found = matched.count()
        # Now, not at the commit: the caller may be inside a transaction.
        cursor.execute("RESET enable_hashjoin")
        cursor.execute("RESET max_parallel_workers_per_gather")
        return found


def _merges_lists(definition: dict) -> bool:
    """On PostgreSQL, a definition whose sets of ids are lists only (the
    recipients and replies of an engagement are not in contact order)."""
    fields = {c["field"] for g in definition["groups"] for c in g["conditions"]}
    return (
        connection.vendor == "postgresql"
        and "list" in fields
        and not fields & {"engagement", "last_messaged"}
    )


def definition_q(definition: dict) -> Q:
    """The Q of a validated definition (no validation here)."""
    indexed = _facts_lead(definition)
    groups = [
        _combine(
            [condition_q(c, facts_indexed=indexed) for c in g["conditions"]],
            g.get("match", "all"),
        )
        for g in definition["groups"]
    ]
    return _combine(groups, definition.get("match", "all"))


FACTS_FIELDS = ("country", "consent")
# Conditions that only take contacts away by their id (an anti-join).
_ONLY_EXCLUDE = {
    ("list", "not_in"),
    ("engagement", "not_received"),
    ("engagement", "not_clicked"),
    ("last_messaged", "not_in_days"),
}


def _facts_lead(definition: dict) -> bool:
    """Whether the facts conditions are read from the facts index: on
    SQLite (contacts.segment_indexes; PostgreSQL's planner reads all of that
    index rather than seek the texts found), when the others only exclude
    ids. Beside a condition on the row (language, attributes, ...) or a set
    of ids to start from (a list, an engagement), they are tested on the rows
    those give: the database cannot tell how many contacts the facts texts
    found in the index hold, and fetching most of the rows one by one from
    an index is slower than reading them."""
    if connection.vendor != "sqlite":
        return False
    conditions = [c for g in definition["groups"] for c in g["conditions"]]
    return any(c["field"] in FACTS_FIELDS for c in conditions) and all(
        c["field"] in FACTS_FIELDS or (c["field"], c["op"]) in _ONLY_EXCLUDE
        for c in conditions
    )


def _combine(parts: list[Q], match: str) -> Q:
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if match == "all" else combined | part
    return combined


def condition_q(condition: dict, *, facts_indexed: bool = False) -> Q:
    if condition["field"] in FACTS_FIELDS:
        return BUILDERS[condition["field"]](condition, indexed=facts_indexed)
    return BUILDERS.get(condition["field"], _text_q)(condition)


def _text_q(condition: dict) -> Q:
    field, op, value = condition["field"], condition["op"], condition.get("value")
    return _compare(field, op, value)


def _compare(name: str, op: str, value) -> Q:
    """A text comparison of `name` (a field, or an alias annotated on it)."""
    if op == "equals":
        return Q(**{name: str(value)})
    if op == "not_equals":
        return ~Q(**{name: str(value)})
    if op == "in":
        return Q(**{f"{name}__in": [str(v) for v in value]})
    if op == "contains":
        return Q(**{f"{name}__icontains": str(value)})
    if op == "is_empty":
        return Q(**{name: ""})
    if op == "is_not_empty":
        return ~Q(**{name: ""})
    raise ValueError(f"unknown operator {op}")


def _country_q(condition: dict, *, indexed: bool = False) -> Q:
    """From the contact's own facts (contacts.segment_facts): the countries
    of its live phone numbers, by the prefix rule of _prefixes_q."""
    op, value = condition["op"], condition.get("value")
    if op in ("is_empty", "is_not_empty"):
        # "+" numbers only: an erased identity is a hash, not a number.
        held = _facts_hold([segment_facts.NUMBER_TOKEN], indexed)
        return ~held if op == "is_empty" else held
    countries = value if op == "in" else [value]
    held = _facts_hold(
        [segment_facts.country_token(str(c)) for c in countries], indexed
    )
    return ~held if op == "not_equals" else held


def _facts_hold(tokens: list[str], indexed: bool) -> Q:
    """Contacts whose segment facts hold any of `tokens`.

    Not `indexed`: a substring test on the row the query reads anyway.
    `indexed`: a million contacts share a few distinct facts texts (one per
    mix of countries and consent states), so the texts that hold a token
    are found first, by skipping through the facts index from one distinct
    text to the next (a recursive query: one index probe per distinct text,
    not per contact), and the contacts with one of them are then counted
    from that index alone. One statement either way: the count and the
    freeze each see one snapshot.
    """
    if not indexed:
        held = Q(pk__in=[])
        for token in tokens:
            # instr/strpos: SQLite's LIKE (case-insensitive, with ESCAPE) is slower.
            found = StrIndex("segment_facts", Value(token))
            held |= Q(_Lookup(found, "gt", 0))
        return held
    table = Contact._meta.db_table
    find = "STRPOS" if connection.vendor == "postgresql" else "INSTR"
    holds = " OR ".join([f"{find}(v, %s) > 0"] * len(tokens))
    texts = RawSQL(
        "WITH RECURSIVE texts(v) AS ("
        f"SELECT MIN(segment_facts) FROM {table} UNION ALL "
        f"SELECT (SELECT MIN(segment_facts) FROM {table} WHERE segment_facts > v) "
        f"FROM texts WHERE v IS NOT NULL) SELECT v FROM texts WHERE {holds}",
        tuple(tokens),
        output_field=TextField(),
    )
    return Q(segment_facts__in=texts)


def _created_q(condition: dict) -> Q:
    op, value = condition["op"], condition["value"]
    now = timezone.now()
    if op in ("within_days", "older_than_days"):
        cutoff = now - datetime.timedelta(days=int(value))
        return (
            Q(created_at__gte=cutoff)
            if op == "within_days"
            else Q(created_at__lt=cutoff)
        )
    start = _start_of(datetime.date.fromisoformat(value))
    end = _start_of(datetime.date.fromisoformat(value) + datetime.timedelta(days=1))
    if op == "before":
        return Q(created_at__lt=start)
    if op == "after":
        return Q(created_at__gte=end)
    return Q(created_at__gte=start, created_at__lt=end)


def _start_of(day: datetime.date) -> datetime.datetime:
    """Midnight of `day` in the site's time zone (TIME_ZONE)."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


class AttributeNumber(Func):
    """An attribute's value as a number, NULL when it is not one.

    SQLite's CAST turns "abc" into 0 and PostgreSQL's raises: both are
    guarded so that only numeric texts (and JSON numbers) compare.
    """

    output_field = FloatField()
    # SQLite reads the value once, in a one-row subquery, and tests that:
    # written three times, its JSON would be parsed up to six times a row.
    SQLITE = (
        "(SELECT CASE WHEN TRIM(v) GLOB '*[0-9]*' AND TRIM(v) "
        "NOT GLOB '*[^0-9.eE+-]*' THEN CAST(TRIM(v) AS REAL) END "
        "FROM (SELECT {x} AS v))"
    )
    POSTGRESQL = (
        "(CASE WHEN {x} ~ '^\\s*[-+]?[0-9]+(\\.[0-9]+)?\\s*$' "
        "THEN CAST(TRIM({x}) AS double precision) END)"
    )

    def as_sql(self, compiler, connection, **extra):
        inner, params = compiler.compile(self.source_expressions[0])
        template = self.POSTGRESQL if connection.vendor == "postgresql" else self.SQLITE
        uses = template.count("{x}")
        return template.format(x=inner), tuple(params) * uses


def _attribute_q(condition: dict) -> Q:
    """Attribute `key` compared as text (JSON numbers as their text), as a
    guarded number, or as a YYYY-MM-DD date; missing counts as empty."""
    op, value, key = condition["op"], condition.get("value"), condition["key"]
    text = Coalesce(
        Cast(KeyTextTransform(key.strip(), "attributes"), TextField()),
        Value(""),
        output_field=TextField(),
    )
    if op in ("gt", "gte", "lt", "lte"):
        number = AttributeNumber(KeyTextTransform(key.strip(), "attributes"))
        lookup = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}[op]
        return Q(_Lookup(number, lookup, float(value)))
    if op in ("before", "after"):
        day = Substr(text, 1, 10, output_field=TextField())
        # "YYYY-MM-DD..." only: other texts never compare as dates.
        shaped = Q(_Lookup(Substr(text, 5, 1, output_field=TextField()), "exact", "-"))
        shaped &= Q(_Lookup(Substr(text, 8, 1, output_field=TextField()), "exact", "-"))
        lookup = "lt" if op == "before" else "gt"
        return shaped & Q(_Lookup(day, lookup, value))
    if op == "equals":
        return _stored_as_text([value]) & Q(_Lookup(text, "exact", str(value)))
    if op == "not_equals":
        return ~Q(_Lookup(text, "exact", str(value)))
    if op == "in":
        values = [str(v) for v in value]
        return _stored_as_text(values) & Q(_Lookup(text, "in", values))
    if op == "contains":
        return Q(_Lookup(text, "icontains", str(value)))
    empty = Q(_Lookup(text, "exact", ""))
    return empty if op == "is_empty" else ~empty


# Values that JSON writes as they are (json.dumps escapes non-ASCII, quotes
# and backslashes), with a letter: numbers are left to the exact test, as
# SQLite may spell a JSON number's text otherwise than the file did.
_VERBATIM = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 _.,:;/@+-]+")


def _stored_as_text(values: list) -> Q:
    """On SQLite, a cheap necessary condition for an attribute to equal one
    of `values`: the contact's JSON text holds one of them. SQLite parses
    the JSON of every row it tests; this substring test first spares the
    parse for the rows that cannot match (a million rows: the difference
    between a live count and a slow one). Nothing elsewhere, or when a
    value may be written otherwise in JSON."""
    if connection.vendor != "sqlite" or not values:
        return Q()
    if not all(isinstance(v, str) and _VERBATIM.fullmatch(v) for v in values):
        return Q()
    raw = Cast("attributes", TextField())
    found = Q()
    for value in values:
        found |= Q(_Lookup(StrIndex(raw, Value(value)), "gt", 0))
    return found


def _Lookup(expression, lookup: str, value):
    """A boolean expression `expression <lookup> value`, usable in Q()."""
    lookup_class = expression.output_field.get_lookup(lookup)
    return lookup_class(expression, value)


def _having(rows: QuerySet, *, negate: bool = False) -> Q:
    """Contacts that have (or, `negate`, have not) a row of `rows`, a
    queryset with a `contact` foreign key.

    Positive: ``id IN (SELECT contact_id ...)``: SQLite materialises the ids
    once (reading them by the subquery's index) and PostgreSQL semi-joins.
    Negative: SQLite's NOT IN probes the same materialised ids; PostgreSQL
    gets NOT EXISTS, an anti-join (its NOT IN would re-run the subquery for
    each row once the ids outgrow work_mem).
    """
    if negate and connection.vendor == "postgresql":
        found = Q(Exists(rows.filter(contact=OuterRef("pk"))))
        return ~found if negate else found
    held = Q(pk__in=rows.values("contact_id"))
    return ~held if negate else held


def _list_q(condition: dict) -> Q:
    ids = [int(i) for i in condition["value"]]
    members = ListMembership.objects.filter(contact_list__in=ids)
    return _having(members, negate=condition["op"] == "not_in")


def _consent_q(condition: dict, *, indexed: bool = False) -> Q:
    """From the contact's own facts: the consent states of its live
    identities, per channel and purpose (contacts.segment_facts)."""
    token = segment_facts.consent_token(
        condition["channel"], condition["purpose"], condition["value"]
    )
    held = _facts_hold([token], indexed)
    return ~held if condition["op"] == "is_not" else held


def _engagement_q(condition: dict) -> Q:
    op, campaign = condition["op"], int(condition["campaign"])
    if op == "replied":
        return _having(InboundMessage.objects.filter(campaign=campaign))
    if op in ("clicked", "not_clicked"):
        # The campaign's clickers by the click_campaign_people index (ids
        # only), then their recipient rows by primary key.
        clickers = Click.objects.filter(
            campaign_id=campaign, is_test=False, is_preview=False
        ).values("recipient_id")
        clicked = Recipient.objects.filter(pk__in=clickers)
        return _having(clicked, negate=op == "not_clicked")
    statuses = {
        "received": COUNTED,
        "not_received": COUNTED,
        "delivered": (Recipient.Status.DELIVERED, Recipient.Status.READ),
        "failed": (Recipient.Status.FAILED,),
    }[op]
    sent = Recipient.objects.filter(
        campaign=campaign,
        is_test=False,
        status__in=statuses,
        batch__submitted_at__isnull=False,
    )
    return _having(sent, negate=op == "not_received")


def _last_messaged_q(condition: dict) -> Q:
    cutoff = timezone.now() - datetime.timedelta(days=int(condition["value"]))
    # The batches first (few rows), then their recipients' contacts. On
    # SQLite, through the recipient_by_campaign index (campaign, batch), led
    # by the batches' campaigns (a recipient's batch is one of its
    # campaign's: this only says how to find them); PostgreSQL hashes them
    # from one parallel scan, which that lead slows down.
    batches = (
        Batch.objects.filter(submitted_at__isnull=False, is_test=False)
        .annotate(sent_at=Coalesce("send_after", "submitted_at"))
        .filter(sent_at__gte=cutoff)
    )
    recent = Recipient.objects.filter(
        batch__in=batches.values("pk"), is_test=False, status__in=COUNTED
    )
    if connection.vendor == "sqlite":
        recent = recent.filter(campaign__in=batches.values("campaign_id"))
    return _having(recent, negate=condition["op"] == "not_in_days")


BUILDERS: dict[str, Callable[..., Q]] = {
    "country": _country_q,
    "created_at": _created_q,
    "attribute": _attribute_q,
    "list": _list_q,
    "consent": _consent_q,
    "engagement": _engagement_q,
    "last_messaged": _last_messaged_q,
}
