"""The CSV import flow in the admin: upload, review, import, progress, report.

The work is done by contacts.importing.jobs; these views collect the user's
choices, call it and show the job. Every view needs contacts.import_contacts.
"""

import os
from contextlib import closing
from datetime import timedelta
from itertools import islice

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import AdminForm
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from contacts.importing import jobs
from contacts.importing.importer import COUNTERS
from contacts.importing.mapping import FIELDS, IGNORE
from contacts.importing.source import CsvFileError, CsvRows
from contacts.models import ConsentEvent, ContactList, ImportJob, Purpose
from sinch.channels import Channel

PERMISSION = "contacts.import_contacts"
Status = ImportJob.Status
ACTIVE = (Status.QUEUED, Status.VALIDATING, Status.RUNNING)
BEFORE_IMPORT = (Status.UPLOADED, Status.VALIDATING, Status.VALIDATED)
REVALIDATABLE = (Status.UPLOADED, Status.VALIDATED, Status.FAILED)
WORKER_PATIENCE = timedelta(seconds=30)
REFRESH_SECONDS = 2
EXAMPLE_ROWS = 3


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 (with or without BOM), comma- or semicolon-separated, "
        "with a header line naming the columns.",
    )
    target_list = forms.ModelChoiceField(
        queryset=ContactList.objects.order_by("name"),
        required=False,
        empty_label="(no list)",
        help_text="The imported contacts are added to this list.",
    )
    default_channel = forms.ChoiceField(
        choices=Channel.choices,
        initial=Channel.SMS,
        help_text="Used for rows without a channel column or value.",
    )
    purpose = forms.ChoiceField(
        choices=Purpose.choices,
        initial=Purpose.MARKETING,
        help_text="The consent the file's consent information is about.",
    )
    consent_mode = forms.ChoiceField(
        label="Consent",
        choices=ImportJob.ConsentMode.choices,
        initial=ImportJob.ConsentMode.COLUMN,
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
    )
    consent_source = forms.ChoiceField(
        # Erasure is the erasure service's own source, never an import's.
        choices=[
            (value, label)
            for value, label in ConsentEvent.Source.choices
            if value != ConsentEvent.Source.ERASURE
        ],
        initial=ConsentEvent.Source.IMPORT,
        help_text="How the people in the file gave (or withdrew) their consent.",
    )
    consent_evidence = forms.CharField(
        label="Evidence",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Where the consent comes from, e.g. the sign-up form wording and "
        "date. Required unless the file has no consent information.",
    )


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("file", "status", "rows_ok", "rows_bad", "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    search_fields = ("original_name",)
    fieldsets = [
        (None, {"fields": ["original_name", "status", "error", "created_by"]}),
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
    ]
    readonly_fields = [f for _name, options in fieldsets for f in options["fields"]]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("sample_errors", "headers")

    @admin.display(description="file", ordering="original_name")
    def file(self, job: ImportJob) -> str:
        return job.original_name

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
            title="Import contacts from a CSV file",
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
            jobs.check_mapping(job)
        except jobs.ImportSetupError as exc:
            return self._render_review(request, job, mapping_error=str(exc))
        job.save(update_fields=["mapping"])
        changes = [
            f"{h}: {before.get(h)} -> {f}"
            for h, f in job.mapping.items()
            if before.get(h) != f
        ]
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
            can_revalidate=job.status in REVALIDATABLE,
            list_url=self._list_contacts_url(job),
        )

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
        return self._render(
            request,
            "review.html",
            title=f"Review import: {job.original_name}",
            job=job,
            columns=columns,
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
    """The first few records of the file, to show beside the mapping."""
    try:
        with closing(iter(CsvRows(job.file_path, job.delimiter))) as records:
            return [values for _line, values in islice(records, EXAMPLE_ROWS)]
    except (OSError, CsvFileError):
        return []
