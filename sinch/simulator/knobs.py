"""What the simulator pretends to be (Account) and how it behaves (Knobs).

Every knob is a command-line option of `manage.py sinch_simulator`
(`failure_ratio` -> `--failure-ratio`) and can be changed at run time with
POST /_simulator/knobs. Durations are simulated seconds, which pass
`time_factor` times faster than real ones.
"""

import threading
from dataclasses import dataclass, field, fields
from typing import Any

from sinch import wire

DEFAULT_FAILURE_REASONS = {
    "RECIPIENT_NOT_REACHABLE": 5.0,
    "DELIVERY_TIMED_OUT": 2.0,
    "CHANNEL_FAILURE": 1.0,
    "DELIVERY_REJECTED_DUE_TO_POLICY": 1.0,
}


@dataclass(frozen=True)
class Account:
    project_id: str
    app_id: str
    key_id: str = field(repr=False)
    key_secret: str = field(repr=False)
    webhook_secret: str = field(repr=False)


def _knob(default: Any, help: str, choices: tuple = ()) -> Any:
    meta = {"help": help, "choices": choices}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Knobs:
    webhook_url: str = _knob("", "where callbacks go (none: only recorded)")
    failure_ratio: float = _knob(0.05, "share of messages that fail on a channel")
    failure_reasons: dict = _knob(  # noqa: RUF009 (a fresh dict per instance)
        DEFAULT_FAILURE_REASONS, "reason code weights, e.g. CHANNEL_FAILURE=1,..."
    )
    read_ratio: float = _knob(0.5, "share of delivered messages read, where possible")
    click_ratio: float = _knob(
        0.0, "share of delivered messages whose recipient opens their short links"
    )
    latency_s: float = _knob(2.0, "mean time between a message's receipts")
    processing_delay_s: float = _knob(1.0, "time a due batch stays READY")
    time_factor: float = _knob(1.0, "simulated seconds per real second")
    drain_rate: float = _knob(
        float(wire.DRAIN_RATE_PER_S), "messages sent per second per app (0: no limit)"
    )
    ingress_queue_limit: int = _knob(
        wire.INGRESS_QUEUE_LIMIT,
        "messages the app's queue holds, due and not yet sent (0: no limit)",
    )
    callback_rate: float = _knob(
        float(wire.CALLBACK_RATE_PER_S), "callbacks per real second (0: no limit)"
    )
    callback_workers: int = _knob(4, "threads delivering callbacks (at start only)")
    callback_max_attempts: int = _knob(
        wire.CALLBACK_MAX_ATTEMPTS, "deliveries of one callback before giving up"
    )
    callback_backoff_s: float = _knob(
        wire.CALLBACK_RETRY_FIRST_S, "first retry delay, doubled each time"
    )
    callback_timeout_s: float = _knob(5.0, "real seconds to wait for the webhook")
    cancel_delay_s: float = _knob(
        2.0, "time before a cancel takes effect (a status read says SCHEDULED)"
    )
    cancel_failure_ratio: float = _knob(
        0.0, "share of cancels that silently do not happen (still answered 200)"
    )
    duplicate_ratio: float = _knob(0.0, "share of callbacks delivered twice")
    out_of_order_ratio: float = _knob(0.0, "share of messages whose receipts swap")
    drop_ratio: float = _knob(0.0, "share of callbacks never sent")
    error_429_ratio: float = _knob(0.0, "share of API calls answered 429")
    error_500_ratio: float = _knob(0.0, "share of API calls answered 500")
    timeout_ratio: float = _knob(0.0, "share of API calls processed but answered late")
    timeout_s: float = _knob(40.0, "real seconds a late answer waits")
    retry_after_s: int = _knob(1, "Retry-After sent with a 429")
    outage: str = _knob(
        "",
        "answer 503 to every token request (auth), every API call (api), or "
        "both (all); for connection refused, stop the simulator",
        ("", "auth", "api", "all"),
    )
    api_rate_limit: float = _knob(
        float(wire.API_RATE_LIMIT_PER_S), "API calls per real second (0: no limit)"
    )
    token_ttl_s: int = _knob(wire.TOKEN_TTL_S, "lifetime of an access token")
    error_shape: str = _knob(
        wire.ERROR_BODY_SHAPE, "error body shape", ("wrapped", "flat")
    )
    processing_mode: str = _knob(
        "DISPATCH", "the app's processing mode", wire.PROCESSING_MODES
    )
    dispatch_retention: bool = _knob(
        False, "keep conversation metadata for replies in DISPATCH mode"
    )
    webhook_secret_shown: str = _knob(
        "omitted",
        "how reading a webhook shows its secret (Sinch's way is UNCONFIRMED)",
        ("omitted", "masked", "plain"),
    )
    whatsapp_window_h: float = _knob(
        float(wire.WHATSAPP_WINDOW_HOURS),
        "hours after an end user's last WhatsApp message in which a message "
        "other than a WhatsApp template is delivered",
    )
    consent_management: str = _knob(
        "off", "STOP/START handling", ("off", "primary", "secondary")
    )
    metadata_list_shape: str = _knob(
        "list",
        "by-metadata list: a bare array, or object (one batch object, {} for "
        'none, {"batches": [...]} for several)',
        ("list", "object"),
    )
    batch_status_style: str = _knob(
        "rest",
        "batch callbacks: rest (READY/SCHEDULED/PROCESSED/CANCELLED with "
        "meta_data) or event (COMPLETED/PARTIAL/FAILED with counts, no "
        "meta_data, once the batch is sent; listed failures)",
        ("rest", "event"),
    )
    batch_status_key: str = _knob(
        "",
        "key of batch status updates (empty: the style's)",
        ("", *wire.BATCH_STATUS_UPDATE_KEYS),
    )
    processing_report_key: str = _knob(
        "",
        "key of batch processing reports (empty: the style's)",
        ("", *wire.BATCH_PROCESSING_REPORT_KEYS),
    )
    report_index_base: int = _knob(
        wire.PROCESSING_REPORT_INDEX_BASE,
        "position of the first recipient in processing reports (0 or 1)",
    )
    seed: int = _knob(0, "random seed (0: random)")

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def update(self, values: dict[str, Any]) -> None:
        """Set knobs from JSON or command-line values; ValueError if invalid.

        Nothing changes unless every value is valid.
        """
        parsed = {name: coerce(name, value) for name, value in values.items()}
        with self._lock:
            for name, value in parsed.items():
                setattr(self, name, value)


_FIELDS = {f.name: f for f in fields(Knobs)}


def coerce(name: str, value: Any) -> Any:
    """`value` converted to the knob's type; ValueError if it cannot be."""
    spec = _FIELDS.get(name)
    if spec is None:
        raise ValueError(f"unknown knob {name!r}")
    kind = spec.type
    try:
        if kind is dict:
            result: Any = _weights(value)
        elif kind is bool:
            result = (
                value
                if isinstance(value, bool)
                else str(value).lower() in ("1", "true", "yes", "on")
            )
        elif kind is int:
            result = int(value)
        elif kind is float:
            result = float(value)
        else:
            result = str(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None
    choices = spec.metadata["choices"]
    if choices and result not in choices:
        raise ValueError(f"{name}: one of {', '.join(choices)}")
    if isinstance(result, int | float) and not isinstance(result, bool):
        if result < 0:
            raise ValueError(f"{name}: must not be negative")
        if name.endswith("_ratio") and result > 1:
            raise ValueError(f"{name}: a share between 0 and 1")
    if name == "report_index_base" and result not in (0, 1):
        raise ValueError("report_index_base: 0 or 1")
    if name == "time_factor" and result <= 0:
        raise ValueError("time_factor: must be positive")
    return result


def _weights(value: Any) -> dict[str, float]:
    if isinstance(value, str):
        pairs = (item.split("=", 1) for item in value.split(",") if item.strip())
        value = {code.strip(): float(weight) for code, weight in pairs}
    if not isinstance(value, dict) or not value:
        raise ValueError("reason weights, e.g. CHANNEL_FAILURE=1")
    return {str(code): float(weight) for code, weight in value.items()}
