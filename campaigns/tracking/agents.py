"""Who opened a short link: a person, or a fetcher drawing a link preview.

Messaging apps, social sites and some carriers fetch every link in a message
to draw its preview (or to scan it) before, or without, anyone tapping it.
Those requests still get the redirect (so the preview shows the target), but
count as previews, never as clicks. `classify` returns (is_preview, class).
"""

import re

# (words in the lower-cased User-Agent, class name), first match wins. Plain
# substring tests: a few microseconds for a browser's User-Agent, where one
# case-insensitive regular expression of alternatives took over 100.
PREVIEW_AGENTS = (
    (("whatsapp",), "WhatsApp"),
    (("facebookexternalhit", "facebookcatalog", "meta-externalagent"), "Facebook"),
    (("slackbot", "slack-imgproxy"), "Slack"),
    (("telegrambot",), "Telegram"),
    (("twitterbot",), "Twitter"),
    (("discordbot",), "Discord"),
    (("skypeuripreview",), "Skype"),
    (("linkedinbot",), "LinkedIn"),
    (("applebot", "com.apple.", "imessage", "facebookbot"), "Apple"),
    (("viber",), "Viber"),
    (("snapchat",), "Snapchat"),
    (("googlebot", "google-pagerenderer", "googleother", "feedfetcher"), "Google"),
    (("bingbot", "bingpreview"), "Bing"),
    (("pinterest",), "Pinterest"),
    (
        ("redditbot", "embedly", "iframely", "outbrain", "quora link preview"),
        "Link preview",
    ),
    (("microsoftpreview", "teams/", "skypespaces"), "Microsoft"),
    (("preview", "prefetch", "scanner", "urlscan", "linkcheck"), "Link preview"),
    (
        ("crawler", "spider", "curl/", "wget/", "python-requests", "go-http-client"),
        "Bot",
    ),
)
_BOT_WORD = re.compile(r"bot\b")
# Prefetch hints some carriers and browsers send with a speculative request.
PREFETCH_HEADERS = ("HTTP_PURPOSE", "HTTP_SEC_PURPOSE", "HTTP_X_PURPOSE", "HTTP_X_MOZ")
_MOBILE = ("mobile", "android", "iphone", "ipad", "ipod")


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
    agent = user_agent.lower()
    for words, name in PREVIEW_AGENTS:
        for word in words:
            if word in agent:
                return True, name
    if _BOT_WORD.search(agent):
        return True, "Bot"
    if any(word in agent for word in _MOBILE):
        return False, "mobile browser"
    if "mozilla" in agent:
        return False, "desktop browser"
    return False, "other"
