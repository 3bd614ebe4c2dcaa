"""Cost and delivery-time estimates for the pre-send check.

Cost: SMS segments per destination country times the price of a segment in that
country, from settings.SMS_PRICES (ISO 3166 code -> price, "default" for the
rest; see .env.example) in settings.SMS_PRICE_CURRENCY. Sums are exact
(Decimal), so a million segments at 0.0075 cost exactly 7,500.00.

Time: messages ÷ the account's drain rate (settings.SINCH_DRAIN_RATE_PER_S),
e.g. "about 13.9 hours for 1,000,000 messages".

`region_of` is called once per recipient: it caches the country per calling
code (and, where one code serves several countries, per leading digits), so a
million numbers cost a dict look-up each instead of a phonenumbers parse.
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import phonenumbers
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT = "default"
# Where one calling code serves several countries (+1: US, CA, the Caribbean;
# +44: GB, JE, GG, IM; +7: RU, KZ), the country follows from the first digits
# of the national number: these many are part of the cache key.
_SHARED_CODE_DIGITS = 4

_REGIONS = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
# Calling code -> its one country (None for non-geographic codes such as +800).
_SINGLE = {
    str(code): (None if regions[0] == "001" else regions[0])
    for code, regions in _REGIONS.items()
    if len(regions) == 1
}
_SHARED = {
    str(code): regions[0] for code, regions in _REGIONS.items() if len(regions) > 1
}
_shared_cache: dict[str, str] = {}


def region_of(e164: str) -> str | None:
    """The ISO 3166 country of an E.164 number ("+4915..." -> "DE"), or None.

    None for a non-geographic or unknown calling code or a malformed number.
    For a calling code several countries share, a number that is not valid
    for any of them is counted under the code's main country (+1 -> US).
    """
    digits = e164[1:] if e164[:1] == "+" else e164
    for length in (1, 2, 3):
        code = digits[:length]
        if code in _SINGLE:
            return _SINGLE[code] if digits.isdigit() else None
        if code in _SHARED:
            break
    else:
        return None
    key = digits[: length + _SHARED_CODE_DIGITS]
    region = _shared_cache.get(key)
    if region is None:
        if not digits.isdigit():
            return None
        try:
            region = phonenumbers.region_code_for_number(
                phonenumbers.parse("+" + digits)
            )
        except phonenumbers.NumberParseException:
            region = None
        if region is None:
            return _SHARED[code]
        _shared_cache[key] = region
    return region


def price_table(prices: Mapping | None = None) -> dict[str, Decimal]:
    """SMS_PRICES (or `prices`) checked: upper-case country -> Decimal price.

    Raises ImproperlyConfigured when it is not an object with a "default"
    entry and non-negative numeric prices.
    """
    if prices is None:
        prices = settings.SMS_PRICES
    if not isinstance(prices, Mapping) or DEFAULT not in prices:
        raise ImproperlyConfigured(
            'SMS_PRICES must be a JSON object with a "default" price, e.g. '
            '{"default": 0.0075, "US": 0.0079}.'
        )
    table = {}
    for country, price in prices.items():
        try:
            if isinstance(price, bool):
                raise InvalidOperation
            value = Decimal(str(price))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value < 0:
            raise ImproperlyConfigured(
                f"SMS_PRICES[{country!r}] must be a number >= 0 (got {price!r})."
            )
        table[DEFAULT if country == DEFAULT else str(country).upper()] = value
    return table


class CostLine(NamedTuple):
    region: str | None  # None: the country is unknown
    segments: int
    unit_price: Decimal
    default_price: bool  # True when the country has no price of its own
    cost: Decimal


class CostEstimate(NamedTuple):
    total: Decimal
    currency: str
    segments: int
    lines: tuple[CostLine, ...]  # most expensive first

    @property
    def text(self) -> str:
        """E.g. "about EUR 7,500.00 for 1,000,000 SMS segments"."""
        noun = "segment" if self.segments == 1 else "segments"
        return (
            f"about {self.currency} {self.total:,.2f} for {self.segments:,} SMS {noun}"
        )


def estimate_cost(
    segments_by_region: Mapping[str | None, int],
    prices: Mapping | None = None,
    currency: str | None = None,
) -> CostEstimate:
    """The cost of sending the counted SMS segments.

    `segments_by_region` maps a country (as `region_of` gives it, None when
    unknown) to the number of segments going there; `prices` defaults to
    settings.SMS_PRICES and `currency` to settings.SMS_PRICE_CURRENCY.
    """
    table = price_table(prices)
    if currency is None:
        currency = settings.SMS_PRICE_CURRENCY
    lines = []
    for region, count in segments_by_region.items():
        if not count:
            continue
        own = table.get(region) if region else None
        unit = table[DEFAULT] if own is None else own
        lines.append(CostLine(region, count, unit, own is None, unit * count))
    lines.sort(key=lambda line: (-line.cost, line.region or ""))
    return CostEstimate(
        total=sum((line.cost for line in lines), Decimal(0)),
        currency=currency,
        segments=sum(line.segments for line in lines),
        lines=tuple(lines),
    )


def delivery_seconds(messages: int, rate_per_s: float | None = None) -> float:
    """Seconds Sinch needs to deliver `messages` at the account's drain rate."""
    if rate_per_s is None:
        rate_per_s = settings.SINCH_DRAIN_RATE_PER_S
    if rate_per_s <= 0:
        raise ValueError(f"The drain rate must be positive (got {rate_per_s}).")
    return messages / rate_per_s


def delivery_time_text(messages: int, rate_per_s: float | None = None) -> str:
    """E.g. "about 13.9 hours for 1,000,000 messages" (1,000,000 at 20/s)."""
    seconds = delivery_seconds(messages, rate_per_s)
    what = "1 message" if messages == 1 else f"{messages:,} messages"
    if messages <= 0:
        return "no messages to deliver"
    if seconds < 1:
        return f"less than a second for {what}"
    if seconds < 90:
        return f"about {_amount(round(seconds), 'second')} for {what}"
    if seconds < 90 * 60:
        return f"about {_amount(seconds / 60, 'minute')} for {what}"
    if seconds < 48 * 3600:
        return f"about {_amount(seconds / 3600, 'hour')} for {what}"
    return f"about {_amount(seconds / 86400, 'day')} for {what}"


def _amount(value: float, unit: str) -> str:
    number = f"{value:.1f}".removesuffix(".0")
    return f"{number} {unit}" if number == "1" else f"{number} {unit}s"
