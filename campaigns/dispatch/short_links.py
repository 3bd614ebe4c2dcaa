"""Each recipient's short links, made a batch at a time when its request is built.

A campaign whose message has tracked links (campaigns.authoring.link_tracking)
sends every recipient a `${cm_link_N}` value of their own. The codes are made
here for a whole batch in one bulk INSERT (the freeze writes nothing for
them), and a batch submitted again (after an uncertain outcome, a retry, a
replacement) sends the very codes it had: existing ones are read first.
An A/B test's batch carries one variant: its recipients get that variant's
links (a held remainder's, the winner's once it is released).
"""

from collections.abc import Iterable

from django.db import connection

from campaigns.authoring import link_tracking, variants
from campaigns.authoring.rendering import MessagePlan
from campaigns.models import Campaign, ShortLink
from campaigns.models.links import encode, new_code

# A fresh code may collide with a stored one (1 in 2**47.6 per pair): those
# rows are not written (ON CONFLICT DO NOTHING) and get a new code next round.
MAX_ROUNDS = 5


class ShortLinkError(RuntimeError):
    """Codes could not be stored (would take astronomically bad luck)."""


def campaign_links(campaign: Campaign, variant: str = "") -> list[link_tracking.Link]:
    """The campaign's tracked links (A/B `variant`: that variant's): frozen
    at launch, else as the template is."""
    if variant:
        return variants.variant_links(campaign, variant)
    if campaign.message_snapshot:
        return link_tracking.links_of(campaign.message_snapshot.get("links"))
    if not campaign.track_links:
        return []
    return list(MessagePlan.live(campaign).links)


def links_for(
    campaign: Campaign,
    recipient_ids: Iterable[int],
    *,
    is_test: bool = False,
    links: list[link_tracking.Link] | None = None,
    variant: str = "",
) -> dict[int, dict[str, str]]:
    """{recipient id: {cm_link_N: short link}} for every recipient given
    (empty when the campaign tracks no links); `variant`: the A/B variant
    the recipients were assigned (its message's links)."""
    links = campaign_links(campaign, variant) if links is None else links
    ids = list(recipient_ids)
    if not links or not ids:
        return {}
    link_ids = link_tracking.record_links(campaign, links)
    parameter_of = {link_ids[(ln.parameter, ln.target)]: ln.parameter for ln in links}
    wanted = [(r, link_id) for r in ids for link_id in parameter_of]
    # New codes for everyone, then read what is stored: a recipient who has
    # codes already (a batch sent again) keeps them (the insert skips them).
    codes: dict[tuple[int, int], int] = {}
    missing = wanted
    for _ in range(MAX_ROUNDS):
        _insert([(new_code(), link_id, r, is_test) for r, link_id in missing])
        codes = _stored(ids, list(parameter_of))
        missing = [pair for pair in wanted if pair not in codes]
        if not missing:
            break
    else:
        raise ShortLinkError(f"{len(missing)} short links not stored")
    result: dict[int, dict[str, str]] = {r: {} for r in ids}
    for (r, link_id), code in codes.items():
        result[r][parameter_of[link_id]] = link_tracking.short_url(encode(code))
    return result


def _insert(rows: list[tuple[int, int, int, bool]]) -> None:
    """(code, link id, recipient id, is_test) rows in one statement; a row
    whose code or (recipient, link) is taken is skipped."""
    table = ShortLink._meta.db_table
    columns = "code, link_id, recipient_id, is_test"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT * FROM unnest("
                "%s::bigint[], %s::bigint[], %s::bigint[], %s::boolean[]) "
                "ON CONFLICT DO NOTHING",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            cursor.executemany(
                f"INSERT OR IGNORE INTO {table} ({columns}) VALUES (%s, %s, %s, %s)",
                rows,
            )


def _stored(ids: list[int], link_ids: list[int]) -> dict[tuple[int, int], int]:
    rows = ShortLink.objects.filter(recipient_id__in=ids, link_id__in=link_ids)
    return {
        (r, link_id): code
        for code, r, link_id in rows.values_list("code", "recipient_id", "link_id")
    }
