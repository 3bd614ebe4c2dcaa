"""How the contacts' tables point at each other: the references an import
writes a million at a time, with no database constraint."""

from django.db import models


def import_pointer() -> models.ForeignKey:
    """Which import wrote a row: no database constraint nor index (imports
    write a million rows at a time and nothing joins on it)."""
    return models.ForeignKey(
        "ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )


def never_deleted(to, *, on_delete, related_name: str, **options) -> models.ForeignKey:
    """A reference to a contact or an identity, which are erased, never
    deleted (the ledger must stay): no database constraint.

    An import writes three such references per line (identity to contact,
    list membership to contact, ledger entry to identity), and PostgreSQL
    checked each of them again at every commit: about 30 % of its CPU
    in a 1,000,000-row import. Nothing deletes those rows (the admin offers no
    delete for them), and deletes through Django still follow `on_delete`
    (PROTECT refuses, CASCADE deletes), which Django carries out itself
    either way. A reference to a deletable row (a contact list) keeps its
    constraint."""
    return models.ForeignKey(
        to,
        on_delete=on_delete,
        related_name=related_name,
        db_constraint=False,
        **options,
    )
