"""A small Flask LMS that keeps its own SQLAlchemy models and uses learnprivacy in place.

No learnprivacy ``Store``: the LMS's ``users``, ``enrolments`` and ``forum_posts`` tables
are its own; ``learnprivacy.sqlalchemy`` encrypts their personal columns, finds learners
by e-mail, exports and erases them, sweeps them by retention rules and builds the Art. 30
register, all from the declarations on the models (``models.py``).
"""

from examples.flask_lms.app import create_app

__all__ = ["create_app"]
