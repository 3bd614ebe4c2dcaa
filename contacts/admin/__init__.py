"""Admin of the contacts app; one module per area."""

from contacts.admin import directory, imports, ledger  # noqa: F401
