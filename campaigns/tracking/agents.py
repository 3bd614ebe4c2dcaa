"""Who opened a short link: a person, or a fetcher drawing a link preview.

Messaging apps, social sites and some carriers fetch every link in a message
to draw its preview (or to scan it) before, or without, anyone tapping it.
Those requests still get the redirect (so the preview shows the target), but
count as previews, never as clicks. `classify` returns (is_preview, class).
"""

import re

# (pattern in the User-Agent, class name), first match wins.
PREVIEW_AGENTS = (
    (r"whatsapp", "WhatsApp"),
    (r"facebookexternalhit|facebookcatalog|meta-externalagent", "Facebook"),
    (r"slackbot|slack-imgproxy", "Slack"),
    (r"telegrambot", "Telegram"),
    (r"twitterbot", "Twitter"),
    (r"discordbot", "Discord"),
    (r"skypeuripreview", "Skype"),
    (r"linkedinbot", "LinkedIn"),
    (r"applebot|com\.apple\.|imessage|facebookbot", "Apple"),
    (r"viber", "Viber"),
    (r"snapchat", "Snapchat"),
    (r"googlebot|google-pagerenderer|googleother|feedfetcher", "Google"),
    (r"bingbot|bingpreview", "Bing"),
    (r"pinterest", "Pinterest"),
    (r"redditbot|embedly|iframely|outbrain|quora link preview", "Link preview"),
    (r"microsoftpreview|teams|skypespaces", "Microsoft"),
    (r"preview|prefetch|scanner|urlscan|linkcheck", "Link preview"),
    (r"bot\b|crawler|spider|curl/|wget/|python-requests|go-http-client", "Bot"),
)
_PREVIEW = [(re.compile(p, re.IGNORECASE), name) for p, name in PREVIEW_AGENTS]
# Prefetch hints some carriers and browsers send with a speculative request.
PREFETCH_HEADERS = ("HTTP_PURPOSE", "HTTP_SEC_PURPOSE", "HTTP_X_PURPOSE", "HTTP_X_MOZ")
_MOBILE = re.compile(r"mobile|android|iphone|ipad|ipod", re.IGNORECASE)


def classify(method: str, user_agent: str, environ=None) -> tuple[bool, str]:
    """(is a preview fetcher, user agent class) of a request."""
    if method == "HEAD":
        return True, "HEAD request"
    for header in PREFETCH_HEADERS:
        value = (environ or {}).get(header, "")
        if "prefetch" in value.lower() or "preview" in value.lower():
            return True, "Prefetch"
    if not user_agent:
        return True, "No user agent"
    for pattern, name in _PREVIEW:
        if pattern.search(user_agent):
            return True, name
    if _MOBILE.search(user_agent):
        return False, "mobile browser"
    if "mozilla" in user_agent.lower():
        return False, "desktop browser"
    return False, "other"
