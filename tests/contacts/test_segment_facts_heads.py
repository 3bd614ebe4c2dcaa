"""A number's countries are cached by the part of it its calling code's
prefix rules read (a few hundred heads for a million-row import): the
answer must be the one the whole number gives, for every rule there is."""

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from contacts import countries, segment_facts


def _from_whole_number(number):
    return segment_facts._regions_of_head.__wrapped__(number[: segment_facts.HEAD])


def test_every_prefix_and_exception_gives_the_countries_of_the_whole_number():
    numbers = set()
    for regions in COUNTRY_CODE_TO_REGION_CODE.values():
        for region in regions:
            for prefix in sum(countries.country_prefixes(region), ()):
                # The rule itself, and numbers that go on past it.
                for tail in ("", "0", "12345678", "98765432109"):
                    numbers.add(prefix + tail)
    assert len(numbers) > 1000
    for number in sorted(numbers):
        assert segment_facts.regions_of(number) == _from_whole_number(number), number


def test_numbers_of_one_area_share_one_cached_head():
    segment_facts._regions_of_head.cache_clear()
    for sub in range(2000):
        segment_facts.regions_of(f"+1204{2000000 + sub * 37:07d}")
    assert segment_facts._regions_of_head.cache_info().currsize == 1
    assert segment_facts.regions_of("+12042345678") == frozenset({"CA"})
