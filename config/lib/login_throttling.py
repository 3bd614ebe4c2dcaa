"""Settings helpers for login throttling (django-axes)."""

import ipaddress

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
