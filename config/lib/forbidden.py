"""The page a refused request gets (handler403): admin-styled, and saying
which role may do what was refused.

A view that refuses says so in its PermissionDenied ("Only a Sender can
launch a campaign.", contacts.roles.refusal). A bare PermissionDenied raised
by one of Django's own admin views (list, add, change, delete, history) is
explained from the URL: the model's permission and the roles that hold it.
"""

from django.contrib import admin
from django.shortcuts import render

from contacts.roles import refusal

# Django's admin views -> (permission codename prefix, what it lets one do).
_ADMIN_VIEWS = {
    "changelist": ("view", "see the {plural}"),
    "add": ("add", "add {a} {name}"),
    "change": ("view", "open this {name}"),
    "history": ("view", "see the history of this {name}"),
    "delete": ("delete", "delete this {name}"),
}
# Our own admin views that refuse with a bare PermissionDenied: by URL name,
# and by URL name prefix (every view of the imports).
_OWN_VIEWS = {
    "contacts_contact_erase": ("contacts.erase_contact", "erase a person's data"),
    "contacts_contact_record_consent": ("contacts.record_consent", "record consent"),
    "contacts_contact_replace_identity": (
        "contacts.change_channelidentity",
        "replace a contact's number",
    ),
}
_OWN_PREFIXES = {"contacts_importjob_": ("contacts.import_contacts", "import contacts")}
GENERIC = "You may not open this page: ask an administrator for the role it needs."


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def admin_refusal(url_name: str) -> str:
    """The refusal for an admin view, by URL name ("" if none is known)."""
    if url_name in _OWN_VIEWS:
        return refusal(*_OWN_VIEWS[url_name])
    for model in admin.site._registry:
        opts = model._meta
        prefix = f"{opts.app_label}_{opts.model_name}_"
        view = url_name.removeprefix(prefix)
        if url_name.startswith(prefix) and view in _ADMIN_VIEWS:
            action, doing = _ADMIN_VIEWS[view]
            name = str(opts.verbose_name)
            return refusal(
                f"{opts.app_label}.{action}_{opts.model_name}",
                doing.format(
                    a=_article(name), name=name, plural=opts.verbose_name_plural
                ),
            )
    for prefix, (perm, doing) in _OWN_PREFIXES.items():
        if url_name.startswith(prefix):
            return refusal(perm, doing)
    return ""


def permission_denied(request, exception=None):
    """handler403: the reason given, or one worked out from the admin URL."""
    reason = str(exception or "")
    match = getattr(request, "resolver_match", None)
    if not reason and match and match.url_name:
        reason = admin_refusal(match.url_name)
    context = {"title": "Not allowed", "reason": reason or GENERIC}
    if request.user.is_authenticated and request.user.is_staff:
        context.update(admin.site.each_context(request))
    return render(request, "admin/403.html", context, status=403)
