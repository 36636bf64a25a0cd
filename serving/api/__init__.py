"""The HTTP API: the app factory, dependencies, middleware and one router per area."""

from serving.api.app import create_app, openapi_document

__all__ = ["create_app", "openapi_document"]
