"""
WSGI config for config project.

It exposes the WSGI callable as a module-level variable named ``application``.
Short links (/l/<code>, campaigns.tracking.redirect) are answered before
Django's request handling: no middleware (sessions, auth, axes) is needed to
answer a 302, and the redirect must serve thousands per second.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_wsgi_application()

from campaigns.tracking import redirect  # noqa: E402  (needs Django set up)


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(redirect.PREFIX):
        return redirect.wsgi_app(environ, start_response)
    return django_application(environ, start_response)
