"""The HTTP API: thin FastAPI routes over the rail's use cases (``create_app`` in ``cellrail.api.app``)."""
