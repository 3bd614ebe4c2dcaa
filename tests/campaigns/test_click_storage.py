"""Every click is stored, in bulk; an erased person's clicks and links go;
the simulator's recipients open their links through the real redirect."""

import re
import runpy
import threading
import time
from pathlib import Path

import pytest
import requests
from django.db import OperationalError, connections

from campaigns.dispatch import launching
from campaigns.models import Click, Recipient, ShortLink, TrackedLink
from campaigns.tracking import click_buffer, redirect
from contacts.models import Contact
from contacts.services.erasure import erase_contact
from sinch.simulator import clicks as sim_clicks
from tests.campaigns.conftest import through_the_redirect

SALE = "Spring sale: https://shop.example.com/sale. Ends Sunday!"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Mobile/15E148 Safari/604.1"


@pytest.fixture(autouse=True)
def clean_buffer():
    click_buffer._buffer.clear()
    redirect._misses.clear()
    redirect.forget_links()
    yield
    click_buffer.stop()
    click_buffer._buffer.clear()


@pytest.fixture
def launch_tracked(
    settings,
    make_audience,
    make_template,
    make_campaign,
    sender,
    sinch,
    control,
    django_capture_on_commit_callbacks,
):
    """Launch a tracked-links campaign to `n` people on the simulator;
    returns it and {recipient id: code}."""

    def launch(n=3, base="http://go.example.com"):
        settings.SHORT_LINK_BASE_URL = base
        people = make_audience("Buyers", n, phone="+1415555{:04d}")
        template = make_template("Sale", SALE)
        campaign = make_campaign(
            template, [people], "Sale", checked=True, track_links=True
        )
        with django_capture_on_commit_callbacks(execute=True):
            launching.launch(campaign, sender)
        codes = {
            link.recipient_id: link.text
            for link in ShortLink.objects.filter(link__campaign=campaign)
        }
        return campaign, codes

    return launch


def _get(code: str, agent: str = PHONE):
    return through_the_redirect(code, agent)


@pytest.mark.django_db(transaction=True)
def test_clicks_from_many_threads_are_all_stored_while_flushes_run(
    launch_tracked, monkeypatch
):
    monkeypatch.setattr(click_buffer, "_start", lambda: None)
    campaign, codes = launch_tracked(n=5)
    per_thread, threads = 150, 6
    statuses: list[str] = []
    stop = threading.Event()

    def visitor(n: int) -> None:
        mine = list(codes.values())
        for i in range(per_thread):
            statuses.append(_get(mine[(n + i) % len(mine)]))
        connections.close_all()

    def flusher() -> None:
        while not stop.is_set():
            click_buffer.flush()
            time.sleep(0.01)
        connections.close_all()

    flushing = threading.Thread(target=flusher)
    flushing.start()
    visitors = [threading.Thread(target=visitor, args=(n,)) for n in range(threads)]
    for thread in visitors:
        thread.start()
    for thread in visitors:
        thread.join()
    stop.set()
    flushing.join()
    click_buffer.flush()
    assert statuses == ["302 Found"] * (per_thread * threads)
    assert Click.objects.filter(campaign_id=campaign.pk).count() == per_thread * threads
    assert click_buffer.pending() == 0


@pytest.mark.django_db(transaction=True)
def test_a_failed_write_keeps_the_clicks_for_the_next_flush(
    launch_tracked, monkeypatch
):
    monkeypatch.setattr(click_buffer, "_start", lambda: None)
    _, codes = launch_tracked()
    for code in codes.values():
        _get(code)
    real = click_buffer._write

    def database_went_away(entries):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(click_buffer, "_write", database_went_away)
    assert click_buffer.flush() == 0
    assert click_buffer.pending() == 3
    monkeypatch.setattr(click_buffer, "_write", real)
    assert click_buffer.flush() == 3
    assert Click.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_background_flusher_and_gunicorns_worker_exit_write_the_buffer(
    launch_tracked, monkeypatch
):
    _, codes = launch_tracked()
    first, second, third = codes.values()
    _get(first)  # starts the flusher thread of this process
    deadline = time.monotonic() + 5
    while Click.objects.count() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Click.objects.count() == 1
    # A worker leaving (max_requests, SIGTERM) writes what it holds at once.
    monkeypatch.setattr(click_buffer, "_start", lambda: None)
    _get(second)
    _get(third)
    hooks = runpy.run_path(str(Path("config/gunicorn.conf.py")))
    hooks["worker_exit"](None, None)
    assert Click.objects.count() == 3


def test_erasure_removes_the_persons_clicks_and_short_links(
    launch_tracked, compliance_admin, monkeypatch
):
    monkeypatch.setattr(click_buffer, "_start", lambda: None)
    campaign, codes = launch_tracked()
    (gone, gone_code), (kept, kept_code), _ = codes.items()
    _get(gone_code)
    _get(kept_code)
    click_buffer.flush()
    _get(gone_code)  # still in the buffer when the erasure comes
    person = Contact.objects.get(pk=Recipient.objects.get(pk=gone).contact_id)
    erase_contact(contact=person, actor=compliance_admin)
    click_buffer.flush()
    assert not Click.objects.filter(recipient_id=gone).exists()
    assert not ShortLink.objects.filter(recipient_id=gone).exists()
    assert Click.objects.filter(recipient_id=kept).count() == 1
    assert ShortLink.objects.filter(recipient_id=kept).exists()
    assert _get(gone_code) == "404 Not Found"
    # What stays says nothing about them: the link's target is the campaign's.
    assert TrackedLink.objects.get(campaign=campaign).target.startswith("https://shop")


@pytest.mark.django_db(transaction=True)
def test_simulated_recipients_open_their_links_through_the_real_redirect(
    launch_tracked, live_server, control
):
    control.knobs(click_ratio=1.0)
    _, codes = launch_tracked(n=4, base=live_server.url)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        click_buffer.flush()
        if Click.objects.count() >= 4 and sim_clicks.pending() == 0:
            break
        time.sleep(0.1)
    click_buffer.flush()
    stored = Click.objects.filter(is_preview=False)
    assert sorted(stored.values_list("recipient_id", flat=True)) == sorted(codes)
    assert set(stored.values_list("agent", flat=True)) == {"mobile browser"}
    # One recipient opens their link again, on request.
    message = control.state()["messages"][0]
    answer = control.post("click", message_id=message["message_id"])
    (opened,) = answer["opened"]
    assert opened["status"] == 302
    assert re.fullmatch(re.escape(live_server.url) + r"/l/\w{8}", opened["url"])
    by_whatsapp = control.post(
        "click", identity=message["identity"], user_agent="WhatsApp/2.23"
    )
    assert by_whatsapp["opened"][0]["status"] == 302
    click_buffer.flush()
    assert Click.objects.filter(is_preview=False).count() == 5
    assert list(
        Click.objects.filter(is_preview=True).values_list("agent", flat=True)
    ) == ["WhatsApp"]


def test_the_simulator_refuses_a_click_on_nothing(control, sim):
    response = requests.post(f"{sim.url}/_simulator/click", json={}, timeout=5)
    assert response.status_code == 400
    response = requests.post(
        f"{sim.url}/_simulator/click", json={"identity": "+15550000000"}, timeout=5
    )
    assert response.status_code == 404
