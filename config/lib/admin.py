"""Admin building blocks shared by the apps."""


class ReadOnlyAdminMixin:
    """Nobody adds, changes or deletes rows here, superusers included: for
    ledgers, inboxes and rows only the product's own code writes."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# The largest id a database key holds (PostgreSQL bigint).
MAX_ID = 2**63 - 1


def id_value(text) -> int | None:
    """`text` as a row id, or None unless it is plain ASCII digits in range.

    str.isdigit() alone also accepts "²" and "١٢" (which int() refuses or
    reads differently), and a 30-digit number overflows the database's key.
    """
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()):
        return None
    if len(text) > 19 or int(text) > MAX_ID:
        return None
    return int(text)


def ignore_filter_value(request, title: str, value: str) -> None:
    """Say on the page that a filter value was ignored (rather than a 500)."""
    from django.contrib import messages

    shown = value if len(value) <= 40 else value[:40] + "…"
    messages.warning(
        request, f"The {title} filter value “{shown}” is not valid; it is ignored."
    )


class DateHierarchyGuardMixin:
    """A date-hierarchy value that is no year, month or day is dropped with a
    message; Django's own check lets an over-long number raise OverflowError
    (a 500)."""

    _DATE_PARTS = {"year": 9999, "month": 12, "day": 31}

    def changelist_view(self, request, extra_context=None):
        if self.date_hierarchy:
            bad = [
                key
                for part, top in self._DATE_PARTS.items()
                if (key := f"{self.date_hierarchy}__{part}") in request.GET
                and not 1 <= (id_value(request.GET[key]) or 0) <= top
            ]
            if bad:
                query = request.GET.copy()
                for key in bad:
                    ignore_filter_value(request, "date", query.pop(key)[0])
                request.GET = query
        return super().changelist_view(request, extra_context)


class _IdRangeGuard:
    """Mixed into a model choice field: an id no database key can hold is an
    invalid choice, not an OverflowError from SQLite (a 500)."""

    def clean(self, value):
        from django.core.exceptions import ValidationError

        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            text = str(item).strip() if item is not None else ""
            digits = text.removeprefix("-").removeprefix("+")
            if digits.isascii() and digits.isdigit() and id_value(text) is None:
                raise ValidationError(
                    f"“{text[:30]}” is not one of the available choices.",
                    code="invalid_choice",
                )
        return super().clean(value)


_GUARDED: dict[type, type] = {}


def guard_id_range(formfield):
    """`formfield` (a model choice field) made to refuse out-of-range ids."""
    kind = type(formfield)
    if not issubclass(kind, _IdRangeGuard):
        if kind not in _GUARDED:
            _GUARDED[kind] = type(
                f"IdRangeGuarded{kind.__name__}", (_IdRangeGuard, kind), {}
            )
        formfield.__class__ = _GUARDED[kind]
    return formfield


class IdRangeGuardMixin:
    """Foreign-key and many-to-many fields refuse ids beyond any key's range
    with the form's ordinary "not one of the available choices" error."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        from django import forms

        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if isinstance(formfield, forms.ModelChoiceField):
            guard_id_range(formfield)
        return formfield
