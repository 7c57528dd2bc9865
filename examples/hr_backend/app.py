"""The HR review API. Every answer is scoped by the verified subject, never by the request.

A model may phrase or inject anything into a tool call ("show me Sales",
"I am the CEO", a list of employee ids): the only identity this service uses
is the one in Bastion's signed token, so a manager sees their own review and
their reports' reviews, and nothing else.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from examples.hr_backend.data import Employee, OrgChart, Review
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bastion.backend import BastionTokenVerifier, VerifiedCaller, require_bastion_caller

#: The scope every review endpoint needs.
READ_SCOPE = "hr.reviews.read"
#: Longest search query accepted, in characters.
MAX_QUERY_CHARS = 500

log = logging.getLogger("hr_backend")


def _review_json(chart: OrgChart, review: Review) -> dict[str, Any]:
    emp = chart.by_id[review.employee_id]
    return {
        "employee_id": emp.id,
        "name": emp.name,
        "department": emp.department,
        "cycle": review.cycle,
        "rating": review.rating,
        "reviewer_id": review.reviewer_id,
        "feedback": review.feedback,
    }


def create_app(
    verifier: BastionTokenVerifier, *, chart: OrgChart | None = None, allow_indirect: bool = True
) -> Starlette:
    """The HR service: reviews of the caller and of the people who report to them."""
    org = chart or OrgChart()
    # Every review endpoint needs the read scope; the helper answers 403 without it.
    caller_of = require_bastion_caller(verifier, scopes=[READ_SCOPE])

    async def employee_of(request: Request) -> tuple[VerifiedCaller, Employee]:
        caller = await caller_of(request)
        me = org.by_subject.get(caller.subject)
        if me is None:
            log.info("rid=%s sub=%s refused: not an employee", caller.request_id, caller.subject)
            raise HTTPException(403, detail="not_an_employee")
        return caller, me

    def visible_ids(me: Employee, indirect: bool) -> list[str]:
        reports = org.all_reports(me.id) if indirect and allow_indirect else org.direct_reports(me.id)
        return [me.id, *reports]

    def answer(caller: VerifiedCaller, what: str, body: dict[str, Any]) -> JSONResponse:
        # The correlation id ties this line to the user's request and the gateway's audit event.
        log.info(
            "rid=%s sub=%s act=%s %s -> %d records",
            caller.request_id,
            caller.subject,
            caller.actor,
            what,
            len(body.get("reviews", [])),
        )
        return JSONResponse({**body, "request_id": caller.request_id})

    async def me(request: Request) -> JSONResponse:
        caller, emp = await employee_of(request)
        reports = org.direct_reports(emp.id)
        return answer(caller, "me", {"employee_id": emp.id, "name": emp.name, "reports": reports})

    async def team_reviews(request: Request) -> JSONResponse:
        caller, emp = await employee_of(request)
        indirect = request.query_params.get("include_indirect", "").lower() in ("1", "true", "yes")
        ids = visible_ids(emp, indirect)[1:]  # the team, without the manager
        reviews = [_review_json(org, org.reviews[i]) for i in ids]
        return answer(caller, "team", {"manager_id": emp.id, "reviews": reviews})

    async def one_review(request: Request) -> JSONResponse:
        caller, emp = await employee_of(request)
        wanted = request.path_params["employee_id"]
        # Unknown ids and other people's ids look the same, so nobody can probe who exists.
        if wanted not in visible_ids(emp, indirect=True):
            log.info("rid=%s sub=%s refused review of %s", caller.request_id, caller.subject, wanted)
            raise HTTPException(403, detail="not_in_your_team")
        return answer(caller, f"review {wanted}", {"reviews": [_review_json(org, org.reviews[wanted])]})

    async def search_reviews(request: Request) -> JSONResponse:
        caller, emp = await employee_of(request)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise HTTPException(400, detail="body is not JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(400, detail="body must be a JSON object")
        query = str(body.get("query", ""))[:MAX_QUERY_CHARS].lower()
        department = body.get("department")
        # Whatever the body asks for, the search runs over the caller's own team only.
        team = visible_ids(emp, indirect=bool(body.get("include_indirect", True)))
        found = []
        for eid in team:
            r, person = org.reviews[eid], org.by_id[eid]
            if department and person.department != department:
                continue
            if query and query not in r.feedback.lower() and query not in person.name.lower():
                continue
            found.append(_review_json(org, r))
        return answer(caller, "search", {"reviews": found})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/me", me),
            Route("/reviews/team", team_reviews),
            Route("/reviews/search", search_reviews, methods=["POST"]),
            Route("/reviews/{employee_id}", one_review),
        ]
    )
