"""Notifications: each event tells the people concerned, once, on their home
page and (when a mail server is configured and they did not turn it off) by
e-mail. Texts never hold a contact's number, name or message text.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from campaigns import counters, notifications, transitions
from campaigns.dispatch import freeze
from campaigns.dispatch.outcomes import auto_pause_if_failing
from campaigns.models import Batch, Campaign, Notification, Recipient
from campaigns.tracking import completion, inbox
from campaigns.tracking import reconciliation as rec
from contacts.services.erasure import erase_contact
from tests.campaigns.test_replies import message, post_signed, process

S = Campaign.Status
R = Recipient.Status
K = Notification.Kind
MAIL = "smtp://mail.example.com:25"


@pytest.fixture
def people(make_user):
    """The campaign's creator and launcher, another Sender, a bystander, an
    operator and a compliance reviewer, each with an address."""
    made = {
        "creator": make_user("mark", "Marketing", email="mark@example.com"),
        "launcher": make_user("sandra", "Sender", email="sandra@example.com"),
        "other_sender": make_user("sam", "Sender", email="sam@example.com"),
        "bystander": make_user("mia", "Marketing", email="mia@example.com"),
        "operator": make_user("opal", email="opal@example.com"),
        "reviewer": make_user("carla", "Compliance", email="carla@example.com"),
    }
    made["operator"].user_permissions.add(Permission.objects.get(codename="view_ormq"))
    return made


@pytest.fixture
def inbox_processed_by_hand(monkeypatch):
    monkeypatch.setattr(inbox, "queue_processor", lambda: None)


@pytest.fixture
def mail_on(settings):
    settings.EMAIL_URL = MAIL
    settings.SITE_URL = "https://campaigns.example.com"


def told(kind) -> list[str]:
    return sorted(
        Notification.objects.filter(kind=kind).values_list(
            "recipient__username", flat=True
        )
    )


def mailed(outbox) -> list[str]:
    return sorted(address for m in outbox for address in m.to)


def a_campaign(make_campaign, people, **fields):
    return make_campaign(
        name="Winter sale",
        created_by=people["creator"],
        launched_by=people["launcher"],
        **fields,
    )


def recipients(campaign, status, n, batch=None):
    """`n` recipients of `campaign` in `status`, and its kept counts."""
    start = Recipient.objects.filter(campaign=campaign).count()
    Recipient.objects.bulk_create(
        Recipient(
            campaign=campaign,
            identity=f"+1415000{start + i:04d}",
            status=status,
            batch=batch,
        )
        for i in range(n)
    )
    counters.recount(campaign.pk)


# --- each event, the right people, once -------------------------------------------


def test_a_finished_campaign_tells_its_creator_and_launcher_once(
    people, make_campaign, mail_on, mailoutbox, django_capture_on_commit_callbacks
):
    campaign = a_campaign(make_campaign, people, status=S.SUBMITTED)
    recipients(campaign, R.DELIVERED, 8)
    recipients(campaign, R.FAILED, 1)

    with django_capture_on_commit_callbacks(execute=True):
        assert completion.complete_finished_campaigns() == 1
        completion.complete_finished_campaigns()
        notifications.campaign_finished(campaign.pk)  # the same event again

    assert told(K.FINISHED) == ["mark", "sandra"]
    note = Notification.objects.filter(kind=K.FINISHED).first()
    assert (
        note.text
        == "“Winter sale” finished: 8 of 9 messages delivered (89%), 1 failed."
    )
    assert note.link == reverse(
        "admin:campaigns_campaign_dashboard", args=[campaign.pk]
    )
    assert note.campaign == campaign
    assert mailed(mailoutbox) == ["mark@example.com", "sandra@example.com"]
    assert mailoutbox[0].subject == "[Campaigns] Campaign finished"
    assert note.text in mailoutbox[0].body
    assert f"Open it: https://campaigns.example.com{note.link}\n" in mailoutbox[0].body


def test_a_campaign_paused_automatically_tells_its_people_and_the_senders(
    people,
    make_campaign,
    settings,
    mail_on,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    settings.DISPATCH_PAUSE_MIN_BATCHES = 2
    campaign = a_campaign(make_campaign, people, status=S.SUBMITTING)
    now = timezone.now()
    for n in range(3):
        Batch.objects.create(
            campaign=campaign,
            sequence=n + 1,
            metadata_key=f"k{n}",
            status=Batch.Status.FAILED,
            claimed_at=now,
            last_error="HTTP 400 from Sinch",
        )

    with django_capture_on_commit_callbacks(execute=True):
        assert auto_pause_if_failing(campaign.pk)
        assert not auto_pause_if_failing(campaign.pk)  # paused already

    assert Campaign.objects.get(pk=campaign.pk).status == S.PAUSED
    assert told(K.AUTO_PAUSED) == ["mark", "sam", "sandra"]
    text = Notification.objects.filter(kind=K.AUTO_PAUSED).first().text
    assert text.startswith(
        "“Winter sale” was paused automatically. Paused automatically: 3 of"
    )
    assert "HTTP 400 from Sinch" in text
    assert mailed(mailoutbox) == [
        "mark@example.com",
        "sam@example.com",
        "sandra@example.com",
    ]


def test_a_pause_by_a_person_notifies_nobody(people, make_campaign):
    campaign = a_campaign(make_campaign, people, status=S.SUBMITTING)
    assert transitions.pause(campaign, people["launcher"], "Paused by sandra.")
    assert not Notification.objects.exists()


def test_a_campaign_that_fails_tells_its_people(
    people,
    make_campaign,
    make_audience,
    mail_on,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    nobody = make_audience("Opted out", 0, opted_out=["+14155550177"])
    campaign = a_campaign(make_campaign, people, lists=[nobody], status=S.LAUNCHING)

    with django_capture_on_commit_callbacks(execute=True):
        freeze.freeze_recipients(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == S.FAILED
    assert told(K.FAILED) == ["mark", "sandra"]
    text = Notification.objects.get(kind=K.FAILED, recipient=people["creator"]).text
    assert text.startswith("“Winter sale” failed: ")
    assert "+14155550177" not in text
    assert mailed(mailoutbox) == ["mark@example.com", "sandra@example.com"]


def test_stalled_receipts_tell_the_operators_and_the_launcher_once_per_stall(
    people,
    make_campaign,
    superuser,
    settings,
    mail_on,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    superuser.email = "root@example.com"
    superuser.save()
    sent = timezone.now() - timedelta(hours=2)
    campaign = a_campaign(make_campaign, people, status=S.SUBMITTED)
    batch = Batch.objects.create(
        campaign=campaign,
        sequence=1,
        size=3,
        metadata_key="stall-1",
        status=Batch.Status.ACCEPTED,
        remote_status="PROCESSED",
        submitted_at=sent,
    )
    recipients(campaign, R.SUBMITTED, 3, batch=batch)

    with django_capture_on_commit_callbacks(execute=True):
        assert rec.flag_stalled_campaigns()["flagged"] == 1
        rec.flag_stalled_campaigns()  # still stalled: no new notification

    assert told(K.RECEIPTS_STALLED) == ["opal", "root", "sandra"]
    text = Notification.objects.filter(kind=K.RECEIPTS_STALLED).first().text
    assert text.startswith(
        "“Winter sale”: delivery reports stopped arriving. No delivery receipt for"
    )
    assert mailed(mailoutbox) == [
        "opal@example.com",
        "root@example.com",
        "sandra@example.com",
    ]


def test_replies_to_review_tell_the_reviewers_and_stay_one_unread_note(
    client,
    people,
    inbox_processed_by_hand,
    mail_on,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(client, message("no more texts please", identity="+14155550188"))
        process()
        post_signed(client, message("remove me from this", identity="+14155550189"))
        process()

    assert told(K.REPLIES_TO_REVIEW) == ["carla"]  # one, brought up to date
    note = Notification.objects.get(kind=K.REPLIES_TO_REVIEW)
    assert note.text == "2 replies read like an opt-out and wait for review."
    assert "+1415555018" not in note.text
    assert "no more texts" not in note.text
    assert mailed(mailoutbox) == ["carla@example.com"]

    notifications.mark_read(people["reviewer"])
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(
            client, message("please take me off your list", identity="+14155550190")
        )
        process()
    assert told(K.REPLIES_TO_REVIEW) == ["carla", "carla"]
    assert len(mailoutbox) == 2


def test_a_notification_that_cannot_be_recorded_never_stops_the_transition(
    people, make_campaign, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("notifications table unavailable")

    monkeypatch.setattr(notifications, "notify", broken)
    campaign = a_campaign(make_campaign, people, status=S.SUBMITTED)
    recipients(campaign, R.DELIVERED, 2)

    assert completion.complete_finished_campaigns() == 1

    assert Campaign.objects.get(pk=campaign.pk).status == S.COMPLETED
    assert "notification campaign_finished" in caplog.text


def test_erasure_takes_a_number_quoted_from_an_error_out_of_notifications(
    people, make_campaign, make_contact, settings
):
    """An auto-pause quotes the last batch error, which may name a number:
    erasing that person takes it out of the notifications too."""
    settings.DISPATCH_PAUSE_MIN_BATCHES = 1
    zeb = make_contact("+14155550142", consent="OPTED_IN", first_name="Zebulon")
    campaign = a_campaign(make_campaign, people, status=S.SUBMITTING)
    Batch.objects.create(
        campaign=campaign,
        sequence=1,
        metadata_key="err-1",
        status=Batch.Status.FAILED,
        claimed_at=timezone.now(),
        last_error="HTTP 400: recipient +14155550142 is not valid",
    )
    assert auto_pause_if_failing(campaign.pk)
    quoted = Notification.objects.filter(kind=K.AUTO_PAUSED)
    assert ["+14155550142" in n.text for n in quoted] == [True, True, True]

    erase_contact(contact=zeb, actor=people["reviewer"])

    for note in Notification.objects.filter(kind=K.AUTO_PAUSED):
        assert "+14155550142" not in note.text
        assert "4155550142" not in note.text
        assert note.text.startswith("“Winter sale” was paused automatically.")


# --- e-mail ----------------------------------------------------------------------


def test_a_user_who_turned_emails_off_is_told_on_the_home_page_only(
    client,
    people,
    make_campaign,
    mail_on,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    client.force_login(people["creator"])
    page = client.get(reverse("notification-preferences")).content.decode()
    assert "checked" in page  # on by default
    response = client.post(reverse("notification-preferences"), {}, follow=True)
    assert "will no longer be e-mailed" in response.content.decode()

    campaign = a_campaign(make_campaign, people, status=S.SUBMITTED)
    recipients(campaign, R.DELIVERED, 2)
    with django_capture_on_commit_callbacks(execute=True):
        completion.complete_finished_campaigns()

    assert told(K.FINISHED) == ["mark", "sandra"]
    assert mailed(mailoutbox) == ["sandra@example.com"]
    home = client.get("/admin/").content.decode()
    assert "“Winter sale” finished: 2 of 2 messages delivered (100%), 0 failed." in home


def test_nothing_is_emailed_without_a_mail_server(
    people, make_campaign, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.EMAIL_URL = ""
    campaign = a_campaign(make_campaign, people, status=S.SUBMITTED)
    recipients(campaign, R.DELIVERED, 2)
    with django_capture_on_commit_callbacks(execute=True):
        completion.complete_finished_campaigns()
    assert told(K.FINISHED) == ["mark", "sandra"]
    assert mailoutbox == []
    assert (
        notifications.send_mail_for(
            list(Notification.objects.values_list("pk", flat=True))
        )
        == "notification mail: no mail server configured"
    )


def test_a_notification_is_emailed_once_even_if_the_task_runs_twice(
    people, make_campaign, mail_on, mailoutbox
):
    campaign = a_campaign(make_campaign, people, status=S.SUBMITTED)
    ids = notifications.notify(
        K.FINISHED, users=[people["creator"]], key="x", text="Done.", campaign=campaign
    )
    notifications.send_mail_for(ids)
    notifications.send_mail_for(ids)
    assert mailed(mailoutbox) == ["mark@example.com"]


# --- on the home page -----------------------------------------------------------


def test_notifications_show_unread_first_and_can_be_marked_read(
    client, people, make_campaign
):
    user = people["creator"]
    campaign = a_campaign(make_campaign, people)
    for n, text in enumerate(("First.", "Second.", "Third.")):
        notifications.notify(
            K.FINISHED, users=[user], key=f"k{n}", text=text, campaign=campaign
        )
    first = Notification.objects.get(text="First.")
    client.force_login(user)
    assert 'id="unread-count">3<' in client.get("/admin/").content.decode()

    client.post(reverse("notifications-read"), {"id": first.pk})
    page = client.get("/admin/").content.decode()
    assert 'id="unread-count">2<' in page
    module = page.split('id="notifications-module"')[1].split("</section>")[0]
    assert module.index("Third.") < module.index("Second.") < module.index("First.")

    client.post(reverse("notifications-read"))
    page = client.get("/admin/").content.decode()
    assert 'id="unread-count"' not in page
    # Another user's notifications are not theirs to mark.
    notifications.notify(
        K.FINISHED, users=[people["launcher"]], key="o", text="Theirs."
    )
    theirs = Notification.objects.get(text="Theirs.")
    client.post(reverse("notifications-read"), {"id": theirs.pk})
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_the_notifications_sent_are_listed_read_only_in_the_admin(
    client, people, superuser, make_campaign
):
    notifications.notify(
        K.FINISHED, users=[people["creator"]], key="k", text="“Winter sale” done."
    )
    client.force_login(superuser)
    url = reverse("admin:campaigns_notification_changelist")
    assert "“Winter sale” done." in client.get(url).content.decode()
    note = Notification.objects.get()
    change = client.get(reverse("admin:campaigns_notification_change", args=[note.pk]))
    assert change.status_code == 200
    assert 'name="text"' not in change.content.decode()  # read only
    assert client.get(reverse("admin:campaigns_notification_add")).status_code == 403
    client.force_login(people["launcher"])  # not theirs
    assert "Winter sale" not in client.get(url).content.decode()
