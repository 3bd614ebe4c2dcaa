"""A/B tests: a stable split with shares, per-variant batches through the real
dispatch against the simulator, "test first" with the winner sent to the
held remainder once, cancel during the wait, consent re-checked for the
remainder, and the winner rule with its z-test."""

import math
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import tasks
from campaigns.authoring import variants
from campaigns.dispatch import control as controls
from campaigns.dispatch import launching
from campaigns.models import ABTest, Batch, Campaign, Recipient, Variant
from campaigns.tracking import ab_results, ab_winner
from contacts.models import AuditEvent, ChannelIdentity
from contacts.services.consent import Evidence, record_consent
from tests.campaigns.conftest import EVERY_VARIANT_TESTED
from tests.campaigns.test_receipts import inbound, process, receipt

S, B, R = Campaign.Status, Batch.Status, Recipient.Status
LATER = timedelta(days=1)


def _by_variant(campaign) -> dict[str, int]:
    return dict(
        Counter(
            Recipient.objects.filter(campaign=campaign)
            .exclude(status=R.EXCLUDED)
            .values_list("variant", flat=True)
        )
    )


def _texts_sent(bodies) -> dict[str, str]:
    """The message text of each batch our client posted, by Batch.metadata_key."""
    return {
        b["batch_metadata"]["cm_batch"]: b["message"]["text_message"]["text"]
        for b in bodies
    }


# --- the split ------------------------------------------------------------


def test_the_split_is_stable_and_follows_the_shares():
    split = variants.Split(7, [("A", 70), ("B", 30)])
    first = [split.label(pk) for pk in range(1, 20_001)]
    again = variants.Split(7, [("A", 70), ("B", 30)])
    assert first == [again.label(pk) for pk in range(1, 20_001)]
    counts = Counter(first)
    assert set(counts) == {"A", "B"}
    assert abs(counts["A"] / 20_000 - 0.70) < 0.02
    # Another campaign splits the same people differently.
    other = variants.Split(8, [("A", 70), ("B", 30)])
    assert first != [other.label(pk) for pk in range(1, 20_001)]


def test_test_first_puts_the_share_in_the_test_and_holds_the_rest():
    split = variants.Split(3, [("A", 50), ("B", 25), ("C", 25)], test_share=20)
    counts = Counter(split.label(pk) for pk in range(1, 40_001))
    assert abs((40_000 - counts[variants.REMAINDER]) / 40_000 - 0.20) < 0.01
    tested = counts["A"] + counts["B"] + counts["C"]
    assert abs(counts["A"] / tested - 0.50) < 0.03
    assert abs(counts["C"] / tested - 0.25) < 0.03


def test_the_presend_check_and_the_launch_agree_on_the_split(make_ab, launch, sinch):
    campaign = make_ab()
    shown = dict(campaign.presend["variants"])
    assert sum(shown.values()) == 40
    assert set(shown) == {"A", "B"}
    launch(campaign)
    assert _by_variant(campaign) == shown
    assert AuditEvent.objects.filter(summary__startswith="A/B test: split set").exists()


# --- dispatch through the real client and the simulator --------------------


def test_each_variant_goes_in_its_own_batches_with_its_own_message(
    make_ab, launch, sinch, control, sent_batches
):
    campaign = launch(make_ab())
    assert campaign.status == S.SUBMITTED
    batches = Batch.objects.filter(campaign=campaign)
    assert {b.status for b in batches} == {B.ACCEPTED}
    texts = _texts_sent(sent_batches)
    assert len(sent_batches) == len(control.state()["batches"]) == batches.count()
    for batch in batches:
        expected = {
            "A": "Hi ${first_name}, spring sale!",
            "B": "${first_name}: 20 % off today only",
        }[batch.variant]
        assert texts[batch.metadata_key].startswith(expected)
        assert set(batch.recipients.values_list("variant", flat=True)) == {
            batch.variant
        }


def test_cancelling_an_ab_campaign_cancels_every_variants_batches(
    make_ab, sender, sinch, django_capture_on_commit_callbacks
):
    campaign = make_ab()
    with django_capture_on_commit_callbacks(execute=False):
        launching.launch(campaign, sender)  # frozen, nothing submitted yet
    assert set(
        Batch.objects.filter(campaign=campaign).values_list("variant", flat=True)
    ) == {"A", "B"}
    with django_capture_on_commit_callbacks(execute=True):
        controls.cancel(campaign, sender)
    assert set(
        Batch.objects.filter(campaign=campaign).values_list("status", flat=True)
    ) == {B.CANCELLED}
    assert not Recipient.objects.filter(campaign=campaign, status=R.PENDING).exists()


def _opt_out(number):
    record_consent(
        identity=ChannelIdentity.objects.get(identity=number),
        kind="OPT_OUT",
        purpose="MARKETING",
        source="INBOUND_KEYWORD",
        evidence=Evidence(wording="STOP"),
    )


def test_a_late_opt_out_is_removed_from_its_variants_batch(
    make_ab, sender, sinch, control, django_capture_on_commit_callbacks
):
    from campaigns.dispatch import drain

    campaign = make_ab()
    with django_capture_on_commit_callbacks(execute=False):
        launching.launch(campaign, sender)
    leaver = Recipient.objects.filter(campaign=campaign, variant="B").first()
    _opt_out(leaver.identity)
    with django_capture_on_commit_callbacks(execute=True):
        drain.run_dispatcher(campaign.pk)
    leaver.refresh_from_db()
    assert (leaver.status, leaver.reason) == (R.EXCLUDED, "opted out after launch")
    sent = control.state()["counters"]["recipients_accepted"]
    assert sent == 39


def test_receipts_and_replies_update_each_variants_figures(make_ab, launch, sinch):
    campaign = launch(make_ab())
    a = list(Recipient.objects.filter(campaign=campaign, variant="A"))
    b = list(Recipient.objects.filter(campaign=campaign, variant="B"))
    for r in a[:3]:
        receipt(r, "DELIVERED")
    receipt(b[0], "FAILED", reason="RECIPIENT_NOT_REACHABLE")
    inbound("Yes please", identity=b[1].identity)
    process()
    rows = {row.label: row for row in ab_results.variant_rows(campaign)}
    assert (rows["A"].sent, rows["A"].delivered, rows["A"].failed) == (len(a), 3, 0)
    assert (rows["B"].delivered, rows["B"].failed, rows["B"].replies) == (0, 1, 1)
    assert ab_results.reply_rate(campaign)["B"] == (1, len(b))


# --- test first: the remainder -----------------------------------------------


TEST_FIRST = {"test_share": 30, "wait_minutes": 60, "metric": "reply_rate"}


def test_test_first_sends_the_test_group_and_holds_the_rest(
    make_ab, launch, sinch, control
):
    campaign = launch(make_ab(test=TEST_FIRST))
    held = Batch.objects.filter(campaign=campaign, ab_remainder=True)
    assert held
    assert {b.status for b in held} == {B.PENDING}
    assert {b.variant for b in held} == {""}
    sent = Batch.objects.filter(campaign=campaign, ab_remainder=False)
    assert {b.status for b in sent} == {B.ACCEPTED}
    assert campaign.status == S.SUBMITTING  # not done while the rest waits
    test = ABTest.objects.get(pk=campaign.pk)
    assert test.test_sent_at is not None
    assert test.remainder_size == sum(b.size for b in held)
    assert campaign.presend["variants"][-1][0] == ""  # the held rest, last


def test_the_winner_goes_to_the_rest_once_even_when_the_task_runs_twice(
    make_ab, launch, sinch, control, sent_batches, django_capture_on_commit_callbacks
):
    campaign = launch(make_ab(EVERY_VARIANT_TESTED, test=TEST_FIRST))
    b = Recipient.objects.filter(campaign=campaign, variant="B").first()
    inbound("Sounds good", identity=b.identity)
    process()
    posts_before = len(control.state()["batches"])
    later = timezone.now() + timedelta(minutes=61)
    assert ab_winner.pick_due_winners(now=timezone.now()) == 0  # still waiting
    with django_capture_on_commit_callbacks(execute=True):
        assert ab_winner.pick_due_winners(now=later) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert ab_winner.pick_due_winners(now=later) == 0
        tasks.tick()
    test = ABTest.objects.get(pk=campaign.pk)
    assert test.winner == "B"
    assert test.winner_by is None
    assert test.winner_reason.startswith(
        "Picked automatically by reply rate when the wait was over. B's reply "
        "rate is higher than A's, but not enough evidence yet"
    )
    assert "Rule: after the wait the higher rate wins" in test.winner_reason
    held = Batch.objects.filter(campaign=campaign, ab_remainder=True)
    assert {(x.variant, x.status) for x in held} == {("B", B.ACCEPTED)}
    at_sinch = control.state()["batches"]
    assert len(at_sinch) == posts_before + held.count()
    texts = _texts_sent(sent_batches)
    assert len(sent_batches) == len(at_sinch)
    assert all(texts[x.metadata_key].startswith("${first_name}: 20 %") for x in held)
    everyone = Recipient.objects.filter(campaign=campaign).exclude(status=R.EXCLUDED)
    assert everyone.filter(status=R.PENDING).count() == 0
    assert everyone.count() == EVERY_VARIANT_TESTED
    summaries = list(
        AuditEvent.objects.filter(summary__startswith="A/B test").values_list(
            "summary", flat=True
        )
    )
    assert sum(s.startswith("A/B test: winner B") for s in summaries) == 1
    assert sum(s.startswith("A/B test: remainder sent") for s in summaries) == 1
    assert any(s.startswith("A/B test: test started") for s in summaries)


def test_cancel_during_the_wait_cancels_the_remainder_too(
    make_ab, launch, sender, sinch, django_capture_on_commit_callbacks
):
    campaign = launch(make_ab(test=TEST_FIRST))
    with django_capture_on_commit_callbacks(execute=True):
        controls.cancel(campaign, sender)
    held = Batch.objects.filter(campaign=campaign, ab_remainder=True)
    assert {b.status for b in held} == {B.CANCELLED}
    later = timezone.now() + timedelta(hours=2)
    assert ab_winner.pick_due_winners(now=later) == 0
    with pytest.raises(ab_winner.WinnerError, match="cancelled"):
        ab_winner.pick_winner(campaign.pk, now=later)
    assert not ABTest.objects.get(pk=campaign.pk).winner


def test_someone_held_who_opts_out_during_the_wait_is_not_sent_the_winner(
    make_ab, launch, sinch, control, django_capture_on_commit_callbacks
):
    campaign = launch(make_ab(test=TEST_FIRST))
    leaver = Recipient.objects.filter(
        campaign=campaign, batch__ab_remainder=True
    ).first()
    _opt_out(leaver.identity)
    with django_capture_on_commit_callbacks(execute=True):
        ab_winner.pick_winner(campaign.pk, now=timezone.now() + LATER)
    leaver.refresh_from_db()
    assert (leaver.status, leaver.reason) == (R.EXCLUDED, "opted out after launch")
    assert control.state()["counters"]["recipients_accepted"] == 39


def test_a_sender_confirms_the_winner_and_may_choose_another(
    make_ab, launch, sender, sinch, django_capture_on_commit_callbacks
):
    campaign = launch(make_ab(test={**TEST_FIRST, "picking": "confirm"}))
    later = timezone.now() + LATER
    assert ab_winner.pick_due_winners(now=later) == 0  # waits for a person
    with pytest.raises(ab_winner.WinnerError, match="not over"):
        ab_winner.pick_winner(campaign.pk, user=sender)
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            ab_winner.pick_winner(campaign.pk, user=sender, label="B", now=later) == "B"
        )
    test = ABTest.objects.get(pk=campaign.pk)
    assert test.winner_by == sender
    assert test.winner_reason.startswith(f"Confirmed by {sender} (reply rate).")
    with pytest.raises(ab_winner.WinnerError, match="already picked"):
        ab_winner.pick_winner(campaign.pk, user=sender, label="A", now=later)


# --- the winner rule and the z-test -------------------------------------------


def test_the_z_test_matches_known_values():
    z, p = ab_results.z_test(60, 100, 45, 100)
    assert z == pytest.approx(2.1240, abs=1e-4)
    assert p == pytest.approx(0.03367, abs=1e-4)
    z, p = ab_results.z_test(10, 100, 10, 100)
    assert (z, p) == (0.0, 1.0)
    # 1.96 standard errors apart: p is 0.05.
    assert 1 - math.erf(1.959964 / math.sqrt(2)) == pytest.approx(0.05, abs=1e-6)
    assert ab_results.z_test(0, 0, 3, 10) is None
    assert ab_results.z_test(0, 10, 0, 10) is None  # no variation at all


def test_a_meaningful_difference_is_said_in_plain_words():
    c = ab_results.compare({"A": (45, 100), "B": (60, 100)}, "reply rate")
    assert (c.best, c.other, c.meaningful) == ("B", "A", True)
    assert c.words.startswith(
        "B's reply rate is higher than A's; a difference this large would "
        "happen by chance less than 1 time in 20"
    )


def test_too_little_data_is_not_enough_evidence_but_the_higher_rate_leads():
    c = ab_results.compare({"A": (1, 10), "B": (2, 10)}, "reply rate")
    assert (c.best, c.meaningful) == ("B", False)
    assert "not enough evidence yet" in c.words


def test_a_tie_goes_to_the_earlier_variant():
    c = ab_results.compare({"A": (5, 50), "B": (5, 50), "C": (1, 50)}, "delivery rate")
    assert (c.best, c.other, c.meaningful) == ("A", "B", False)
    assert "same delivery rate" in c.words
    empty = ab_results.compare({"A": (0, 0), "B": (0, 0)}, "reply rate")
    assert empty.best == "A"
    assert "Not enough evidence" in empty.words


def test_the_metrics_registry_names_its_metrics():
    assert set(ab_results.METRICS) == {"reply_rate", "delivery_rate", "click_rate"}
    with pytest.raises(ValueError, match="known: click_rate, delivery_rate, reply"):
        ab_results.metric("open_rate")


def test_variants_that_cannot_be_sent_block_the_launch(make_ab, make_template, sender):
    campaign = make_ab(shares=(50, 40))
    coupon = make_template("Coupon", "Use ${coupon}")
    Variant.objects.filter(campaign=campaign, label="B").update(template=coupon)
    problems = launching.launch_problems(campaign)
    assert "The variants' shares add up to 90 %, not 100 %." in problems
    assert any("uses ${coupon}" in p for p in problems)
    with pytest.raises(launching.LaunchError):
        launching.launch(campaign, sender)
