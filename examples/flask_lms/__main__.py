"""Serve the Flask LMS on 127.0.0.1 (``python -m examples.flask_lms``).

``LMS_DATABASE_URL`` (default ``sqlite:///flask-lms.db``) holds the LMS's tables,
``LMS_KEYS_URL`` (default ``sqlite:///flask-lms.keys.db``) the data keys; the master key
comes from ``LEARNPRIVACY_MASTER_KEY`` and the admin token from ``LMS_ADMIN_TOKEN``.
"""

from __future__ import annotations

import os

from examples.flask_lms.app import create_app


def main() -> None:
    """Build the app from the environment and serve it until interrupted."""
    app = create_app(
        os.environ.get("LMS_DATABASE_URL", "sqlite:///flask-lms.db"),
        os.environ.get("LMS_KEYS_URL", "sqlite:///flask-lms.keys.db"),
    )
    app.run(host="127.0.0.1", port=int(os.environ.get("LMS_PORT", "5000")))


if __name__ == "__main__":
    main()
