"""How long a message text may be: what Sinch delivers on every channel.

Sinch documents 4,096 characters for a WhatsApp text message (the longest
text a generic message may carry there); in SMS that is at most 28 parts of
GSM-7 (69 of UCS-2), within the 255 parts SMS_MAX_NUMBER_OF_MESSAGE_PARTS
allows. One limit for every channel keeps a template usable whichever channel
a campaign chooses, and keeps what the pre-send check and the batches carry
per recipient small (a batch is 1,000 recipients).
"""

MAX_TEXT_CHARS = 4096


def too_long(label: str, text: str) -> str | None:
    """The error for `text` over the limit, or None."""
    if len(text) <= MAX_TEXT_CHARS:
        return None
    return (
        f"{label}: {len(text):,} characters; a message text may have at most "
        f"{MAX_TEXT_CHARS:,} (Sinch's limit for WhatsApp, about 28 SMS parts). "
        f"Shorten it by {len(text) - MAX_TEXT_CHARS:,} characters."
    )
