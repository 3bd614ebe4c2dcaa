"""The import flow in the admin: upload, review, import, progress, report;
discard a pending import.

The work is done by contacts.importing.jobs; these views collect the user's
choices, call it and show the job. Every view needs contacts.import_contacts.
"""

import os
from contextlib import closing
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import AdminForm
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from contacts.admin.import_form import ImportUploadForm
from contacts.importing import jobs
from contacts.importing.encodings import ENCODINGS, label
from contacts.importing.importer import COUNTERS
from contacts.importing.layout import records
from contacts.importing.mapping import FIELDS, IGNORE
from contacts.models import ImportJob

PERMISSION = "contacts.import_contacts"
Status = ImportJob.Status
ACTIVE = (Status.QUEUED, Status.VALIDATING, Status.RUNNING)
BEFORE_IMPORT = (Status.UPLOADED, Status.VALIDATING, Status.VALIDATED)
REVALIDATABLE = (Status.UPLOADED, Status.VALIDATED, Status.FAILED)
WORKER_PATIENCE = timedelta(seconds=30)
REFRESH_SECONDS = 2
EXAMPLE_ROWS = 5


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("file", "status", "rows_ok", "rows_bad", "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    search_fields = ("original_name",)
    fieldsets = [
        (None, {"fields": ["original_name", "status", "error", "created_by"]}),
        ("Reading", {"fields": ["file_format", "encoding", "date_order"]}),
        (
            "Options",
            {
                "fields": [
                    "target_list",
                    "default_channel",
                    "purpose",
                    "consent_mode",
                    "consent_source",
                    "consent_evidence",
                ]
            },
        ),
        (
            "Counters",
            {"fields": list(COUNTERS)},
        ),
        ("Times", {"fields": ["created_at", "started_at", "finished_at"]}),
        (
            "Worker",
            {"fields": ["waiting_for", "heartbeat_at", "resume_point", "recovery"]},
        ),
    ]
    readonly_fields = [f for _name, options in fieldsets for f in options["fields"]]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("sample_errors", "headers")

    @admin.display(description="file", ordering="original_name")
    def file(self, job: ImportJob) -> str:
        return job.original_name

    @admin.display(description="Resumes after line")
    def resume_point(self, job: ImportJob) -> int:
        return job.checkpoint.get("line", 0)

    @admin.display(description="Worker stops and resumes")
    def recovery(self, job: ImportJob) -> str:
        return (
            format_html_join(
                mark_safe("<br>"), "{}", ((n,) for n in jobs.recovery_notes(job))
            )
            or "none"
        )

    def has_add_permission(self, request):
        return request.user.has_perm(PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Consent events and identities point at their import: keep the record.
        return False

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:contacts_importjob_upload"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, unquote(object_id))
        if job is not None and request.user.has_perm(PERMISSION):
            return HttpResponseRedirect(self._page_url(job))
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        def view(route, func, name, post_only=False):
            func = require_POST(func) if post_only else func
            name = f"contacts_importjob_{name}"
            return path(route, self.admin_site.admin_view(func), name=name)

        return [
            view("upload/", self.upload_view, "upload"),
            view("<int:job_id>/review/", self.review_view, "review"),
            view("<int:job_id>/revalidate/", self.revalidate_view, "revalidate", True),
            view("<int:job_id>/confirm/", self.confirm_view, "confirm", True),
            view("<int:job_id>/progress/", self.progress_view, "progress"),
            view(
                "<int:job_id>/progress.json", self.progress_json_view, "progress_json"
            ),
            view("<int:job_id>/discard/", self.discard_view, "discard"),
            view("<int:job_id>/report/", self.report_view, "report"),
            *super().get_urls(),
        ]

    # --- views ----------------------------------------------------------------

    def upload_view(self, request):
        self._check_permission(request)
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            job = self._create_job(request, form)
            if job is not None:
                return HttpResponseRedirect(self._url("review", job))
        fieldsets = [(None, {"fields": list(form.base_fields)})]
        return self._render(
            request,
            "upload.html",
            title="Import contacts from a CSV or Excel file",
            form=form,
            adminform=AdminForm(form, fieldsets, {}),
        )

    def review_view(self, request, job_id):
        job = self._get_job(request, job_id)
        if job.status not in BEFORE_IMPORT and job.status != Status.FAILED:
            return HttpResponseRedirect(self._url("progress", job))
        return self._render_review(request, job)

    def revalidate_view(self, request, job_id):
        job = self._get_job(request, job_id)
        if job.status not in REVALIDATABLE:
            messages.warning(request, f"This import is {job.get_status_display()}.")
            return HttpResponseRedirect(self._page_url(job))
        before = job.mapping
        try:
            job.mapping = self._posted_mapping(request, job)
            changes = [
                f"{h}: {before.get(h)} -> {f}"
                for h, f in job.mapping.items()
                if before.get(h) != f
            ]
            changes += jobs.change_reading(
                job,
                encoding=request.POST.get("encoding", job.encoding),
                date_order=request.POST.get("date_order", job.date_order),
            )
            jobs.check_mapping(job)
        except jobs.ImportSetupError as exc:
            job.refresh_from_db()
            return self._render_review(request, job, mapping_error=str(exc))
        job.save(
            update_fields=[
                "mapping",
                "headers",
                "delimiter",
                "encoding",
                "encoding_chosen",
                "date_order",
            ]
        )
        # Logged before start(): the entry's time is when the wait for a worker began.
        self.log_change(request, job, f"Re-validated. {'; '.join(changes)}".strip())
        jobs.start(job, dry_run=True)
        return HttpResponseRedirect(self._url("review", job))

    def confirm_view(self, request, job_id):
        job = self._get_job(request, job_id)
        if "map-0" in request.POST:
            try:
                changed = self._posted_mapping(request, job) != job.mapping
            except jobs.ImportSetupError:
                changed = True
            if changed:
                messages.error(
                    request, "The column mapping was changed: re-validate it first."
                )
                return HttpResponseRedirect(self._url("review", job))
        if request.POST.get("encoding", job.encoding) != job.encoding or (
            request.POST.get("date_order", job.date_order) != job.date_order
        ):
            messages.error(
                request,
                "The encoding or the date order was changed: re-validate first.",
            )
            return HttpResponseRedirect(self._url("review", job))
        ran_inline = jobs.confirm(job, actor=request.user)
        if ran_inline is None:
            messages.warning(
                request,
                f"Nothing to import: the import is {job.get_status_display()} "
                f"with {job.rows_ok} good rows.",
            )
            return HttpResponseRedirect(self._page_url(job))
        job.refresh_from_db()
        self.log_change(request, job, f"Confirmed the import of {job.rows_ok} rows.")
        if not ran_inline:
            messages.info(request, "The import is queued for the background worker.")
        elif job.status == Status.FAILED:
            messages.error(request, f"The import failed: {job.error}")
        else:
            messages.success(request, self._summary(job))
        return HttpResponseRedirect(self._url("progress", job))

    def progress_view(self, request, job_id):
        job = self._get_job(request, job_id)
        if job.status in BEFORE_IMPORT:
            return HttpResponseRedirect(self._url("review", job))
        return self._render(
            request,
            "progress.html",
            title=f"Import: {job.original_name}",
            job=job,
            refresh=REFRESH_SECONDS if job.status in ACTIVE else None,
            waiting_for_worker=self._waiting_for_worker(job),
            waiting_for=job.waiting_for if job.status == Status.QUEUED else "",
            recovery=jobs.recovery_notes(job),
            can_revalidate=job.status in REVALIDATABLE,
            list_url=self._list_contacts_url(job),
        )

    def progress_json_view(self, request, job_id):
        """The job's progress for scripts and the progress page: never lower
        than what it said before during a run (see jobs.progress_of)."""
        job = self._get_job(request, job_id)
        return JsonResponse(jobs.progress_of(job))

    def discard_view(self, request, job_id):
        """Confirm (GET), then discard (POST) a pending import."""
        job = self._get_job(request, job_id)
        if job.status not in jobs.PENDING:
            messages.warning(
                request,
                f"This import is {job.get_status_display()}: only an import that "
                "has not been confirmed can be discarded.",
            )
            return HttpResponseRedirect(self._page_url(job))
        if request.method != "POST":
            return self._render(
                request,
                "discard.html",
                title="Discard this import?",
                job=job,
                imported_before=job.report_file.endswith("-result.csv") and job.rows_ok,
            )
        if jobs.discard(job, actor=request.user):
            self.log_change(request, job, "Discarded; the uploaded file was deleted.")
            kept = (
                f"the {job.rows_ok} rows imported before it failed stay"
                if job.report_file
                else "nothing was imported"
            )
            messages.success(
                request,
                f"The import of {job.original_name} was discarded: {kept}, and "
                "the uploaded file was deleted.",
            )
        return HttpResponseRedirect(reverse("admin:contacts_importjob_changelist"))

    def report_view(self, request, job_id):
        job = self._get_job(request, job_id)
        report = os.path.realpath(job.report_file) if job.report_file else ""
        root = os.path.realpath(settings.MEDIA_ROOT) + os.sep
        if not report.startswith(root) or not os.path.isfile(report):
            raise Http404("This import has no report.")
        return FileResponse(
            open(report, "rb"),  # FileResponse closes it
            as_attachment=True,
            filename=os.path.basename(report),
            content_type="text/csv",
        )

    # --- helpers --------------------------------------------------------------

    def _create_job(self, request, form) -> ImportJob | None:
        data = form.cleaned_data
        stored = jobs.store_upload(data["file"])
        try:
            job = jobs.create_import_job(
                path=stored,
                original_name=data["file"].name,
                actor=request.user,
                target_list=data["target_list"],
                default_channel=data["default_channel"],
                purpose=data["purpose"],
                consent_mode=data["consent_mode"],
                consent_source=data["consent_source"],
                consent_evidence=data["consent_evidence"],
                encoding=data["encoding"],
                date_order=data["date_order"],
            )
        except jobs.ImportSetupError as exc:
            os.remove(stored)
            form.add_error(None, str(exc))
            return None
        self.log_addition(request, job, "Uploaded for import.")
        jobs.start(job, dry_run=True)
        return job

    def _render_review(self, request, job, mapping_error=""):
        examples = _example_rows(job)
        columns = [
            {
                "index": i,
                "header": header,
                "field": job.mapping.get(header, IGNORE),
                "examples": [row[i] for row in examples if i < len(row)],
            }
            for i, header in enumerate(job.headers)
        ]
        validated = job.status == Status.VALIDATED
        pending = job.status in jobs.PENDING
        return self._render(
            request,
            "review.html",
            title=f"Review import: {job.original_name}",
            job=job,
            columns=columns,
            sample_rows=[_padded(row, len(job.headers)) for row in examples],
            encoding_label=label(job.encoding),
            encodings=ENCODINGS.items(),
            date_orders=ImportJob.DateOrder.choices,
            is_workbook=job.file_format == ImportJob.FileFormat.XLSX,
            can_discard=pending,
            fields=FIELDS.items(),
            mapping_error=mapping_error,
            show_result=validated or (job.status == Status.FAILED and job.rows_total),
            can_import=validated and job.rows_ok > 0 and not mapping_error,
            can_revalidate=job.status in REVALIDATABLE,
            refresh=REFRESH_SECONDS if job.status == Status.VALIDATING else None,
            waiting_for_worker=self._waiting_for_worker(job),
        )

    def _render(self, request, template, **context):
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            f"admin/contacts/importjob/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                **(
                    {"job_state": jobs.state_of(context["job"])}
                    if "job" in context
                    else {}
                ),
                **context,
            },
        )

    def _check_permission(self, request) -> None:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied

    def _get_job(self, request, job_id) -> ImportJob:
        self._check_permission(request)
        return get_object_or_404(ImportJob, pk=job_id)

    @staticmethod
    def _url(page: str, job: ImportJob) -> str:
        return reverse(f"admin:contacts_importjob_{page}", args=[job.pk])

    def _page_url(self, job: ImportJob) -> str:
        return self._url("review" if job.status in BEFORE_IMPORT else "progress", job)

    @staticmethod
    def _posted_mapping(request, job: ImportJob) -> dict[str, str]:
        mapping = {}
        for i, header in enumerate(job.headers):
            field = request.POST.get(f"map-{i}", IGNORE)
            if field not in FIELDS:
                raise jobs.ImportSetupError(f"Unknown field {field!r} for {header!r}.")
            mapping[header] = field
        return mapping

    def _waiting_for_worker(self, job: ImportJob) -> bool:
        """Whether a queued job has waited so long that no worker seems to run."""
        if job.status not in (Status.QUEUED, Status.VALIDATING):
            return False
        queued_at = (
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(ImportJob),
                object_id=str(job.pk),
            )
            .order_by("-action_time")
            .values_list("action_time", flat=True)
            .first()
        ) or job.created_at
        if job.started_at and job.started_at >= queued_at:
            return False  # a worker has picked it up
        return timezone.now() - queued_at > WORKER_PATIENCE

    @staticmethod
    def _list_contacts_url(job: ImportJob) -> str:
        if not job.target_list_id:
            return ""
        try:
            url = reverse("admin:contacts_contact_changelist")
        except NoReverseMatch:
            return ""
        return f"{url}?list={job.target_list_id}"  # ListFilter's parameter

    @staticmethod
    def _summary(job: ImportJob) -> str:
        return (
            f"Imported {job.rows_ok} rows ({job.rows_bad} rejected): "
            f"{job.contacts_created} contacts created, {job.contacts_merged} merged."
        )


def _example_rows(job: ImportJob) -> list[list[str]]:
    """The first few records of the file as read (decoded), for the review."""
    try:
        with closing(iter(records(job))) as rows:
            return [values for _line, values in islice(rows, EXAMPLE_ROWS)]
    except (OSError, ValueError):
        return []


def _padded(row: list[str], width: int) -> list[str]:
    return row + [""] * (width - len(row))
