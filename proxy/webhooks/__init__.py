"""Webhook delivery for sandbox events: subscriptions, signing, delivery with retries, the attempt log, SSRF guard.

Not provider traffic: deliveries use their own HTTP client with its own timeouts, concurrency cap and
SSRF guard (``shared/DESIGN.md``, "Outbound calls other than forwarding"); ``proxy/forward.py`` stays
the only code that reaches a provider.
"""
