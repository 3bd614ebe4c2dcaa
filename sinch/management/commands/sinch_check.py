"""Check the real Sinch setup step by step (README: Going live with Sinch).

Exit status 1 when a step fails. Reads only: nothing is changed at Sinch.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from sinch import setup_check
from sinch.config import CREDENTIAL_SETTINGS, sinch_settings

STYLE = {
    setup_check.OK: "SUCCESS",
    setup_check.WARN: "WARNING",
    setup_check.FAIL: "ERROR",
    setup_check.SKIP: "NOTICE",
}


class Command(BaseCommand):
    help = (
        "Check the Sinch setup: credentials, token, the region's Batch API, the "
        "app and its processing mode, and the webhook (target, triggers, secret)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--webhook-url",
            default="",
            help="the address Sinch must post callbacks to "
            "(default: SITE_URL + /webhooks/sinch)",
        )
        parser.add_argument(
            "--consent-management",
            action="store_true",
            help="Sinch's consent management is on for the app: OPT_OUT and "
            "OPT_IN are required triggers (otherwise only advised)",
        )
        parser.add_argument(
            "--timeout", type=float, default=10.0, help="seconds per call to Sinch"
        )

    def handle(self, *args, webhook_url, consent_management, timeout, **options):
        conf = sinch_settings()
        configured = {
            name: getattr(settings, name)
            for name in (*CREDENTIAL_SETTINGS, "SINCH_WEBHOOK_SECRET")
        }
        site = settings.SITE_URL
        options = setup_check.Options(
            webhook_url=webhook_url
            or (site + reverse("sinch-webhook") if site else ""),
            consent_management=consent_management,
            timeout_s=timeout,
        )
        steps = setup_check.check_setup(conf, configured, options)
        width = max(len(step.name) for step in steps)
        for step in steps:
            style = getattr(self.style, STYLE[step.status])
            self.stdout.write(
                f"{style(step.status.ljust(4))}  {step.name.ljust(width)}  {step.text}"
            )
            if step.advice:
                self.stdout.write(f"{'':4}  {'':{width}}  -> {step.advice}")
        if setup_check.failed(steps):
            raise CommandError("The Sinch setup is not ready: see FAIL above.")
        self.stdout.write("The Sinch setup is ready.")
