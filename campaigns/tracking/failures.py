"""Why a message failed, in words a marketer can act on, and whether to retry.

The one place that classifies Sinch's reason codes (spec §5.4, stored in
Recipient.failure_code by the delivery receipts) into two classes:

- **transient**: the same message to the same person may well succeed later
  (phone off, network trouble, too fast, expired before delivery);
- **permanent**: it will fail again until someone fixes something (the
  number, the consent, the template, the channel's set-up), or we cannot tell
  whether the person already got it.

A code this product does not know is permanent: the safe side, since a
permanent failure is never retried unless a person explicitly chooses to.
A recipient FAILED without a code was in a batch that failed as a whole
(Sinch refused it): permanent too, as the message or settings usually need
fixing first. A batch given up because its worker kept dying marks its
recipients SUBMISSION_GIVEN_UP: transient, Sinch did not have it. A Sinch
outage fails nobody (campaigns.dispatch.sinch_outage).

Sinch's own wording is in sinch.wire.REASON_DESCRIPTIONS; the explanations
here are for the people who run campaigns (the retry page and the delivery
dashboard use them).
"""

from dataclasses import dataclass

from django.db import models
from django.db.models import Q

from campaigns.models.states import SUBMISSION_GIVEN_UP


class FailureClass(models.TextChoices):
    TRANSIENT = "TRANSIENT", "Transient: may succeed if sent again later"
    PERMANENT = "PERMANENT", "Permanent: will fail again until something is fixed"


TRANSIENT, PERMANENT = FailureClass.TRANSIENT, FailureClass.PERMANENT
# The pseudo-code of a recipient whose whole batch failed (no reason code).
BATCH_FAILED = "BATCH_FAILED"


@dataclass(frozen=True)
class FailureKind:
    code: str
    failure_class: FailureClass
    label: str
    explanation: str

    @property
    def is_transient(self) -> bool:
        return self.failure_class == TRANSIENT

    @property
    def class_label(self) -> str:
        return "transient" if self.is_transient else "permanent"


def _kinds(failure_class: FailureClass, entries) -> dict[str, FailureKind]:
    return {
        code: FailureKind(code, failure_class, label, explanation)
        for code, label, explanation in entries
    }


KINDS: dict[str, FailureKind] = {
    **_kinds(
        TRANSIENT,
        [
            (
                "RECIPIENT_NOT_REACHABLE",
                "Phone or app not reachable",
                "The person's phone or app could not be reached: switched off, "
                "out of coverage, or their network was unavailable. A later "
                "attempt often gets through.",
            ),
            (
                "DELIVERY_TIMED_OUT",
                "Delivery not confirmed in time",
                "The channel did not confirm delivery in time, usually because "
                "the phone was unreachable for a while. A later attempt often "
                "gets through.",
            ),
            (
                "CHANNEL_FAILURE",
                "Network problem",
                "The mobile operator or messaging app had a problem delivering "
                "the message. This is usually temporary.",
            ),
            (
                "RATE_LIMITED",
                "Sent too fast for the channel",
                "The channel turned the message away because too many were "
                "sent at once. Sending again later works.",
            ),
            (
                "INTERNAL_ERROR",
                "Temporary problem at Sinch",
                "Sinch had an internal problem with this message. This is "
                "usually temporary.",
            ),
            (
                "MESSAGE_EXPIRED",
                "Expired before delivery",
                "The message could not be delivered before its time to live ran "
                "out, for example because the phone stayed off. Sending again "
                "may reach the person; consider a longer time to live.",
            ),
            (
                SUBMISSION_GIVEN_UP,
                "Never handed to Sinch",
                "The worker submitting this person's batch stopped several "
                "times before it could record Sinch's answer, so the batch was "
                "given up; Sinch did not have it when last asked. Sending "
                "again is safe. If it happens again, ask an operator to check "
                "the workers (memory, time limits).",
            ),
            (
                "OUTSIDE_ALLOWED_SENDING_WINDOW",
                "Outside the allowed sending hours",
                "The channel does not allow messages at that time (quiet hours, "
                "or on WhatsApp more than 24 hours after the person last wrote "
                "to you unless a WhatsApp template is used). Send again at an "
                "allowed time, or with a channel template.",
            ),
        ],
    ),
    **_kinds(
        PERMANENT,
        [
            (
                "RECIPIENT_INVALID_CHANNEL_IDENTITY",
                "Invalid number or account",
                "The phone number or account is not valid on this channel "
                "(wrong number, not a mobile, or no account on the app). "
                "Correct the contact's details first.",
            ),
            (
                "RECIPIENT_NOT_OPTED_IN",
                "Not opted in at Sinch",
                "Sinch holds no opt-in, or an opt-out, for this person on this "
                "app. Do not send again unless they opt in.",
            ),
            (
                "DELIVERY_REJECTED_DUE_TO_POLICY",
                "Refused by the channel's rules",
                "The channel or operator refused the message because of its "
                "rules (content, sender, or spam filtering). Sending it again "
                "unchanged will be refused again.",
            ),
            (
                "CONTACT_NOT_FOUND",
                "Unknown contact at Sinch",
                "Sinch has no contact matching this recipient.",
            ),
            (
                "NO_CHANNEL_IDENTITY_FOR_CONTACT",
                "No way to reach this person",
                "Sinch has no phone number or account for this person on any channel.",
            ),
            (
                "NO_CHANNELS_LEFT",
                "Every fallback channel failed",
                "Every channel in the fallback order failed, so whether a later "
                "attempt would work cannot be told. Check the contact's details "
                "and the channel order.",
            ),
            (
                "TEMPLATE_NOT_FOUND",
                "Channel template not found",
                "The channel template (e.g. WhatsApp) the message refers to does "
                "not exist, or is not approved. Fix the template first.",
            ),
            (
                "TEMPLATE_INSUFFICIENT_PARAMETERS",
                "Channel template values missing",
                "The channel template needs more values than the message gave. "
                "Fix the template's parameters first.",
            ),
            (
                "TEMPLATE_NON_EXISTING_LANGUAGE_OR_VERSION",
                "Channel template language not available",
                "The channel template does not exist in this language or "
                "version. Fix the template's language first.",
            ),
            (
                "MEDIA_TYPE_UNSUPPORTED",
                "Media type not supported",
                "The channel does not accept this kind of image, video or file. "
                "Use another format.",
            ),
            (
                "MEDIA_TOO_LARGE",
                "Media file too large",
                "The image, video or file is too large for the channel. Use a "
                "smaller file.",
            ),
            (
                "MEDIA_NOT_REACHABLE",
                "Media link not reachable",
                "The channel could not download the image, video or file from "
                "its link. Check that the link works publicly first.",
            ),
            (
                "BAD_REQUEST",
                "Message refused as invalid",
                "Sinch refused the message as invalid. The message or the "
                "campaign's channel settings need fixing first.",
            ),
            (
                "UNKNOWN_APP",
                "Sending app not found",
                "Sinch does not know the app the message was sent from: the "
                "account set-up needs fixing.",
            ),
            (
                "CHANNEL_BAD_CONFIGURATION",
                "Channel set up incorrectly",
                "The channel is set up incorrectly in the Sinch app. Ask whoever "
                "manages the Sinch account.",
            ),
            (
                "CHANNEL_CONFIGURATION_MISSING",
                "Channel not set up",
                "The channel is not set up in the Sinch app. Ask whoever manages "
                "the Sinch account.",
            ),
            (
                "CHANNEL_REJECT",
                "Refused by the channel",
                "The channel refused the message. Sending it again unchanged "
                "will be refused again.",
            ),
            (
                "NO_PERMISSION",
                "Not permitted",
                "The Sinch account may not send this message on this channel. "
                "Ask whoever manages the Sinch account.",
            ),
            (
                "NO_PROFILE_AVAILABLE",
                "Profile not available",
                "The person's profile on the channel is not available to us.",
            ),
            (
                "UNSUPPORTED_OPERATION",
                "Not supported by the channel",
                "The channel does not support this kind of message.",
            ),
            (
                "INACTIVE_CREDENTIAL",
                "Channel credentials inactive",
                "The channel's credentials in the Sinch app are inactive. Ask "
                "whoever manages the Sinch account.",
            ),
            (
                "MESSAGE_SPLIT_REQUIRED",
                "Message too long for the channel",
                "The message is too long for the channel and would have to be "
                "split. Shorten it.",
            ),
            (
                "DELIVERY_REPORT_TIME_OUT",
                "Delivery unknown",
                "No delivery report came back in time, so the person may have "
                "received the message. Not retried automatically, to avoid "
                "sending it twice.",
            ),
            (
                "UNKNOWN",
                "Unknown reason",
                "Sinch gave no reason. Treated as permanent so that it is never "
                "sent again without someone deciding to.",
            ),
            (
                BATCH_FAILED,
                "Whole batch failed",
                "The batch this person was in failed as a whole: Sinch refused "
                "it (its reason is shown). The message or the campaign's "
                "settings usually need fixing first.",
            ),
        ],
    ),
}
TRANSIENT_CODES = frozenset(k.code for k in KINDS.values() if k.is_transient)


def describe(code: str) -> FailureKind:
    """The kind of a failure code; "" is a failed batch; unknown is permanent."""
    code = (code or "").strip() or BATCH_FAILED
    kind = KINDS.get(code)
    if kind is not None:
        return kind
    return FailureKind(
        code,
        PERMANENT,
        code.replace("_", " ").capitalize(),
        f"Sinch reported {code}, a reason this product does not know. Treated "
        "as permanent so that it is never sent again without someone deciding "
        "to.",
    )


def classify(code: str) -> FailureClass:
    """TRANSIENT or PERMANENT for a reason code ("" or unknown: permanent)."""
    return describe(code).failure_class


def classify_recipient(recipient) -> FailureClass:
    """The class of a failed Recipient: by its reason code, or a failed batch."""
    return classify(recipient.failure_code)


def recipient_filter(classes) -> Q:
    """A Recipient filter on `failure_code` matching the given classes."""
    classes = set(classes)
    transient = Q(failure_code__in=sorted(TRANSIENT_CODES))
    if classes >= {TRANSIENT, PERMANENT}:
        return Q()
    if classes == {TRANSIENT}:
        return transient
    if classes == {PERMANENT}:
        return ~transient
    return Q(pk__in=[])
