"""The campaign preview: a chosen contact and a random sample, as Sinch renders them."""

import random

import pytest
from django.urls import reverse

from campaigns.authoring import preview
from campaigns.models import TemplateParameter


@pytest.fixture
def template(make_template):
    return make_template(
        "Spring sale",
        "Hi ${first_name}, ${offer} for ${tier} members",
        parameters={"offer": {"source": TemplateParameter.Source.CAMPAIGN}},
    )


@pytest.fixture
def audience(make_list):
    return make_list("Customers")


@pytest.fixture
def campaign(make_campaign, template, audience):
    return make_campaign(
        template, [audience], "Spring", campaign_values={"offer": "20% off"}
    )


def _url(campaign):
    return reverse("admin:campaigns_campaign_preview", args=[campaign.pk])


def test_preview_for_a_contact_found_by_a_human_phone_format(
    client, marketer, campaign, audience, make_contact
):
    make_contact(
        "+14155550123",
        lists=[audience],
        first_name="Ada",
        attributes={"tier": "gold"},
    )
    client.force_login(marketer)
    response = client.get(_url(campaign), {"q": "(415) 555-0123"})
    assert response.status_code == 200
    chosen = response.context["chosen"]
    assert chosen.contact.first_name == "Ada"
    assert chosen.fields == [("text_message.text", "Hi Ada, 20% off for gold members")]
    origins = {use.name: use.origin for use in chosen.parameters}
    assert origins == {
        "first_name": "contact field first_name",
        "offer": "campaign",
        "tier": "attribute tier",
    }
    assert "Hi Ada, 20% off for gold members" in response.content.decode()


def test_a_contact_outside_the_audience_is_refused(
    client, marketer, campaign, make_contact, make_list
):
    make_contact("+14155550124", lists=[make_list("Elsewhere")], first_name="Eve")
    client.force_login(marketer)
    response = client.get(_url(campaign), {"q": "+1 415 555 0124"})
    assert response.status_code == 200
    assert response.context["chosen"] is None
    assert "is not in this campaign&#x27;s audience" in response.content.decode()
    assert "Eve" not in response.content.decode()


def test_missing_parameters_are_shown(
    client, marketer, campaign, audience, make_contact
):
    contact = make_contact("+14155550125", lists=[audience], first_name="Bo")
    client.force_login(marketer)
    response = client.get(_url(campaign), {"q": str(contact.pk)})
    chosen = response.context["chosen"]
    assert chosen.missing == ["tier"]
    assert chosen.fields == [
        ("text_message.text", "Hi Bo, 20% off for ${tier} members")
    ]
    html = response.content.decode()
    assert "No value for <code>${tier}</code> and no default" in html
    assert 'class="preview-missing-row"' in html


def test_a_value_with_html_and_a_placeholder_is_shown_literally(
    client, marketer, campaign, audience, make_contact
):
    make_contact(
        "+14155550126",
        lists=[audience],
        first_name="<b>${first_name}</b>",
        attributes={"tier": "<script>alert(1)</script>"},
    )
    client.force_login(marketer)
    response = client.get(_url(campaign), {"q": "0014155550126"})
    text = response.context["chosen"].fields[0][1]
    # Substituted once: the value's own ${first_name} is not expanded again.
    assert text == (
        "Hi <b>${first_name}</b>, 20% off for <script>alert(1)</script> members"
    )
    html = response.content.decode()
    assert "&lt;b&gt;${first_name}&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "<b>${first_name}</b>" not in html


def test_the_sample_has_at_most_n_distinct_audience_members(
    campaign, audience, make_list, make_contact
):
    other = make_list("Newsletter")
    campaign.lists.add(other)
    members = {make_contact(lists=[audience, other]).pk for _ in range(8)}
    members |= {make_contact(lists=[other]).pk for _ in range(4)}
    outsiders = {make_contact(lists=[make_list()]).pk for _ in range(10)}
    for seed in range(20):
        sample = preview.sample_audience(campaign, 5, rng=random.Random(seed))
        ids = [c.pk for c in sample]
        assert len(ids) == len(set(ids)) == 5
        assert set(ids) <= members
        assert not set(ids) & outsiders
    everyone = preview.sample_audience(campaign, 50)
    assert {c.pk for c in everyone} == members


def test_a_sparse_audience_is_still_sampled(
    campaign, audience, make_contact, monkeypatch
):
    # Members are far apart in id order and few ids are probed: the probes
    # mostly miss and the window after a random id tops the sample up.
    monkeypatch.setattr(preview, "PROBES_PER_ROUND", 2)
    first = make_contact(lists=[audience])
    for _ in range(30):
        make_contact()
    last = make_contact(lists=[audience])
    sample = preview.sample_audience(campaign, 5, rng=random.Random(1))
    assert {c.pk for c in sample} == {first.pk, last.pk}


def test_the_sample_size_is_capped(client, marketer, campaign):
    client.force_login(marketer)
    response = client.get(_url(campaign), {"n": "51"})
    assert response.status_code == 200
    assert response.context["form"].errors["n"]


def test_a_viewer_can_open_the_preview(client, viewer, campaign):
    client.force_login(viewer)
    assert client.get(_url(campaign)).status_code == 200


def test_an_outsider_cannot_open_the_preview(client, outsider, make_user, campaign):
    client.force_login(outsider)
    response = client.get(_url(campaign))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    client.force_login(make_user("norole"))
    assert client.get(_url(campaign)).status_code == 403


def test_the_preview_changes_nothing_and_answers_get_only(client, marketer, campaign):
    client.force_login(marketer)
    assert client.post(_url(campaign), {"q": "1"}).status_code == 405


def test_the_campaign_pages_link_to_the_preview(client, marketer, campaign):
    client.force_login(marketer)
    url = _url(campaign)
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    assert url in client.get(change).content.decode()
    changelist = reverse("admin:campaigns_campaign_changelist")
    assert url in client.get(changelist).content.decode()


@pytest.mark.parametrize("audience_size", [3, 60])
def test_the_page_makes_a_bounded_number_of_queries(
    client,
    marketer,
    campaign,
    audience,
    make_contact,
    audience_size,
    django_assert_max_num_queries,
):
    for _ in range(audience_size):
        make_contact(lists=[audience], attributes={"tier": "gold"})
    client.force_login(marketer)
    # 24: the message is built three times (preview, plan, the launch check's
    # channel rules), each reading the template's channel overrides, the
    # last launch request is read, and the frequency cap looks for other
    # marketing sent near the send time, and its segments are read (for the
    # audience and for the page), and its A/B variants (each sampled person
    # is shown their variant's message); none of it grows with the audience.
    with django_assert_max_num_queries(24):
        response = client.get(_url(campaign), {"q": "+14155559999", "n": "50"})
    assert response.status_code == 200


def test_a_sampled_person_who_will_not_receive_it_is_marked_with_the_reason(
    client, marketer, campaign, audience, make_contact
):
    make_contact(
        "+14155550150",
        consent="OPTED_IN",
        lists=[audience],
        first_name="Ida",
        attributes={"tier": "gold"},
    )
    make_contact(
        "+14155550151",
        consent="OPTED_OUT",
        lists=[audience],
        first_name="Olga",
        attributes={"tier": "gold"},
    )
    client.force_login(marketer)
    response = client.get(_url(campaign), {"n": 5})
    by_name = {item.contact.first_name: item for item in response.context["sample"]}
    assert (by_name["Ida"].status, by_name["Ida"].excluded) == ("OK", False)
    assert (by_name["Olga"].status, by_name["Olga"].status_reason) == (
        "EXCLUDED",
        "opted out",
    )
    page = response.content.decode()
    assert page.count("Will not receive this campaign: opted out.") == 1
