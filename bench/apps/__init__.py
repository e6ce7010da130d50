"""The comparison servers the gateway is measured against; each is an ASGI app run by uvicorn."""
