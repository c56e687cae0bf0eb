"""A fast lane for the vendors' hot endpoints.

The Printmotor webhook is the one endpoint whose volume a vendor controls. It is a bare ASGI
endpoint already; this lane also skips the layers FastAPI puts between the app's own
middlewares and its router (exception and telemetry wrappers, its body-limit wrapper, the
exit-stack middleware, the route search), which cost the webhook a tenth of its CPU. It sits
inside the request-id/access-log and body-limit middlewares, so those apply unchanged, and
it answers errors with the same functions as the app's exception handlers.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import DATABASE_ERRORS, ProblemError, database_error_response, problem_for


class FastLane:
    """Serve `routes` (POST only) directly; everything else goes on to the app."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self.exact = {route.path: route for route in routes if not route.param_convertors}
        self.templated = [route for route in routes if route.param_convertors]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root_path: str = scope.get("root_path", "")
            if root_path and path.startswith(root_path):
                path = path[len(root_path) :]
            route = self.exact.get(path)
            if route is None:
                for candidate in self.templated:
                    match, child = candidate.matches(scope)
                    if match == Match.FULL:
                        route = candidate
                        scope.update(child)
                        break
        if route is None:
            await self.app(scope, receive, send)
            return
        # What the router would have recorded: the access log and metrics label by it.
        scope["route"] = route
        try:
            await route.app(scope, receive, send)
            return
        except ProblemError as exc:
            response = problem_for(exc, scope["path"])
        except DATABASE_ERRORS as exc:
            response = database_error_response(exc)
        await response(scope, receive, send)
