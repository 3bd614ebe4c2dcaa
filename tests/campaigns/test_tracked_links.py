"""Tracked links: URLs become per-recipient short links that count clicks."""

import collections
import itertools
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.authoring import link_tracking, presend
from campaigns.authoring.preview import preview_contact
from campaigns.authoring.rendering import MessagePlan
from campaigns.dispatch import launching
from campaigns.models import Click, Recipient, ShortLink, TrackedLink
from campaigns.models.links import ALPHABET, CODE_LENGTH, decode, encode, new_code
from campaigns.placeholders import PlaceholderError, extract
from campaigns.tracking import click_buffer, clicks, redirect
from contacts.models import Contact

SALE = "Spring sale: https://shop.example.com/sale?ref=sms. Ends Sunday!"
SHORT = re.compile(r"^http://go\.example\.com/l/([0-9A-Za-z]{8})$")


pytestmark = pytest.mark.usefixtures("short_links")


@pytest.fixture
def make_tracked(make_audience, make_template, make_campaign):
    """A tracked-links campaign of `text` to `n` opted-in customers, checked."""

    def make(text=SALE, n=3, **fields):
        template = make_template("Sale", text)
        people = make_audience("Buyers", n, phone="+1415555{:04d}")
        fields.setdefault("track_links", True)
        return make_campaign(template, [people], "Sale", checked=True, **fields)

    return make


@pytest.fixture
def sent(make_tracked, sender, sinch, control, django_capture_on_commit_callbacks):
    """A tracked campaign launched and sent to the simulator; returns
    (campaign, {recipient id: short link as the recipient got it})."""

    def send(**fields):
        campaign = make_tracked(**fields)
        with django_capture_on_commit_callbacks(execute=True):
            launching.launch(campaign, sender)
        campaign.refresh_from_db()
        links = {}
        expected = campaign.recipients.exclude(status=Recipient.Status.EXCLUDED)
        for message in control.wait_for_messages(expected.count()):
            text = message["rendered"]["text_message"]["text"]
            url = re.search(r"http://go\.example\.com/l/\w+", text).group(0)
            metadata = message["metadata"]
            pk = int(re.search(r'"cm_recipient":"(\d+)"', metadata).group(1))
            links[pk] = url
        return campaign, links

    return send


def _code(url: str) -> str:
    return SHORT.match(url).group(1)


# --- codes ----------------------------------------------------------------------


def test_codes_are_short_random_and_never_in_sequence():
    codes = [new_code() for _ in range(20_000)]
    texts = [encode(c) for c in codes]
    assert all(len(t) == CODE_LENGTH and set(t) <= set(ALPHABET) for t in texts)
    assert len(set(codes)) == len(codes)
    assert [decode(t) for t in texts] == codes
    # No sequence: consecutive codes are not a fixed step apart, nor ordered.
    steps = {b - a for a, b in itertools.pairwise(codes)}
    assert len(steps) > 19_000
    assert codes != sorted(codes)
    # Uniform below 62**8 (47.6 bits >= 40): each bit is set as often as
    # that predicts (about half of the time, the top one about 36%).
    space = len(ALPHABET) ** CODE_LENGTH
    assert space > 2**47
    for bit in range(48):
        period = 2 ** (bit + 1)
        expected = (space // period * 2**bit + max(0, space % period - 2**bit)) / space
        share = sum((c >> bit) & 1 for c in codes) / len(codes)
        assert abs(share - expected) < 0.02, (bit, share, expected)
    # Every character position uses the whole alphabet.
    for position in range(CODE_LENGTH):
        assert len({t[position] for t in texts}) > 50
    assert decode("short") is None
    assert decode("abc-defg") is None


# --- the message ----------------------------------------------------------------


def test_every_url_in_the_text_becomes_one_link_parameter_with_utm():
    message = {
        "text_message": {
            "text": "See https://a.example.com/x?ref=1#top, then "
            "(https://b.example.com/wiki_(page)). Again: https://a.example.com/x?ref=1#top!"
            " Yours: https://c.example.com/u/${code} and http://go.example.com/l/abcdefgh"
        }
    }
    utm = {"utm_source": "sms", "utm_medium": "text", "utm_campaign": "spring"}
    rewritten, links = link_tracking.rewrite(message, utm)
    text = rewritten["text_message"]["text"]
    assert text == (
        "See ${cm_link_1}, then (${cm_link_2}). Again: ${cm_link_1}!"
        " Yours: https://c.example.com/u/${code} and http://go.example.com/l/abcdefgh"
    )
    assert [(ln.parameter, ln.url, ln.target) for ln in links] == [
        (
            "cm_link_1",
            "https://a.example.com/x?ref=1#top",
            "https://a.example.com/x?ref=1&utm_source=sms&utm_medium=text"
            "&utm_campaign=spring#top",
        ),
        (
            "cm_link_2",
            "https://b.example.com/wiki_(page)",
            "https://b.example.com/wiki_(page)?utm_source=sms&utm_medium=text"
            "&utm_campaign=spring",
        ),
    ]
    # A target's own UTM values are kept; a choice's link is replaced whole,
    # a picture's URL never (Sinch fetches it).
    assert link_tracking.with_utm("https://a.example.com/?utm_source=mail", utm) == (
        "https://a.example.com/?utm_source=mail&utm_medium=text&utm_campaign=spring"
    )
    choice = {
        "choice_message": {
            "text_message": {"text": "Pick"},
            "choices": [
                {"url_message": {"title": "Shop", "url": "https://s.example/"}}
            ],
        },
        "media_message": {"url": "https://cdn.example/p.jpg"},
    }
    rewritten, links = link_tracking.rewrite(choice, {})
    assert rewritten["choice_message"]["choices"][0]["url_message"]["url"] == (
        "${cm_link_1}"
    )
    assert rewritten["media_message"]["url"] == "https://cdn.example/p.jpg"
    assert links[0].target == "https://s.example/"


def test_templates_may_not_use_the_link_parameters_themselves():
    with pytest.raises(PlaceholderError, match="reserved for tracked links"):
        extract("Go ${cm_link_1}")


def test_the_check_counts_the_short_link_not_the_long_url(make_tracked):
    long_url = "https://shop.example.com/" + "spring-sale/" * 15
    text = f"Sale! {long_url} Ends Sunday."
    tracked = make_tracked(text=text)
    summary = tracked.presend
    assert summary["histogram"] == ["3 recipients need 1 segment"]
    assert summary["cost"].endswith("for 3 SMS segments")
    plan = MessagePlan.for_campaign(tracked)
    sample = "Sale! http://go.example.com/l/aB3dE5gH Ends Sunday."
    assert plan.text({}) == sample
    # Untracked, the same message takes two segments each.
    tracked.track_links = False
    tracked.save()
    untracked = presend.run_presend_check(tracked).summary
    assert untracked["histogram"] == ["3 recipients need 2 segments"]


def test_the_preview_shows_the_short_link_and_where_it_goes(make_tracked):
    campaign = make_tracked(utm_source="sms")
    contact = Contact.objects.filter(first_name__isnull=False).first()
    shown = preview_contact(campaign, contact)
    text = dict(shown.fields)["text_message.text"]
    assert text == "Spring sale: http://go.example.com/l/aB3dE5gH. Ends Sunday!"
    use = next(p for p in shown.parameters if p.name == "cm_link_1")
    assert use.value == "http://go.example.com/l/aB3dE5gH"
    assert use.origin == (
        "tracked link to https://shop.example.com/sale?ref=sms&utm_source=sms"
    )


# --- sending --------------------------------------------------------------------


def test_each_recipient_gets_their_own_short_link_frozen_at_launch(
    sent, sent_batches, django_assert_max_num_queries
):
    campaign, links = sent(utm_campaign="spring")
    assert len(links) == 3
    assert len(set(links.values())) == 3
    assert all(SHORT.match(url) for url in links.values())
    body = sent_batches[0]
    assert body["message"]["text_message"]["text"] == (
        "Spring sale: ${cm_link_1}. Ends Sunday!"
    )
    assert {r["parameters"]["cm_link_1"] for r in body["recipient_and_params"]} == set(
        links.values()
    )
    link = TrackedLink.objects.get(campaign=campaign)
    assert link.target == "https://shop.example.com/sale?ref=sms&utm_campaign=spring"
    assert campaign.message_snapshot["links"][0]["target"] == link.target
    # Editing the template now changes nothing for the launched campaign.
    campaign.template.text = "Now https://elsewhere.example.com"
    campaign.template.save()
    pk, url = next(iter(links.items()))
    from django.test import Client

    response = Client().get(f"/l/{_code(url)}", HTTP_USER_AGENT="Mozilla/5.0 (iPhone)")
    assert response.status_code == 302
    assert response["Location"] == link.target
    assert click_buffer.flush() == 1
    click = Click.objects.get()
    assert (click.recipient_id, click.link_id, click.campaign_id) == (
        pk,
        link.pk,
        campaign.pk,
    )
    assert (click.is_preview, click.agent) == (False, "mobile browser")
    # Recipient rows carry no short link: the codes live in ShortLink only.
    assert not any("cm_link_1" in (r.parameters or {}) for r in Recipient.objects.all())
    assert ShortLink.objects.count() == 3


def test_a_batch_sent_again_sends_the_same_codes(sent):
    from campaigns.dispatch import batch_request
    from campaigns.models import Batch

    campaign, links = sent()
    batch = Batch.objects.get(campaign=campaign)
    again = batch_request.build_batch_request(
        campaign, batch, Recipient.objects.filter(batch=batch)
    )
    assert {
        int(r.message_metadata["cm_recipient"]): r.parameters["cm_link_1"]
        for r in again.recipients
    } == links
    assert ShortLink.objects.count() == 3


# --- the redirect ---------------------------------------------------------------


def test_no_request_can_change_where_a_short_link_goes(sent, client):
    campaign, links = sent()
    code = _code(next(iter(links.values())))
    target = TrackedLink.objects.get(campaign=campaign).target
    for path in (
        f"/l/{code}?next=https://evil.example",
        f"/l/{code}?url=//evil.example&target=https://evil.example",
    ):
        response = client.get(path, HTTP_REFERER="https://evil.example")
        assert (response.status_code, response["Location"]) == (302, target)
    for path in (
        f"/l/{code}/https://evil.example",
        "/l//evil.example",
        f"/l/{code}%2F..%2F..%2Fevil",
        "/l/https:%2F%2Fevil.example",
        f"/l/{code}@evil.example",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Location" not in response


def test_the_thin_wsgi_door_answers_like_the_view(sent):
    from config.wsgi import application

    _campaign, links = sent()
    code = _code(next(iter(links.values())))
    answers = []

    def start_response(status, headers):
        answers.append((status, dict(headers)))

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/l/{code}"}
    environ["QUERY_STRING"] = "next=https://evil.example"
    application(environ, start_response)
    application({"REQUEST_METHOD": "GET", "PATH_INFO": "/l/zzzzzzzz"}, start_response)
    application({"REQUEST_METHOD": "POST", "PATH_INFO": f"/l/{code}"}, start_response)
    target = TrackedLink.objects.get().target
    assert answers[0][0] == "302 Found"
    assert answers[0][1]["Location"] == target
    assert answers[1][0] == "404 Not Found"
    assert "Location" not in answers[1][1]
    assert answers[2][0].startswith("405")
    assert click_buffer.flush() == 1


SITE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def test_the_thin_door_sends_the_sites_security_headers(sent, settings):
    from config.wsgi import application

    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    _campaign, links = sent()
    code = _code(next(iter(links.values())))
    answers = []

    def start_response(status, headers):
        answers.append((status[:3], dict(headers)))

    https = {"REQUEST_METHOD": "GET", "HTTP_X_FORWARDED_PROTO": "https"}
    for path in (f"/l/{code}", "/l/zzzzzzzz"):
        application({**https, "PATH_INFO": path}, start_response)
    application(
        {**https, "PATH_INFO": f"/l/{code}", "REQUEST_METHOD": "PUT"}, start_response
    )
    # Over plain HTTP (the proxy says so, whatever the socket was) no HSTS.
    plain = {"REQUEST_METHOD": "GET", "HTTP_X_FORWARDED_PROTO": "http"}
    application(
        {**plain, "wsgi.url_scheme": "https", "PATH_INFO": f"/l/{code}"}, start_response
    )
    assert [status for status, _ in answers] == ["302", "404", "405", "302"]
    for _status, headers in answers:
        assert SITE_HEADERS.items() <= headers.items()
    hsts = [headers.get("Strict-Transport-Security") for _, headers in answers]
    assert hsts == ["max-age=31536000; includeSubDomains"] * 3 + [None]
    # Without a proxy, the socket's scheme decides, as request.is_secure().
    settings.SECURE_PROXY_SSL_HEADER = None
    application(
        {**plain, "wsgi.url_scheme": "https", "PATH_INFO": "/l/x"}, start_response
    )
    assert "Strict-Transport-Security" in answers[-1][1]
    assert click_buffer.flush() == 2


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        ("WhatsApp/2.23.20.0 A", "WhatsApp"),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Facebook",
        ),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Slack"),
        ("Twitterbot/1.0", "Twitter"),
        ("TelegramBot (like TwitterBot)", "Telegram"),
        (
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "Discord",
        ),
        ("Mozilla/5.0 (Macintosh) AppleWebKit/605 (Applebot/0.1)", "Apple"),
        ("com.apple.Safari.SearchHelper", "Apple"),
        ("Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5", "Skype"),
        ("", "No user agent"),
    ],
)
def test_link_preview_fetchers_are_counted_apart_from_people(sent, client, agent, kind):
    campaign, links = sent()
    code = _code(next(iter(links.values())))
    assert client.get(f"/l/{code}", HTTP_USER_AGENT=agent).status_code == 302
    phone = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Mobile Safari/537.36"
    client.get(f"/l/{code}", HTTP_USER_AGENT=phone)
    client.get(f"/l/{code}", HTTP_USER_AGENT=phone)
    client.head(f"/l/{code}", HTTP_USER_AGENT=phone)  # a HEAD is a check, not a tap
    client.get(f"/l/{code}", HTTP_USER_AGENT=phone, HTTP_SEC_PURPOSE="prefetch")
    click_buffer.flush()
    previews = Click.objects.filter(is_preview=True)
    assert sorted(previews.values_list("agent", flat=True)) == sorted(
        [kind, "HEAD request", "Prefetch"]
    )
    assert clicks.click_counts(campaign.pk) == {
        "clicks": 2,
        "clickers": 1,
        "previews": 3,
    }
    assert clicks.unique_clickers(campaign.pk) == 1
    assert clicks.clickers_per_link(campaign.pk)[0]["clickers"] == 1


def test_unknown_codes_get_a_bare_404_and_repeated_misses_are_slowed(
    sent, client, monkeypatch
):
    _campaign, links = sent()
    waits = []
    monkeypatch.setattr(redirect, "sleep", waits.append)
    known = _code(next(iter(links.values())))
    expired_link = TrackedLink.objects.get()
    answers = [client.get(f"/l/{c}") for c in ("zzzzzzzz", "abc", "########")]
    TrackedLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    redirect.forget_links()  # workers read links again within LINK_CACHE_S
    answers.append(client.get(f"/l/{known}"))
    assert {(a.status_code, a.content) for a in answers} == {(404, b"Not found")}
    assert len({tuple(sorted(a.headers.items())) for a in answers}) == 1
    assert waits == []  # 4 misses: free, and a 5th
    for _ in range(5):
        client.get("/l/zzzzzzzz")
    assert waits == [0.1, 0.2, 0.4, 0.8]
    # Another address is not slowed by the first one's misses.
    client.get("/l/zzzzzzzz", REMOTE_ADDR="10.0.0.9")
    assert waits == [0.1, 0.2, 0.4, 0.8]
    assert redirect.miss_delay("1.2.3.4", now=0) == 0.0
    for _ in range(30):
        redirect.miss_delay("1.2.3.4", now=1)
    assert redirect.miss_delay("1.2.3.4", now=2) == redirect.MISS_DELAY_MAX_S
    assert redirect.miss_delay("1.2.3.4", now=2 + redirect.MISS_WINDOW_S) == 0.0
    assert expired_link.pk
    assert click_buffer.flush() == 0


def test_links_answer_for_the_ttl_after_the_campaign_ends_then_404(
    sent, client, settings
):
    settings.SHORT_LINK_TTL_DAYS = 30
    campaign, links = sent()
    assert campaign.status == "SUBMITTED"
    link = TrackedLink.objects.get()
    expected = timezone.now() + timedelta(days=30)
    assert abs((link.expires_at - expected).total_seconds()) < 60
    code = _code(next(iter(links.values())))
    assert client.get(f"/l/{code}").status_code == 302
    TrackedLink.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    redirect.forget_links()  # workers read links again within LINK_CACHE_S
    assert client.get(f"/l/{code}").status_code == 404


def test_clicks_over_time_and_per_recipient(sent, client):
    campaign, links = sent()
    (a, url_a), (b, url_b), _ = links.items()
    for url in (url_a, url_a, url_b):
        client.get(f"/l/{_code(url)}", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux)")
    click_buffer.flush()
    per_recipient = clicks.recipient_clicks([a, b])
    assert {pk: n for pk, (n, _first) in per_recipient.items()} == {a: 2, b: 1}
    (_hour, n), *_ = clicks.clicks_over_time(campaign.pk)
    assert n == 3
    counted = collections.Counter(Click.objects.values_list("agent", flat=True))
    assert counted == {"desktop browser": 3}


def test_a_code_drawn_twice_is_drawn_again_not_shared(sent, monkeypatch):
    from campaigns.dispatch import short_links

    campaign, _ = sent()
    taken = ShortLink.objects.order_by("code").first()
    draws = iter([taken.code, 4242])
    monkeypatch.setattr(short_links, "new_code", lambda: next(draws))
    made = short_links.links_for(campaign, [999_999])
    assert made == {999_999: {"cm_link_1": f"http://go.example.com/l/{encode(4242)}"}}
    assert ShortLink.objects.get(code=taken.code).recipient_id == taken.recipient_id
    assert ShortLink.objects.count() == 4
