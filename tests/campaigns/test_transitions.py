"""Every change of a campaign's status goes through campaigns.transitions,
and each transition moves a campaign only from its allowed states."""

import ast
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns import transitions
from campaigns.models import Campaign

S = Campaign.Status
ROOT = Path(__file__).resolve().parents[2]
WRITES = ("update", "create", "bulk_update", "update_or_create")


def _moves(transition, campaign, user):
    """Call the transition's function the way the product does."""
    return {
        transitions.LAUNCH: lambda: transitions.launch(
            campaign, user, now=timezone.now(), summary="Launched", details={}
        ),
        transitions.FROZEN: lambda: transitions.recipients_frozen(campaign),
        transitions.NOBODY_TO_SEND: lambda: transitions.nobody_to_send(
            campaign, "nobody"
        ),
        transitions.LAUNCH_FAILED: lambda: transitions.launch_failed(
            campaign, "The launch failed", frozen=False
        ),
        transitions.PAUSE: lambda: transitions.pause(campaign, user, "Paused"),
        transitions.RESUME: lambda: transitions.resume(campaign, user),
        transitions.ALL_SUBMITTED: lambda: transitions.all_submitted(campaign.pk),
        transitions.COMPLETE: lambda: transitions.complete(campaign.pk),
        transitions.CANCEL: lambda: transitions.cancel(campaign, user),
        transitions.REPLACEMENT_DUE: lambda: transitions.replacement_due(campaign),
    }[transition]()


@pytest.mark.parametrize("transition", transitions.TRANSITIONS, ids=lambda t: t.name)
@pytest.mark.parametrize("start", S.values)
def test_a_transition_moves_a_campaign_only_from_its_allowed_states(
    transition, start, launchable_campaign, sender
):
    campaign = launchable_campaign
    Campaign.objects.filter(pk=campaign.pk).update(status=start)
    campaign.refresh_from_db()
    moved = _moves(transition, campaign, sender)
    campaign.refresh_from_db()
    if start in transition.sources:
        assert moved is True
        assert campaign.status in transition.targets
    else:
        assert moved is False
        assert campaign.status == start


def _status_writes(path: Path, root: Path = ROOT) -> list[str]:
    """Lines of `path` that write Campaign.status other than by transitions."""
    found = []
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr
            in ("update", "create", "bulk_update", "update_or_create")
            and "Campaign.objects" in ast.unparse(node.func.value)
            and any(k.arg == "status" for k in node.keywords)
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno}")
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Attribute)
            and t.attr == "status"
            and "campaign" in ast.unparse(t.value).lower()
            for t in node.targets
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno}")
    return sorted(found)


def test_only_the_transitions_module_writes_a_campaigns_status():
    writes = []
    for path in sorted((ROOT / "campaigns").rglob("*.py")):
        if "migrations" in path.parts or path.name == "transitions.py":
            continue
        writes += _status_writes(path)
    assert writes == []


def test_the_status_write_check_sees_a_write(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "Campaign.objects.filter(pk=1).update(status='PAUSED')\n"
        "campaign.status = 'CANCELLED'\n"
    )
    assert _status_writes(sneaky, tmp_path) == ["sneaky.py:1", "sneaky.py:2"]
