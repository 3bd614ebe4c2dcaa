"""The timeline on a contact's page (contacts.history), paginated in the
admin's style: ?history_page=N, other query parameters kept."""

from django.core.paginator import Paginator

from contacts.history import contact_history

PAGE_PARAM = "history_page"


def history_context(request, contact) -> dict:
    history = contact_history(contact, request.GET.get(PAGE_PARAM) or 1)
    links = []
    for number in history.page_links:
        if number == Paginator.ELLIPSIS:
            links.append({"ellipsis": True})
            continue
        query = request.GET.copy()
        query[PAGE_PARAM] = number
        links.append(
            {
                "number": number,
                "current": number == history.page.number,
                "query": query.urlencode(),
            }
        )
    return {"history": history, "history_links": links}
