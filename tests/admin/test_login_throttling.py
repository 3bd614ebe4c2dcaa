"""Login throttling: after LOGIN_FAILURE_LIMIT wrong passwords, logins from
that address for that username are paused for LOGIN_COOLOFF_MINUTES, with a
page that looks the same whether or not the username exists; the lock-out is
in the audit trail and, with every attempt, in the admin for administrators."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.test import Client

from config.lib.login_throttling import (
    axes_settings,
    forwarded_client_ip,
    parse_lockout_by,
)
from contacts.models import AuditEvent

LOGIN = "/admin/login/?next=/admin/"


def try_login(username: str, password: str, ip: str = "203.0.113.7"):
    return Client(REMOTE_ADDR=ip).post(
        LOGIN, {"username": username, "password": password}
    )


def fail(times: int, username: str, ip: str = "203.0.113.7"):
    return [try_login(username, "wrong", ip) for _ in range(times)]


@pytest.fixture
def limits(settings):
    settings.AXES_FAILURE_LIMIT = settings.LOGIN_FAILURE_LIMIT = 3
    return settings


def test_wrong_passwords_below_the_limit_get_the_usual_login_error(superuser, limits):
    for response in fail(2, "root"):
        assert response.status_code == 200
        assert b"Please enter the correct username and password" in response.content
    assert try_login("root", "pw").status_code == 302  # and logs in


def test_at_the_limit_logins_are_paused_even_with_the_right_password(superuser, limits):
    *_, last = fail(3, "root")
    assert last.status_code == 429
    page = last.content.decode()
    assert "Too many failed logins" in page
    assert "Try again in 15 minutes" in page
    assert "Sinch campaign manager" in page  # the admin's look
    refused = try_login("root", "pw")
    assert refused.status_code == 429
    assert "_auth_user_id" not in refused.wsgi_request.session


def test_the_lock_out_page_is_the_same_for_an_existing_and_an_unknown_username(
    superuser, limits
):
    *_, existing = fail(3, "root", ip="203.0.113.7")
    *_, unknown = fail(3, "nobody-by-that-name", ip="203.0.113.8")
    assert existing.status_code == unknown.status_code == 429
    assert existing.content == unknown.content
    assert b"root" not in existing.content
    # and so are the answers before the limit
    before_existing = try_login("root", "wrong", ip="198.51.100.1")
    before_unknown = try_login("nobody-by-that-name", "wrong", ip="198.51.100.2")
    assert before_existing.status_code == before_unknown.status_code == 200


def test_by_default_a_lock_out_is_per_username_and_address(superuser, limits):
    fail(3, "root", ip="203.0.113.7")
    assert try_login("root", "pw", ip="198.51.100.9").status_code == 302
    assert try_login("someone-else", "x", ip="203.0.113.7").status_code == 200


def test_the_cool_off_is_configurable_and_shown(superuser, limits):
    from datetime import timedelta

    limits.AXES_COOLOFF_TIME = timedelta(minutes=1)
    *_, last = fail(3, "root")
    assert "Try again in 1 minute." in last.content.decode()


def test_a_lock_out_is_audited_once_however_often_it_is_retried(superuser, limits):
    fail(6, "root")
    [event] = AuditEvent.objects.filter(
        action=AuditEvent.Action.USER, target_type="login"
    )
    assert event.actor_label == "login throttling"
    assert event.target_id == "root"
    assert "3 failed attempts" in event.summary
    assert "203.0.113.7" in event.summary
    assert "wrong" not in str(event.details)  # the password tried


def test_attempts_and_lock_outs_are_shown_to_administrators_only(
    superuser, compliance_admin, sender, limits
):
    fail(3, "root")
    assert AccessAttempt.objects.get().failures_since_start == 3
    assert AccessFailureLog.objects.count() == 3
    admin = Client()
    admin.force_login(superuser)
    page = admin.get("/admin/axes/accessattempt/?locked_out=yes")
    assert page.status_code == 200
    assert b"203.0.113.7" in page.content
    for user in (compliance_admin, sender):
        other = Client()
        other.force_login(user)
        assert other.get("/admin/axes/accessattempt/").status_code == 403
        assert other.get("/admin/axes/accessfailurelog/").status_code == 403
        assert b"/admin/axes/" not in other.get("/admin/").content


def test_an_administrator_lifts_a_lock_out_by_deleting_the_attempt(superuser, limits):
    fail(3, "root")
    AccessAttempt.objects.all().delete()
    assert try_login("root", "pw").status_code == 302


@pytest.mark.parametrize(
    ("text", "parameters"),
    [
        ("username+ip", [["username", "ip_address"]]),
        ("ip", ["ip_address"]),
        ("username+ip, ip", [["username", "ip_address"], "ip_address"]),
        ("Username", ["username"]),
    ],
)
def test_lockout_by_setting_reads_as_axes_parameters(text, parameters):
    assert parse_lockout_by(text) == parameters


@pytest.mark.parametrize("text", ["", "email", "username+cookie"])
def test_a_bad_lockout_by_setting_is_refused_with_the_choices(text):
    with pytest.raises(ValueError, match="username"):
        parse_lockout_by(text)


def test_behind_a_proxy_the_forwarded_address_is_counted(rf):
    request = rf.post(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7"
    )
    assert forwarded_client_ip(request) == "203.0.113.7"
    spoofed = rf.post("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="x<script>")
    assert forwarded_client_ip(spoofed) == "10.0.0.1"


def test_a_login_reached_from_a_search_keeps_no_searched_number(db, limits):
    """The admin sends a logged-out search to the login page with ?next=:
    axes keeps request values of failed logins, "next" and passwords masked."""
    Client().post(
        "/admin/login/?next=/admin/contacts/contact/%3Fq%3D14155550101",
        {"username": "mark", "password": "Hunter2!", "next": "?q=14155550101"},
    )
    attempt = AccessAttempt.objects.get()
    kept = attempt.get_data + attempt.post_data
    assert "next=" in kept
    assert "14155550101" not in kept
    assert "Hunter2!" not in kept


@pytest.mark.parametrize(
    ("limit", "minutes", "by", "says"),
    [
        (0, 15, "ip", "LOGIN_FAILURE_LIMIT"),
        (5, 0, "ip", "1 or more"),
        (5, 15, "mac", "LOGIN_LOCKOUT_BY"),
    ],
)
def test_bad_throttling_settings_are_refused_by_name(limit, minutes, by, says):
    with pytest.raises(ValueError, match=says):
        axes_settings(limit, minutes, by, behind_tls_proxy=False)


def test_only_behind_a_proxy_is_the_forwarded_address_believed():
    assert "AXES_CLIENT_IP_CALLABLE" not in axes_settings(
        5, 15, "ip", behind_tls_proxy=False
    )
    behind = axes_settings(5, 15, "ip", behind_tls_proxy=True)
    assert behind["AXES_CLIENT_IP_CALLABLE"].endswith("forwarded_client_ip")
