"""testmode-proxy: a reverse proxy that gives a messaging provider's API a real test mode."""

__version__ = "0.1.0"
