"""The front door's admin API: state, drain/undrain, and the region_down partition fault."""

from __future__ import annotations

from flask import Flask, Response

from aggregator.faults import FaultBook, FaultKind, parse_fault_request
from aggregator.frontdoor.routing import RegionTable
from aggregator.httpapi import IdempotencyCache, admin_endpoint, json_body, json_response

ACCEPTED_FAULTS = (FaultKind.REGION_DOWN,)


def install_admin(app: Flask, token: str, table: RegionTable, faults: FaultBook) -> None:
    admin = admin_endpoint(token, IdempotencyCache())

    @app.get("/admin/state")
    @admin
    def state() -> Response:
        return json_response(
            {
                "role": "frontdoor",
                "regions": [view.as_json() for view in table.snapshot()],
                "faults": [fault.as_json() for fault in faults.active()],
            }
        )

    @app.post("/admin/regions/<region_id>/drain")
    @admin
    def drain(region_id: str) -> Response:
        changed = table.set_drained(region_id, True)
        return json_response({"region": region_id, "drained": True, "changed": changed})

    @app.post("/admin/regions/<region_id>/undrain")
    @admin
    def undrain(region_id: str) -> Response:
        changed = table.set_drained(region_id, False)
        return json_response({"region": region_id, "drained": False, "changed": changed})

    @app.post("/admin/faults")
    @admin
    def add_fault() -> Response:
        kind, target, magnitude, duration = parse_fault_request(json_body(), ACCEPTED_FAULTS)
        table.region(target)  # 404 naming an unknown region
        fault = faults.add(kind, target, magnitude, duration)
        return json_response(fault.as_json(), 201)

    @app.delete("/admin/faults/<fault_id>")
    @admin
    def remove_fault(fault_id: str) -> Response:
        return json_response({"removed": faults.remove(fault_id).as_json()})
