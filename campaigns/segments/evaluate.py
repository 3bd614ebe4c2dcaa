"""Turns a segment definition into one query over contacts."""


def matching_contacts(definition):
    raise NotImplementedError


def count(definition) -> int:
    raise NotImplementedError
