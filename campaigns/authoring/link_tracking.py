"""Tracked links: the message's URLs replaced by per-recipient short links.

With "track links" on, every http(s) URL in the text a recipient reads
(texts, titles, descriptions, a URL choice's link, an SMS override) becomes
`${cm_link_N}` (campaigns.placeholders.LINK_PARAMETER_PREFIX; one N per
distinct URL, in order of first appearance). Each recipient's value is their
own short link, SHORT_LINK_BASE_URL/l/<8 base62 characters>, made when their
batch's request is built (campaigns.dispatch.short_links); the target, with
the campaign's UTM parameters, is frozen in the message snapshot at launch.

Left as written: media URLs (Sinch fetches them), URLs holding a placeholder
(their target differs per recipient), and links already on the short-link
domain. Every short link has the same length, so the pre-send check and the
estimates count the real text with `sample_short_url()`.
"""

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils.encoding import iri_to_uri

from campaigns.models.links import CODE_LENGTH, TrackedLink
from campaigns.placeholders import LINK_PARAMETER_PREFIX

# http(s) URLs in running text; trailing punctuation is trimmed afterwards.
URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"»"
# Keys whose text is read by the recipient (URLs inside are replaced)...
TEXT_KEYS = frozenset({"text", "title", "description"})
# ... and keys that are a link as a whole, under a url_message.
LINK_KEYS = frozenset({"url", "fallback_url"})
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")
SAMPLE_CODE = "aB3dE5gH"
assert len(SAMPLE_CODE) == CODE_LENGTH


@dataclass(frozen=True)
class Link:
    parameter: str  # cm_link_N
    url: str  # as written in the message
    target: str  # where the short links go (UTM added)

    def as_json(self) -> dict[str, str]:
        return asdict(self)


def base_url() -> str:
    return settings.SHORT_LINK_BASE_URL.rstrip("/")


def short_url(code: str) -> str:
    """The short link of a code, as recipients get it."""
    return f"{base_url()}/l/{code}"


def sample_short_url() -> str:
    """A short link of the real length (every code has CODE_LENGTH characters)."""
    return short_url(SAMPLE_CODE)


def is_link_parameter(name: str) -> bool:
    return name.startswith(LINK_PARAMETER_PREFIX)


def with_utm(url: str, utm: dict[str, str]) -> str:
    """`url` with the UTM parameters it does not have yet appended to its
    query string (its own parameters, and their order, are kept; the
    fragment stays last)."""
    wanted = [(k, v) for k, v in utm.items() if k in UTM_KEYS and v]
    if not wanted:
        return url
    parts = urlsplit(url)
    present = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = urlencode([(k, v) for k, v in wanted if k not in present])
    if not extra:
        return url
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def campaign_utm(campaign) -> dict[str, str]:
    return {key: getattr(campaign, key, "") or "" for key in UTM_KEYS}


def rewrite(
    message: dict[str, Any], utm: dict[str, str]
) -> tuple[dict[str, Any], list[Link]]:
    """(the message with its URLs replaced by link placeholders, the links)."""
    links: dict[str, Link] = {}

    def placeholder(url: str) -> str:
        link = links.get(url)
        if link is None:
            name = f"{LINK_PARAMETER_PREFIX}{len(links) + 1}"
            target = iri_to_uri(with_utm(url, utm))
            link = links[url] = Link(name, url, target)
        return "${" + link.parameter + "}"

    def in_text(text: str) -> str:
        def one(match: re.Match) -> str:
            url, tail = _trim(match.group(0))
            if not _trackable(url):
                return match.group(0)
            return placeholder(url) + tail

        return URL.sub(one, text)

    def walk(value: Any, key: str = "", parent: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k, key) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key, parent) for v in value]
        if not isinstance(value, str):
            return value
        if key in TEXT_KEYS or parent == "explicit_channel_message":
            return in_text(value)
        if key in LINK_KEYS and parent == "url_message":
            url = value.strip()
            if URL.fullmatch(url) and _trackable(url):
                return placeholder(url)
        return value

    return walk(message), list(links.values())


def _trim(url: str) -> tuple[str, str]:
    """A URL found in text without the punctuation that ends its sentence."""
    end = len(url)
    while end and (
        url[end - 1] in _TRAILING
        or (url[end - 1] == ")" and url[:end].count("(") < url[:end].count(")"))
    ):
        end -= 1
    return url[:end], url[end:]


def _trackable(url: str) -> bool:
    return "${" not in url and not url.startswith(base_url() + "/l/")


def links_of(snapshot_links) -> list[Link]:
    return [Link(**item) for item in snapshot_links or ()]


def record_links(campaign, links: list[Link]) -> dict[tuple[str, str], int]:
    """The TrackedLink rows of `links` (made when missing): {(parameter,
    target): id}. The launch records the frozen ones, a test send of a draft
    those of the template as it is."""
    wanted = {(link.parameter, link.target): link for link in links}
    rows = TrackedLink.objects.filter(campaign_id=campaign.pk)
    known = {(p, t): pk for pk, p, t in rows.values_list("pk", "parameter", "target")}
    missing = [link for key, link in wanted.items() if key not in known]
    if missing:
        TrackedLink.objects.bulk_create(
            [
                TrackedLink(
                    campaign_id=campaign.pk,
                    parameter=link.parameter,
                    url=link.url,
                    target=link.target,
                )
                for link in missing
            ],
            ignore_conflicts=True,
        )
        known = {
            (p, t): pk for pk, p, t in rows.values_list("pk", "parameter", "target")
        }
    return {key: known[key] for key in wanted}
