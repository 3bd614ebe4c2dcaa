import pytest

from contacts.importing import jobs
from contacts.models import ImportJob


@pytest.fixture
def column_consent_import(db, write_csv, compliance_admin):
    """A pending import of `rows`, consent read from the file's column, for
    marketing SMS, by a compliance admin (onto `target_list`, if given)."""

    def make(
        rows: list[list[str]], name: str = "contacts.csv", target_list=None
    ) -> ImportJob:
        return jobs.create_import_job(
            path=write_csv(rows, name=name),
            original_name=name,
            actor=compliance_admin,
            target_list=target_list,
            default_channel="SMS",
            purpose="MARKETING",
            consent_mode=ImportJob.ConsentMode.COLUMN,
            consent_source="IMPORT",
            consent_evidence="Shop sign-up form",
        )

    return make
