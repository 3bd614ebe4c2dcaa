"""What end users and contact changes send the app: inbound messages (with
STOP/START when consent management is on) and contact notifications."""

from sinch.simulator import events
from sinch.simulator.engine import Engine
from sinch.simulator.ids import ulid
from sinch.simulator.state import identity_key

SENDER_ID = "15550000000"  # the number end users write to
# Consent management's default English keywords, matched on the whole text.
OPT_OUT_WORDS = frozenset({"STOP", "UNSUBSCRIBE", "STOP ALL"})
OPT_IN_WORDS = frozenset({"START", "SUBSCRIBE"})


def receive(engine: Engine, *, channel: str, identity: str, text: str) -> str:
    """An end user writes to the app (e.g. "STOP"); returns the message id.

    The reply carries the conversation metadata of the last message sent to
    that identity (so `_batch_id`), as Sinch keeps it: in CONVERSATION mode,
    or in DISPATCH mode with retention on.
    """
    knobs = engine.knobs
    key = identity_key(identity)
    mode = knobs.processing_mode
    keep = mode == "CONVERSATION" or knobs.dispatch_retention
    with engine.state.lock:
        metadata = engine.state.conversations.get(key, "") if keep else ""
    message_id = ulid()
    now = engine.clock.now()
    if channel == "WHATSAPP":
        with engine.state.lock:
            engine.state.whatsapp_inbound[key] = now
    payload = events.inbound(
        engine.account,
        message_id=message_id,
        channel=channel,
        identity=identity,
        text=text,
        sender_id=SENDER_ID,
        conversation_metadata=metadata,
        mode=mode,
        now=now,
    )
    engine.later(0, engine.emit, payload, "MESSAGE_INBOUND", knobs.webhook_url)
    word = text.strip().upper()
    if knobs.consent_management == "off" or word not in OPT_OUT_WORDS | OPT_IN_WORDS:
        return message_id
    kind = "OPT_OUT" if word in OPT_OUT_WORDS else "OPT_IN"
    with engine.state.lock:
        if kind == "OPT_OUT":
            engine.state.opt_outs[key].add("OPT_OUT_ALL")
        else:
            engine.state.opt_outs.pop(key, None)
    note = events.consent_notification(
        engine.account,
        kind=kind,
        request_id=ulid(),
        channel=channel,
        identity=identity,
        mode=mode,
        now=now,
    )
    engine.later(0, engine.emit, note, kind, knobs.webhook_url)
    return message_id


def contact_changed(engine: Engine, kind: str, contact: dict) -> None:
    """CONTACT_CREATE or CONTACT_DELETE for one contact."""
    payload = events.contact_notification(
        engine.account, kind, contact, engine.clock.now()
    )
    engine.later(0, engine.emit, payload, f"CONTACT_{kind}", engine.knobs.webhook_url)
