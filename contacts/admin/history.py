"""The timeline on a contact's page (contacts.history), paginated in the
admin's style: ?history_page=N, other query parameters kept. Read only when
the page shows it (not for a save that redirects)."""

from django.core.paginator import Paginator
from django.utils.functional import SimpleLazyObject

from contacts.history import HistoryPage, contact_history

PAGE_PARAM = "history_page"


def history_context(request, contact) -> dict:
    return {"history": SimpleLazyObject(lambda: _history(request, contact))}


def _history(request, contact) -> HistoryPage:
    history = contact_history(contact, request.GET.get(PAGE_PARAM) or 1)
    for number in history.page_links:
        if number == Paginator.ELLIPSIS:
            history.links.append({"ellipsis": True})
            continue
        query = request.GET.copy()
        query[PAGE_PARAM] = number
        history.links.append(
            {
                "number": number,
                "current": number == history.page.number,
                "query": query.urlencode(),
            }
        )
    return history
