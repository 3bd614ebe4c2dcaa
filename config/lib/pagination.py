"""A paginator for million-row changelists: it never counts past a cap."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows, so page links stay cheap on huge tables.

    Past the cap the changelist says "10,000+" and shows the first pages; a
    search or a filter narrows the result.
    """

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: COUNT_CAP + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > COUNT_CAP
