"""The stateful sandbox: a simulated provider for sandbox keys (issue 11).

A policy switches it on with a ``sandbox:`` section (:mod:`~proxy.sandbox.spec`). Then every request a
sandbox key makes is answered from the key's workspace (:mod:`~proxy.sandbox.workspaces`) by the
*sandbox* stage (:mod:`proxy.stages.sandbox`), and never reaches the provider. Modules:

* :mod:`~proxy.sandbox.contacts`, :mod:`~proxy.sandbox.suppression`, :mod:`~proxy.sandbox.templates`,
  :mod:`~proxy.sandbox.messages`, :mod:`~proxy.sandbox.inbound`: the resources and their operations;
* :mod:`~proxy.sandbox.lifecycle`: the delivery lifecycle as scheduler steps; :mod:`~proxy.sandbox.magic`:
  magic numbers; :mod:`~proxy.sandbox.placeholders`: ``{{n}}`` template rules and rendering;
* :mod:`~proxy.sandbox.checks`: a send's checks, shared with validate-only on live keys
  (:mod:`~proxy.sandbox.lookups`: read-only GETs to the provider);
* :mod:`~proxy.sandbox.shapes`: rows → JSON through the policy's shape templates;
* :mod:`~proxy.sandbox.schema`: the tables; :mod:`~proxy.sandbox.runtime`: the assembled capability.

Events go to the outbox (:mod:`proxy.store.outbox`), where webhook delivery picks them up.
"""
