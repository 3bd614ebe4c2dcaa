"""Compliance guards: when each recipient may be messaged (time zones, quiet
hours, local-time sends), how often (the frequency cap), who must agree to a
large launch (four-eyes approval), and the opt-out footer."""
