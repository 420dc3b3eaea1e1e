"""Exception types for graphward's stand-in of ``langgraph_sdk.auth``.

Only used when the real ``langgraph-sdk`` distribution cannot be imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

__all__ = ["HTTPException"]


class HTTPException(Exception):
    """Raise from auth code to answer the request with a given HTTP error.

    ``status_code`` defaults to 401. When ``detail`` is omitted (or ``None``) the
    standard reason phrase of the status is used; an unknown status then makes the
    constructor itself fail with ``ValueError``. ``headers`` are added to the error
    response.
    """

    def __init__(
        self,
        status_code: int = 401,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # HTTPStatus(...) raises ValueError for codes it does not know.
        message = HTTPStatus(status_code).phrase if detail is None else detail
        self.status_code = status_code
        self.detail = message
        self.headers = headers

    def __str__(self) -> str:
        return "%s: %s" % (self.status_code, self.detail)

    def __repr__(self) -> str:
        return "%s(status_code=%r, detail=%r)" % (
            type(self).__name__,
            self.status_code,
            self.detail,
        )
