"""Login throttling (django-axes): its settings from ours, the client's
address behind a proxy, and the lock-out page."""

import ipaddress
from datetime import timedelta

CRITERIA = {"ip": "ip_address", "username": "username"}


def parse_lockout_by(text: str) -> list:
    """LOGIN_LOCKOUT_BY as django-axes' AXES_LOCKOUT_PARAMETERS:
    "username+ip,ip" -> [["username", "ip_address"], "ip_address"]."""
    parameters: list = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        names = [name.strip().lower() for name in item.split("+")]
        unknown = [name for name in names if name not in CRITERIA]
        if unknown:
            raise ValueError(
                f"unknown criterion {unknown[0]!r} in {item!r}: use ip, username "
                "or username+ip, several separated by commas"
            )
        fields = [CRITERIA[name] for name in names]
        parameters.append(fields[0] if len(fields) == 1 else fields)
    if not parameters:
        raise ValueError("empty: use username+ip, ip or username")
    return parameters


def axes_settings(
    failure_limit: int, cooloff_minutes: int, lockout_by: str, *, behind_tls_proxy
) -> dict:
    """The AXES_* settings for LOGIN_FAILURE_LIMIT, LOGIN_COOLOFF_MINUTES and
    LOGIN_LOCKOUT_BY; ValueError names a bad one."""
    if failure_limit < 1 or cooloff_minutes < 1:
        raise ValueError(
            "LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be 1 or more "
            f"(got {failure_limit} and {cooloff_minutes})."
        )
    try:
        parameters = parse_lockout_by(lockout_by)
    except ValueError as exc:
        raise ValueError(f"LOGIN_LOCKOUT_BY: {exc}") from None
    axes = {
        "AXES_LOCKOUT_PARAMETERS": parameters,
        "AXES_FAILURE_LIMIT": failure_limit,
        "AXES_COOLOFF_TIME": timedelta(minutes=cooloff_minutes),
        "AXES_RESET_ON_SUCCESS": True,
        "AXES_ENABLE_ACCESS_FAILURE_LOG": True,
        # Masked where axes keeps or logs a request's values ("password"
        # always is): "next" can hold an admin search for a phone number.
        "AXES_SENSITIVE_PARAMETERS": ["username", "ip_address", "next"],
        "AXES_LOCKOUT_CALLABLE": "config.lib.login_throttling.lockout_page",
    }
    if behind_tls_proxy:
        # Every request comes from the proxy: count the address it forwarded.
        axes["AXES_CLIENT_IP_CALLABLE"] = (
            "config.lib.login_throttling.forwarded_client_ip"
        )
    return axes


def forwarded_client_ip(request) -> str | None:
    """The client's address as the TLS proxy in front saw it: the last entry
    of X-Forwarded-For (earlier ones are the client's own claims)."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return request.META.get("REMOTE_ADDR")


def lockout_page(request, original_response=None, credentials=None):
    """The answer to a login refused for too many failures (AXES_LOCKOUT_CALLABLE):
    the same page whether or not the username exists, in the admin's look."""
    from axes.helpers import get_cool_off
    from django.conf import settings
    from django.contrib import admin
    from django.template.response import TemplateResponse

    cool_off = get_cool_off(request)
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else None
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed logins",
        "minutes": minutes,
    }
    return TemplateResponse(
        request,
        "admin/login_locked_out.html",
        context,
        status=settings.AXES_HTTP_RESPONSE_CODE,
    ).render()


# Permissions live in the model backend (axes' backend before it holds none);
# with two backends, User.objects.with_perm must be told which.
PERMISSION_BACKEND = "django.contrib.auth.backends.ModelBackend"
