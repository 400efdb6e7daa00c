"""A mini-LMS on FastAPI keeping its learning records with learnprivacy, end to end.

Learners enrol, progress, get certificates, download their data and file access or
erasure requests; administrators execute requests, run retention sweeps, verify the
audit chain and read the GDPR Art. 30 register::

    export LEARNPRIVACY_MASTER_KEY="$(openssl rand -base64 32)"
    export LMS_ADMIN_TOKEN="$(openssl rand -hex 16)"
    python -m examples.fastapi_lms        # then open http://127.0.0.1:8000/docs

``policy.py`` holds the retention schedule and the controller, ``schemas.py`` the
request bodies, ``routes.py`` the endpoints, ``app.py`` the factory. See
``docs/howto-integrate.md``.
"""

from examples.fastapi_lms.app import create_app
from examples.fastapi_lms.routes import LMS

__all__ = ["LMS", "create_app"]
