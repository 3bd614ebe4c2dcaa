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
