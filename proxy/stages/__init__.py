"""The pipeline stages, one module each, in request order (see :mod:`proxy.pipeline`)."""
