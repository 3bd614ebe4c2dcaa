"""Tracked links: a campaign's link targets, each recipient's short codes, clicks.

A campaign with "track links" sends, in place of every URL of its message,
a `${cm_link_N}` placeholder whose value is a short link of that recipient
(campaigns.authoring.link_tracking rewrites the message; the codes are made
a batch at a time when its request is built, campaigns.dispatch.short_links).

- `TrackedLink`: one URL of one campaign, with its target frozen at launch
  (UTM parameters appended) and when its short links stop answering.
- `ShortLink`: one recipient's code for one TrackedLink. The code is a random
  number below 62**8 (47.6 bits from `secrets`), written as 8 base62
  characters; it is the primary key, so the redirect reads one row.
- `Click`: one request of a short link: when, by whom, which link, and the
  user agent's class; preview fetchers (messaging apps, carriers drawing a
  link preview) are kept apart from people (`is_preview`).

Nothing here holds a number, a name or a text: erasure deletes a person's
short links and clicks (campaigns.erasure).
"""

import secrets

from django.db import models

from campaigns.models.campaign import Campaign

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CODE_LENGTH = 8
CODE_SPACE = len(ALPHABET) ** CODE_LENGTH  # 62**8 ~ 2**47.6
_DIGITS = {c: i for i, c in enumerate(ALPHABET)}


def new_code() -> int:
    """A fresh random code number (never derived from anything)."""
    return secrets.randbelow(CODE_SPACE)


def encode(number: int) -> str:
    """A code number as its CODE_LENGTH base62 characters."""
    chars = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def decode(code: str) -> int | None:
    """The number of a code as written in a short link; None if it is not one."""
    if len(code) != CODE_LENGTH:
        return None
    number = 0
    for char in code:
        digit = _DIGITS.get(char)
        if digit is None:
            return None
        number = number * 62 + digit
    return number


class TrackedLink(models.Model):
    """One URL of a campaign's message and the target its short links go to."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="tracked_links"
    )
    parameter = models.CharField(
        max_length=32, help_text="The placeholder standing for it in the message."
    )
    url = models.TextField("URL in the message")
    target = models.TextField(
        help_text="Where its short links go: the URL with the campaign's UTM "
        "parameters, frozen at launch."
    )
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Its short links answer 404 from then on "
        "(SHORT_LINK_TTL_DAYS after the campaign ended).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "parameter"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "parameter", "target"],
                name="tracked_link_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.parameter} → {self.target}"


class ShortLink(models.Model):
    """One recipient's short link to one TrackedLink (written in bulk, per batch)."""

    code = models.BigIntegerField(primary_key=True)
    link = models.ForeignKey(
        TrackedLink, on_delete=models.CASCADE, related_name="short_links"
    )
    recipient_id = models.BigIntegerField()
    is_test = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient_id", "link"], name="short_link_per_recipient"
            )
        ]

    def __str__(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        return encode(self.code)


class Click(models.Model):
    """One request of a short link, as the redirect answered it."""

    campaign_id = models.BigIntegerField()
    link = models.ForeignKey(
        TrackedLink, on_delete=models.CASCADE, related_name="clicks"
    )
    recipient_id = models.BigIntegerField()
    is_test = models.BooleanField(default=False)
    is_preview = models.BooleanField(
        "link-preview fetcher",
        default=False,
        help_text="A messaging app or carrier fetching the link to draw a "
        "preview, or a HEAD request: not a person.",
    )
    agent = models.CharField(
        "user agent class", max_length=32, help_text="e.g. WhatsApp, mobile browser."
    )
    clicked_at = models.DateTimeField()

    class Meta:
        ordering = ["-clicked_at"]
        indexes = [
            # unique human clickers per campaign / per link (index-only counts)
            models.Index(
                fields=["campaign_id", "is_test", "is_preview", "recipient_id"],
                name="click_campaign_people",
            ),
            models.Index(
                fields=["link", "is_preview", "recipient_id"], name="click_link_people"
            ),
            # clicks over time, and a recipient's clicks (history, erasure)
            models.Index(fields=["campaign_id", "clicked_at"], name="click_time"),
            models.Index(fields=["recipient_id", "clicked_at"], name="click_recipient"),
        ]

    def __str__(self) -> str:
        who = "preview" if self.is_preview else "click"
        return f"{who} of {self.link_id} at {self.clicked_at:%Y-%m-%d %H:%M:%S}"
