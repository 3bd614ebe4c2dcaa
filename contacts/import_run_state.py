"""The fields of an import job that say who runs it and where it resumes
(ImportJob inherits them).

A run claims the job and beats on it (contacts.importing.leases); each chunk
commits the point where a later run resumes (contacts.importing.importer). No
personal data: lines, counts, byte sizes, times, a token and job names.
"""

from django.db import models


class ImportRunState(models.Model):
    claim_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the run (each chunk)."
    )
    waiting_for = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why a queued job has not started yet (e.g. another import runs).",
    )
    checkpoint = models.JSONField(default=dict, blank=True)
    resumes = models.JSONField(
        default=list,
        blank=True,
        help_text="Each time the import resumed after its worker stopped.",
    )

    class Meta:
        abstract = True
