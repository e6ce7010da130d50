"""The gateway's own control surface under ``/_testmode``: sandbox clock, inbound messages, forced
events, reset, webhook subscriptions. Never a provider path; errors are RFC 9457 problem details."""
