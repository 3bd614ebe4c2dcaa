"""A local stand-in for Sinch: token endpoint, Batch API and signed callbacks.

Module map: server (HTTP and the Simulator facade), api (token and Batch API
endpoints), app_setup (the Conversation API's app and webhooks endpoints),
validation (Sinch's 400s), engine (batch lifecycle, message drain, receipts
over simulated time), outcomes (what happens to one message), events
(callback payloads), delivery (signed POSTs with retries), state, knobs,
clock, control (/_simulator/ inspection and control endpoints).
"""

from sinch.simulator.knobs import Account, Knobs
from sinch.simulator.server import Simulator

__all__ = ["Account", "Knobs", "Simulator"]
