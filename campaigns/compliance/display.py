"""What the pages show about recipients' zones, quiet hours and local-time
waves: built from the pre-send check's summary and the ingress plan, never
from a walk of the recipients (fast at a million)."""

from datetime import datetime
from typing import Any

from campaigns.compliance import send_times
from campaigns.models import Campaign
from contacts import time_zones as zones
from contacts.time_zones import SOURCE_LABELS

ZONES_SHOWN = 30
ZONES_PER_WAVE = 5


def _local(at: datetime, zone_name: str) -> str:
    if not zones.known_zone(zone_name):
        return ""
    return at.astimezone(zones.zone(zone_name)).strftime("%Y-%m-%d %H:%M %Z")


def _utc(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def zone_summary(presend: dict | None) -> dict[str, Any] | None:
    """The pre-send check's recipients by time zone: "41,200 recipients in
    4 time zones", one row per zone (the first ZONES_SHOWN), with how the
    zones were found and who quiet hours hold until when."""
    stored = (presend or {}).get("send_times")
    if not stored:
        return None
    rows = []
    for name, entry in list(stored["zones"].items())[:ZONES_SHOWN]:
        until = entry.get("held_until")
        until_at = datetime.fromisoformat(until) if until else None
        rows.append(
            {
                "zone": name,
                "recipients": entry["recipients"],
                "found": ", ".join(
                    f"{n:,} {SOURCE_LABELS.get(source, source)}"
                    for source, n in sorted(
                        entry["sources"].items(), key=lambda item: -item[1]
                    )
                ),
                "held": entry["held"],
                "held_until": _local(until_at, name) if until_at else "",
                "held_until_utc": _utc(until_at) if until_at else "",
                "passed": entry.get("passed", 0),
            }
        )
    total = sum(e["recipients"] for e in stored["zones"].values())
    return {
        "recipients": total,
        "zone_count": len(stored["zones"]),
        "rows": rows,
        "more": max(0, len(stored["zones"]) - ZONES_SHOWN),
        "held": stored.get("held", 0),
        "passed": sum(e.get("passed", 0) for e in stored["zones"].values()),
    }


def wave_rows(campaign: Campaign, plan) -> list[dict[str, Any]]:
    """The launch page's waves: for each send time (UTC), the zones whose
    recipients go then and their local time, and how many recipients.

    `plan`: the ingress plan (campaigns.dispatch.ingress.Plan) or None; the
    recipients sent at once (a campaign sent when launched, a zone whose
    local time has passed) come first, as "now".
    """
    stored = ((campaign.presend or {}).get("send_times") or {}).get("groups") or []
    by_key = {g.get("key") or send_times.group_key(None): g for g in stored}
    rows = []
    now_group = by_key.get(send_times.NOW)
    planned_now = plan is not None and any(
        w.group == send_times.NOW for w in plan.waves
    )
    if now_group and not planned_now:
        rows.append(_row(None, now_group["recipients"], now_group, now_group))
    for wave in plan.waves if plan is not None else []:
        group = by_key.get(wave.group) or {}
        rows.append(_row(wave.at, wave.recipients, group, group, wave.batches))
    return rows


def _row(at, recipients: int, group: dict, source: dict, batches: int = 0) -> dict:
    zone_counts = list((source.get("zones") or {}).items())[:ZONES_PER_WAVE]
    return {
        "utc": _utc(at) if at else "now",
        "recipients": recipients,
        "batches": batches,
        "held": group.get("held", 0),
        "zones": [
            {
                "zone": name,
                "local": _local(at, name) if at else "now",
                "recipients": n,
            }
            for name, n in zone_counts
        ],
        "more_zones": max(0, len(source.get("zones") or {}) - ZONES_PER_WAVE),
    }


def shows_local_waves(campaign: Campaign) -> bool:
    """Whether the launch page shows waves by zone: local time, or someone
    held by quiet hours, or several send times."""
    stored = (campaign.presend or {}).get("send_times") or {}
    return bool(
        campaign.send_in_local_time
        or stored.get("held")
        or len(stored.get("groups") or []) > 1
    )


def held_batches_note(campaign: Campaign) -> str:
    """The campaign page's word on recipients quiet hours hold."""
    summary = zone_summary(campaign.presend)
    if not summary or not summary["held"]:
        return ""
    untils = [r for r in summary["rows"] if r["held"]]
    parts = [
        f"{r['held']:,} in {r['zone']} until {r['held_until']} ({r['held_until_utc']})"
        for r in untils[:5]
    ]
    more = f" and {len(untils) - 5} more zones" if len(untils) > 5 else ""
    return (
        f"{summary['held']:,} recipient{'s' if summary['held'] != 1 else ''} "
        f"held by quiet hours until their window opens (pre-send check): "
        + "; ".join(parts)
        + more
        + "."
    )
