"""Error pages and the JSON error shape `{"error": ..., "message": ..., "fields": ...}`."""

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


class ServiceError(Exception):
    """A business rule refused an action; views turn it into a 400/409 or a form error.

    `fields` maps a field name to a list of messages, as marshmallow does.
    """

    status = 400
    code = "invalid"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ConflictError(ServiceError):
    """The action clashes with what exists (a taken slug, the last host)."""

    status = 409
    code = "conflict"


def wants_json() -> bool:
    """Tell whether the client should get a JSON error rather than a page."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    """Answer an error as JSON or as a page, as the client prefers."""
    if wants_json():
        body = {"error": code, "message": message}
        if fields:
            body["fields"] = fields
        headers = {"WWW-Authenticate": 'Bearer realm="cop"'} if status == 401 else {}
        return jsonify(body), status, headers
    return render_template("errors/error.html", status=status, message=message), status


def _messages() -> dict[int, tuple[str, str]]:
    return {
        400: ("bad_request", _("The request could not be understood.")),
        401: ("unauthorized", _("Please log in to continue.")),
        403: ("forbidden", _("You do not have permission to do this.")),
        404: ("not_found", _("This page does not exist, or you cannot see it.")),
        405: ("method_not_allowed", _("This method is not allowed here.")),
        409: ("conflict", _("This conflicts with something that already exists.")),
        413: ("too_large", _("The request is too large.")),
        429: ("too_many_requests", _("Too many attempts. Please wait a little and try again.")),
        500: ("server_error", _("Something went wrong on our side. Please try again.")),
        503: ("unavailable", _("The service is unavailable for a moment.")),
    }


def register_error_handlers(app: Flask) -> None:
    """Answer HTTP errors with the JSON shape or an error page."""

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return error_response(
            400, "csrf", _("The form expired or lacked its security token. Please try again.")
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.response is not None:  # e.g. the redirect to the login page
            return error.response
        code, message = _messages().get(error.code, ("error", error.description))
        return error_response(error.code, code, message)

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        return error_response(error.status, error.code, error.message, error.fields)
