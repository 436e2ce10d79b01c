"""The HTTP layer: the API routes, the control API and dashboard, the result and asset URLs. Routes parse and
serialise; the work is done by the services below them."""
