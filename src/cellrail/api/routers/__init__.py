"""One router per area of the API; each route parses input, calls one use case and formats its answer."""

from __future__ import annotations

from cellrail.api.schemas import ErrorAnswer, ValidationAnswer

# Answers every authenticated route may give, documented once.
AUTHENTICATED: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorAnswer, "description": "Missing, unknown or expired bearer token"},
    422: {"model": ValidationAnswer, "description": "Invalid input; each problem names its field"},
}
NOT_VISIBLE: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorAnswer, "description": "No such order, or not visible to the caller's node"},
}
FORBIDDEN: dict[int | str, dict[str, object]] = {
    403: {"model": ErrorAnswer, "description": "The caller's role or node does not allow this"},
}
