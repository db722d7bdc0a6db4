"""JSON API under /api/v1: the same services and permissions as the pages."""

from flask import Blueprint

bp = Blueprint("api", __name__)
