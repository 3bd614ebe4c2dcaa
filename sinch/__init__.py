"""The Sinch boundary: everything that knows Sinch's names, URLs and JSON."""
