"""CSV import of contacts: read, map, validate, write in chunks, report."""
