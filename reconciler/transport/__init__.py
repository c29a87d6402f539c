"""transport: how the reconciler reaches chargers (DESIGN.md §3).

`gateway` defines the `Gateway` protocol and `Reply`; `central_system` is the embedded OCPP 1.6J
server, `inject` the proxy client (httpx; our own endpoint is `reconciler.api.inject`), `memory`
the in-process fake. Import the concrete classes from their modules.
"""
