"""Serve the mini-LMS with uvicorn on 127.0.0.1 (``python -m examples.fastapi_lms``).

The store is ``LMS_DATABASE_URL`` (default ``sqlite:///mini-lms.db``); the master key is
read from ``LEARNPRIVACY_MASTER_KEY`` and the admin token from ``LMS_ADMIN_TOKEN``.
"""

from __future__ import annotations

import os

import uvicorn

from examples.fastapi_lms.app import create_app


def main() -> None:
    """Build the app from the environment and serve it until interrupted."""
    app = create_app(os.environ.get("LMS_DATABASE_URL", "sqlite:///mini-lms.db"))
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("LMS_PORT", "8000")))


if __name__ == "__main__":
    main()
