"""Run the local Sinch simulator (token endpoint, Batch API, signed callbacks).

It serves the account of the SINCH_* settings (the fixed development account
when none are set), so the app and the simulator agree through one .env.
"""

import gc
from dataclasses import fields

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sinch.config import (
    SIMULATOR_HOST,
    SIMULATOR_PORT,
    SIMULATOR_WEBHOOK_SECRET,
    sinch_settings,
)
from sinch.simulator import Account, Knobs, Simulator


class Command(BaseCommand):
    help = "Run a local imitation of the Sinch Batch API and its callbacks."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--host", default=SIMULATOR_HOST)
        parser.add_argument("--port", type=int, default=SIMULATOR_PORT)
        parser.add_argument(
            "--if-needed",
            action="store_true",
            help="exit at once when real Sinch credentials are configured",
        )
        parser.add_argument(
            "--webhook-secret",
            default="",
            help="secret callbacks are signed with (default: SINCH_WEBHOOK_SECRET)",
        )
        defaults = Knobs()
        for knob in fields(Knobs):
            choices = knob.metadata["choices"] or None
            default = getattr(defaults, knob.name)
            parser.add_argument(
                "--" + knob.name.replace("_", "-"),
                dest=f"knob_{knob.name}",
                default=None,
                choices=choices,
                metavar=None if choices else _metavar(default),
                help=f"{knob.metadata['help']} (default: {_show(default)})",
            )

    def handle(self, *args, host, port, webhook_secret, if_needed, **options):
        conf = sinch_settings()
        if if_needed and not conf.simulated:
            self.stdout.write(
                "Sinch credentials are configured: sends go to Sinch "
                f"({conf.batch_api_url}); the simulator is not started."
            )
            return
        account = Account(
            project_id=conf.project_id,
            app_id=conf.app_id,
            key_id=conf.key_id,
            key_secret=conf.key_secret,
            # With DEBUG off and no usable secret the app refuses every
            # callback; the simulator still signs, with the development secret.
            webhook_secret=webhook_secret
            or next(iter(conf.webhook_secrets), SIMULATOR_WEBHOOK_SECRET),
        )
        knobs = Knobs()
        values = {
            name[5:]: value
            for name, value in options.items()
            if name.startswith("knob_") and value is not None
        }
        try:
            knobs.update(values)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            simulator = Simulator(account=account, knobs=knobs, host=host, port=port)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None
        target = (
            "No Sinch credentials are configured: the app sends to this simulator."
            if conf.simulated
            else "Real Sinch credentials are configured: the app sends to Sinch, "
            "not here (this simulator serves the same account)."
        )
        self.stdout.write(
            f"{target}\nSinch simulator on {simulator.url} (project "
            f"{account.project_id}, app {account.app_id}); callbacks go to "
            f"{knobs.webhook_url or 'nowhere (only recorded)'}, signed with "
            f"{_secret_source(webhook_secret)}; "
            f"state at {simulator.url}/_simulator/state. Ctrl-C stops it."
        )
        # Django's import-time objects live forever: freeze them out of the
        # collector, and collect less often. Parsing a 1000-recipient batch
        # allocates some 10,000 containers, which would otherwise trigger
        # dozens of collections per request.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        try:
            simulator.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Sinch simulator stopped.")


def _secret_source(given: str) -> str:
    if given:
        return "--webhook-secret"
    if sinch_settings().webhook_secrets and settings.SINCH_WEBHOOK_SECRET:
        return "SINCH_WEBHOOK_SECRET"
    if settings.DEBUG:
        return f"the development secret {SIMULATOR_WEBHOOK_SECRET!r}"
    return (
        f"the development secret {SIMULATOR_WEBHOOK_SECRET!r}, which the app "
        "refuses with DEBUG off (set SINCH_WEBHOOK_SECRET)"
    )


def _metavar(value):
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int | float):
        return "N"
    return "CODE=W,..." if isinstance(value, dict) else "TEXT"


def _show(value):
    if isinstance(value, dict):
        return ",".join(f"{k}={v:g}" for k, v in value.items())
    return value
