"""NUL characters are taken out of query strings before any view reads them.

PostgreSQL refuses NUL (0x00) in any text it is given, so `?q=%00` or a
filter value with one would answer 500 from the first query that uses it
(on SQLite it quietly matches nothing). No product value holds a NUL: the
character is dropped, which leaves an empty value (ignored by every filter)
or the value as meant.
"""

from django.http import QueryDict


class StripNulFromQueryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "%00" in request.META.get("QUERY_STRING", "") or any(
            "\x00" in key or any("\x00" in v for v in values)
            for key, values in request.GET.lists()
        ):
            query = QueryDict(mutable=True)
            for key, values in request.GET.lists():
                query.setlist(
                    key.replace("\x00", ""), [v.replace("\x00", "") for v in values]
                )
            query._mutable = False
            request.GET = query
        return self.get_response(request)
