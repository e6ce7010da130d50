"""``python -m bench``: the gateway's test-mode and live paths against a bare Starlette app, naive
httpx and aiohttp proxies and the upstream itself, in one run. See bench/README.md."""
