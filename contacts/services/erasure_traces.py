"""What an erasure forgets beyond the contact's own rows (contacts.services.erasure):
the audit trail's summaries and details, Django's admin log, import jobs'
samples, django-q2's kept task arguments and results, django-axes' login
records (a number typed as a username, or in a login URL), and files under
MEDIA_ROOT (pre-send CSVs, exports, import uploads and reports).

Rows are found by relation where one exists (audit and admin-log rows about
the contact or its identities) and otherwise by the person's identifiers
(config.lib.redaction.Redactor); tables that only grow with the number of
contacts' actions are read once per erasure, which is rare.
"""

from pathlib import Path

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django_q.models import OrmQ, Task
from django_q.signing import BadSignature, SignedPackage

from config.lib.redaction import ERASED, Redactor, scrub_files
from contacts.importing.pending_uploads import scrub_pending_uploads
from contacts.models import AuditEvent, ChannelIdentity, Contact, ImportJob


def _mention_filter(redactor: Redactor, *fields: str) -> Q:
    match = Q(pk__in=[])
    for form in redactor.identifiers:
        for name in fields:
            match |= Q(**{f"{name}__contains": form})
    return match


def forget_traces(*, contact_id: int, identity_ids, redactor: Redactor, report) -> None:
    """Redact the person from the tables listed above (inside the erasure's
    transaction); counts go to `report`."""
    report.add("audit rows redacted", _audit_events(contact_id, redactor))
    report.add(
        "admin log entries redacted", _admin_log(contact_id, identity_ids, redactor)
    )
    report.add("import jobs redacted", _import_jobs(redactor))
    report.add("django-q2 task records redacted", _tasks(redactor))
    report.add("login records redacted", _login_records(redactor))


def _audit_events(contact_id: int, redactor: Redactor) -> int:
    about = Q(target_type="contact", target_id=str(contact_id))
    rows = AuditEvent.objects.annotate(details_text=Cast("details", TextField()))
    rows = rows.filter(about | _mention_filter(redactor, "summary", "details_text"))
    changed = 0
    for event in rows.only("pk", "summary", "details", "target_type", "target_id"):
        theirs = event.target_type == "contact" and event.target_id == str(contact_id)
        summary = (
            redactor.redact(event.summary) if theirs else redactor.scrub(event.summary)
        )
        details = redactor.scrub_json(
            event.details, theirs=theirs, contact_id=contact_id
        )
        if (summary, details) != (event.summary, event.details):
            AuditEvent.objects.filter(pk=event.pk)._rewrite_for_erasure(
                summary=summary, details=details
            )
            changed += 1
    return changed


def _admin_log(contact_id: int, identity_ids, redactor: Redactor) -> int:
    types = ContentType.objects.get_for_models(Contact, ChannelIdentity)
    about = Q(content_type=types[Contact], object_id=str(contact_id)) | Q(
        content_type=types[ChannelIdentity],
        object_id__in=[str(pk) for pk in identity_ids],
    )
    entries = LogEntry.objects.filter(
        about | _mention_filter(redactor, "object_repr", "change_message")
    )
    changed = 0
    for entry in entries.only("pk", "object_repr", "change_message"):
        theirs = _is_theirs(entry, types, contact_id, identity_ids)
        scrub = redactor.redact if theirs else redactor.scrub
        repr_ = f"Erased contact #{contact_id}" if theirs else scrub(entry.object_repr)
        message = scrub(entry.change_message)
        if (repr_, message) != (entry.object_repr, entry.change_message):
            LogEntry.objects.filter(pk=entry.pk).update(
                object_repr=repr_[:200], change_message=message
            )
            changed += 1
    return changed


def _is_theirs(entry: LogEntry, types, contact_id: int, identity_ids) -> bool:
    if entry.content_type_id == types[Contact].pk:
        return entry.object_id == str(contact_id)
    return entry.content_type_id == types[ChannelIdentity].pk and entry.object_id in {
        str(pk) for pk in identity_ids
    }


def _import_jobs(redactor: Redactor) -> int:
    changed = 0
    for job in ImportJob.objects.only("pk", "sample_errors", "error"):
        samples = redactor.scrub_json(job.sample_errors)
        error = redactor.scrub(job.error)
        if (samples, error) != (job.sample_errors, job.error):
            ImportJob.objects.filter(pk=job.pk).update(
                sample_errors=samples, error=error
            )
            changed += 1
    return changed


def _tasks(redactor: Redactor) -> int:
    """django-q2 keeps task arguments and results (Success/Failure are views
    of Task) and queued payloads (OrmQ); ours carry ids, so a record that
    mentions the person is a stray: its values are dropped."""
    changed = 0
    for task in Task.objects.all().iterator():
        kept = repr((task.name, task.args, task.kwargs, task.result))
        if redactor.mentions(kept):
            Task.objects.filter(pk=task.pk).update(
                name=redactor.redact(task.name), args=(), kwargs={}, result=ERASED
            )
            changed += 1
    for queued in OrmQ.objects.all().iterator():
        try:
            payload = repr(SignedPackage.loads(queued.payload))
        except BadSignature:
            continue
        if redactor.mentions(payload):
            queued.delete()
            changed += 1
    return changed


def _login_records(redactor: Redactor) -> int:
    """django-axes keeps the username typed at each login and, for failures
    being counted, the login URL's and form's values ("next" is masked by
    AXES_SENSITIVE_PARAMETERS): scrubbed where they mention the person."""
    changed = 0
    counted = ("username", "get_data", "post_data", "user_agent", "path_info")
    for attempt in AccessAttempt.objects.filter(_mention_filter(redactor, *counted)):
        if redactor.mentions(attempt.username or ""):
            # A failure counter for a number typed as a name: dropped, as a
            # rewritten name could collide with another row's.
            attempt.delete()
        else:
            AccessAttempt.objects.filter(pk=attempt.pk).update(
                get_data=redactor.scrub(attempt.get_data),
                post_data=redactor.scrub(attempt.post_data),
                user_agent=redactor.scrub(attempt.user_agent)[:255],
                path_info=redactor.scrub(attempt.path_info)[:255],
            )
        changed += 1
    logged = ("username", "user_agent", "path_info")
    for model in (AccessFailureLog, AccessLog):
        for row in model.objects.filter(_mention_filter(redactor, *logged)):
            model.objects.filter(pk=row.pk).update(
                **{
                    name: redactor.scrub(getattr(row, name) or "")[:255]
                    for name in logged
                }
            )
            changed += 1
    return changed


def forget_files(*, contact_id: int, redactor: Redactor, report) -> None:
    """Rewrite every CSV file under MEDIA_ROOT without the person's rows and
    delete any other file that mentions them. Uploads that are not UTF-8 text
    (workbooks, legacy encodings) are first read as their import reads them."""
    converted = scrub_pending_uploads(redactor)
    rewritten, deleted = scrub_files(Path(settings.MEDIA_ROOT), redactor, contact_id)
    rewritten += converted
    report.add("files rewritten without their rows", rewritten)
    report.add("files deleted", deleted)
