"""The CSV import flow in the admin: upload, review, re-validate, import, report."""

import csv
import io
import os
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from contacts.models import ChannelIdentity, ConsentEvent, Contact, ImportJob

UPLOAD_URL = reverse("admin:contacts_importjob_upload")

HEADER = ["phone", "first_name", "channel", "consent"]
GOOD_AND_BAD = [
    HEADER,
    ["+14155550101", "Ann", "SMS", "yes"],  # line 2: good
    ["not-a-number", "Bob", "SMS", "yes"],  # line 3: bad number
    ["+14155550102", "Cid", "PIGEON", "yes"],  # line 4: unknown channel
    ["+14155550101", "Ann again", "SMS", "yes"],  # line 5: duplicate of line 2
    ["", "Dan", "SMS", "yes"],  # line 6: missing phone
    ["+14155550103", "Eve", "", "no"],  # line 7: good, default channel, opt-out
]
BAD_LINES = {  # line -> how the reason starts
    3: "invalid SMS identity 'not-a-number'",
    4: "unknown channel 'PIGEON'",
    5: "duplicate in file: SMS +14155550101 is already on line 2",
    6: "missing required value: 'phone' is empty",
}


def url(name, job):
    return reverse(f"admin:contacts_importjob_{name}", args=[job.pk])


def upload(client, path, **options):
    """POST the upload form with sensible options; returns the response."""
    with open(path, "rb") as f:
        data = {
            "file": SimpleUploadedFile(os.path.basename(path), f.read(), "text/csv"),
            "target_list": "",
            "default_channel": "SMS",
            "purpose": "MARKETING",
            "consent_mode": "COLUMN",
            "consent_source": "FORM",
            "consent_evidence": "Web form 'Yes, text me offers', 2025-01-10",
            **options,
        }
    return client.post(UPLOAD_URL, data)


def mapping_post(job, **changes):
    """The review form's fields: the job's mapping with `changes` by header."""
    mapping = {**job.mapping, **changes}
    return {f"map-{i}": mapping[h] for i, h in enumerate(job.headers)}


def report_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploads and reports of each test in a folder of its own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings.MEDIA_ROOT


@pytest.fixture
def admin_client_as(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def validated_job(admin_client_as, compliance_admin, write_csv, make_list):
    client = admin_client_as(compliance_admin)
    response = upload(
        client, write_csv(GOOD_AND_BAD), target_list=make_list("Spring promo").pk
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("review", job)
    return job


def test_review_lists_each_bad_row_with_line_number_and_reason(validated_job, client):
    response = client.get(url("review", validated_job))

    assert response.status_code == 200
    job = response.context["job"]
    assert job.status == ImportJob.Status.VALIDATED
    assert (job.rows_total, job.rows_ok, job.rows_bad) == (6, 2, 4)
    assert {
        e["line"]: e["problem"] for e in job.sample_errors
    }.keys() == BAD_LINES.keys()
    for line, reason in BAD_LINES.items():
        assert f'<td class="number">{line}</td>' in response.text
        assert reason.replace("'", "&#x27;") in response.text
    assert "Import 2 good rows" in response.text
    assert url("report", job) in response.text
    # Nothing is written by the validation.
    assert not Contact.objects.exists()


def test_confirm_imports_the_good_rows_only(
    validated_job, client, compliance_admin, make_contact
):
    outside = make_contact("+14155550199")
    response = client.post(url("confirm", validated_job))

    assert response.status_code == 302
    assert response["Location"] == url("progress", validated_job)
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.DONE
    imported = ChannelIdentity.objects.filter(origin_import=job)
    assert set(imported.values_list("identity", flat=True)) == {
        "+14155550101",
        "+14155550103",
    }
    assert set(
        Contact.objects.exclude(pk=outside.pk).values_list("first_name", flat=True)
    ) == {"Ann", "Eve"}
    assert set(job.target_list.contacts.values_list("first_name", flat=True)) == {
        "Ann",
        "Eve",
    }
    event = ConsentEvent.objects.get(identity__identity="+14155550101")
    assert (event.kind, event.source, event.actor) == (
        "OPT_IN",
        "FORM",
        compliance_admin,
    )

    page = client.get(url("progress", job))
    assert "100 %" in page.text
    assert "Imported 2 rows" in page.text
    contacts = client.get(page.context["list_url"])  # the list's contacts
    assert contacts.status_code == 200
    assert set(contacts.context["cl"].result_list) == set(
        job.target_list.contacts.all()
    )
    assert "http-equiv" not in page.text  # finished: no more refreshing


def test_report_csv_downloads_with_line_numbers(validated_job, client):
    validation = client.get(url("report", validated_job))
    assert validation.status_code == 200
    assert validation["Content-Type"] == "text/csv"
    assert "attachment" in validation["Content-Disposition"]
    rows = report_rows(validation)
    assert rows[0] == ["line", "problem", *HEADER]
    assert {int(r[0]) for r in rows[1:]} == set(BAD_LINES)
    for line, problem, *_values in rows[1:]:
        assert problem.startswith(BAD_LINES[int(line)])
    assert rows[1][2:] == GOOD_AND_BAD[2]  # the original values follow

    client.post(url("confirm", validated_job))
    result = report_rows(client.get(url("report", validated_job)))
    assert {int(r[0]) for r in result[1:]} == set(BAD_LINES)


def test_a_second_confirm_does_not_import_again(validated_job, client):
    client.post(url("confirm", validated_job))
    response = client.post(url("confirm", validated_job), follow=True)

    assert "Nothing to import" in response.text
    assert ConsentEvent.objects.count() == 2


@pytest.mark.parametrize("persona", ["marketer", "viewer"])
def test_roles_without_import_permission_cannot_upload_or_confirm(
    persona, request, client, compliance_admin, write_csv
):
    client.force_login(compliance_admin)
    upload(client, write_csv(GOOD_AND_BAD))
    job = ImportJob.objects.get()
    client.force_login(request.getfixturevalue(persona))

    assert client.get(UPLOAD_URL).status_code == 403
    assert upload(client, write_csv(GOOD_AND_BAD)).status_code == 403
    assert client.post(url("confirm", job)).status_code == 403
    assert client.post(url("revalidate", job), mapping_post(job)).status_code == 403
    assert client.get(url("report", job)).status_code == 403
    assert ImportJob.objects.count() == 1
    assert not Contact.objects.exists()


def test_non_staff_are_sent_to_the_login_page(client, outsider):
    client.force_login(outsider)
    response = client.get(UPLOAD_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_state_changing_views_accept_post_only(validated_job, client):
    assert client.get(url("confirm", validated_job)).status_code == 405
    assert client.get(url("revalidate", validated_job)).status_code == 405
    assert ImportJob.objects.get().status == ImportJob.Status.VALIDATED


def test_missing_evidence_is_a_form_error_and_nothing_is_created(
    client, compliance_admin, write_csv, make_list, media_root
):
    client.force_login(compliance_admin)
    target = make_list("Newsletter")
    response = upload(
        client,
        write_csv(GOOD_AND_BAD),
        consent_evidence="   ",
        target_list=target.pk,
        purpose="TRANSACTIONAL",
    )

    assert response.status_code == 200
    assert "the evidence (e.g. the sign-up form wording and date) is required" in (
        response.text
    )
    assert "choose the file again" in response.text
    form = response.context["form"]
    assert form.data["purpose"] == "TRANSACTIONAL"  # what the user entered is kept
    assert f'<option value="{target.pk}" selected>' in response.text
    assert not ImportJob.objects.exists()
    assert not Contact.objects.exists()
    # The stored upload was removed again.
    assert not os.listdir(os.path.join(media_root, "imports"))


def test_an_empty_file_is_a_form_error(client, compliance_admin, tmp_path):
    client.force_login(compliance_admin)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    response = upload(client, str(empty))
    assert response.status_code == 200
    assert "The submitted file is empty." in response.text
    assert not ImportJob.objects.exists()


def test_no_evidence_is_needed_without_consent_information(
    client, compliance_admin, write_csv
):
    client.force_login(compliance_admin)
    response = upload(
        client, write_csv(GOOD_AND_BAD), consent_mode="NONE", consent_evidence=""
    )
    assert response.status_code == 302
    assert ImportJob.objects.get().status == ImportJob.Status.VALIDATED


def test_semicolon_utf8_bom_file_with_quoted_newline_imports(
    client, compliance_admin, write_csv
):
    client.force_login(compliance_admin)
    path = write_csv(
        [
            ["Mobile", "First name", "Notes", "Opt-in"],
            ["+14155550111", "Zoë", "line one\nline two; still notes", "yes"],
            ["+14155550112", "Jürgen", "plain", "1"],
        ],
        delimiter=";",
        bom=True,
    )
    upload(client, path)
    job = ImportJob.objects.get()
    assert (job.delimiter, job.headers[0]) == (";", "Mobile")
    assert (job.rows_ok, job.rows_bad) == (2, 0)

    client.post(url("confirm", job))

    zoe = Contact.objects.get(identities__identity="+14155550111")
    assert zoe.first_name == "Zoë"
    assert zoe.attributes == {"notes": "line one\nline two; still notes"}
    assert Contact.objects.get(identities__identity="+14155550112").first_name == (
        "Jürgen"
    )


def test_revalidate_with_a_changed_mapping_changes_the_result(validated_job, client):
    # With the channel column ignored, the PIGEON row is read as default SMS.
    response = client.post(
        url("revalidate", validated_job), mapping_post(validated_job, channel="ignore")
    )

    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.mapping["channel"] == "ignore"
    assert (job.status, job.rows_ok, job.rows_bad) == ("VALIDATED", 3, 3)
    assert 4 not in {e["line"] for e in job.sample_errors}
    change = LogEntry.objects.filter(object_id=str(job.pk)).latest("action_time")
    assert change.get_change_message() == "Re-validated. channel: channel -> ignore"


def test_revalidate_with_an_unusable_mapping_explains_and_keeps_the_job(
    validated_job, client
):
    response = client.post(
        url("revalidate", validated_job), mapping_post(validated_job, phone="ignore")
    )

    assert response.status_code == 200
    assert "No column is mapped to the phone number" in response.text
    assert "Import 2 good rows" not in response.text
    assert ImportJob.objects.get().mapping["phone"] == "identity"


def test_confirm_refuses_a_mapping_changed_since_the_validation(validated_job, client):
    response = client.post(
        url("confirm", validated_job),
        mapping_post(validated_job, first_name="ignore"),
        follow=True,
    )

    assert "re-validate it first" in response.text
    assert ImportJob.objects.get().status == ImportJob.Status.VALIDATED
    assert not Contact.objects.exists()


def test_large_file_goes_through_the_worker_and_completes(
    client,
    compliance_admin,
    write_csv,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.IMPORT_BACKGROUND_BYTES = 10
    client.force_login(compliance_admin)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        upload(client, write_csv(GOOD_AND_BAD))
    assert len(queued) == 1
    job = ImportJob.objects.get()
    assert (job.status, job.rows_ok) == (ImportJob.Status.VALIDATED, 2)

    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = client.post(url("confirm", job), follow=True)
    assert len(queued) == 1
    assert "queued for the background worker" in response.text

    page = client.get(url("progress", job))
    assert page.context["job"].status == ImportJob.Status.DONE
    assert "100 %" in page.text
    assert Contact.objects.count() == 2


def test_pages_refresh_and_warn_when_no_worker_takes_the_job(
    client,
    compliance_admin,
    write_csv,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.IMPORT_BACKGROUND_BYTES = 10
    client.force_login(compliance_admin)
    with django_capture_on_commit_callbacks(execute=False):  # no worker runs
        upload(client, write_csv(GOOD_AND_BAD))
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.VALIDATING

    fresh = client.get(url("review", job))
    assert '<meta http-equiv="refresh" content="2">' in fresh.text
    assert "qcluster" not in fresh.text

    LogEntry.objects.update(action_time=timezone.now() - timedelta(minutes=1))
    ImportJob.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    stale = client.get(url("review", job))
    assert "the background worker seems not to be running" in stale.text
    assert "manage.py qcluster" in stale.text

    ImportJob.objects.update(status=ImportJob.Status.QUEUED)
    progress = client.get(url("progress", job))
    assert '<meta http-equiv="refresh" content="2">' in progress.text
    assert "manage.py qcluster" in progress.text


def test_changelist_lists_imports_and_add_leads_to_the_upload(
    validated_job, client, viewer
):
    changelist = client.get(reverse("admin:contacts_importjob_changelist"))
    assert changelist.status_code == 200
    assert "contacts.csv" in changelist.text
    assert "carla" in changelist.text
    add = client.get(reverse("admin:contacts_importjob_add"))
    assert add["Location"] == UPLOAD_URL
    opened = client.get(
        reverse("admin:contacts_importjob_change", args=[validated_job.pk])
    )
    assert opened["Location"] == url("review", validated_job)

    client.force_login(viewer)
    read_only = client.get(reverse("admin:contacts_importjob_changelist"))
    assert read_only.status_code == 200
    assert UPLOAD_URL not in read_only.text
    detail = client.get(
        reverse("admin:contacts_importjob_change", args=[validated_job.pk])
    )
    assert detail.status_code == 200  # the read-only record, not the import pages
    assert 'name="_save"' not in detail.text


def test_review_escapes_the_file_contents(client, compliance_admin, write_csv):
    client.force_login(compliance_admin)
    upload(
        client,
        write_csv(
            [["phone", "<script>alert(1)</script>"], ["+14155550101", "<b>x</b>"]]
        ),
        consent_mode="NONE",
    )
    response = client.get(url("review", ImportJob.objects.get()))

    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "&lt;b&gt;x&lt;/b&gt;" in response.text
