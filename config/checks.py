"""System checks for the keys settings.py reads (registered by contacts' apps.py).

With DEBUG off, a guessable SECRET_KEY lets anyone forge sessions, and a
guessable ERASURE_HASH_KEY lets anyone holding the suppression list test
which numbers were erased. Both are errors, not only under --deploy.
"""

from django.conf import settings
from django.core.checks import Error, register

from config.lib.key_strength import key_problems

# Django's own deploy check asks the same of SECRET_KEY.
SECRET_KEY_MIN_LENGTH = 50
ERASURE_HASH_KEY_MIN_LENGTH = 32
HINT = "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"


@register()
def check_key_strength(app_configs=None, **kwargs):
    if settings.DEBUG:
        return []
    keys = [
        ("SECRET_KEY", settings.SECRET_KEY, SECRET_KEY_MIN_LENGTH, "config.E001"),
        *(
            ("SECRET_KEY_FALLBACKS", key, SECRET_KEY_MIN_LENGTH, "config.E001")
            for key in getattr(settings, "SECRET_KEY_FALLBACKS", [])
        ),
        (
            "ERASURE_HASH_KEY",
            settings.ERASURE_HASH_KEY,
            ERASURE_HASH_KEY_MIN_LENGTH,
            "config.E002",
        ),
    ]
    errors = []
    for name, value, min_length, check_id in keys:
        problems = key_problems(value, min_length=min_length)
        if problems:
            hint = HINT
            if name == "ERASURE_HASH_KEY":
                hint += (
                    ". Changing ERASURE_HASH_KEY breaks the suppression of earlier "
                    "erasures: replace a weak one before the first erasure."
                )
            errors.append(
                Error(
                    f"{name} is too weak for production (DEBUG is off): it "
                    f"{'; it '.join(problems)}.",
                    hint=hint,
                    id=check_id,
                )
            )
    return errors
