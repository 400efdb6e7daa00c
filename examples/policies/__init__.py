"""The five published privacy policies of the project's seed operators, as retention code.

One module per operator, named by what the operator is:

- :mod:`belgian_b2b_lms`: a Belgian LMS selling to employers (Job Access solutions);
- :mod:`french_engineering_school_moodle`: a French engineering school on Moodle (JUNIA);
- :mod:`saas_lms_processor`: a SaaS LMS provider acting as processor (Onlineformapro);
- :mod:`training_preparation_centre`: a training-preparation centre (Prépa Job's);
- :mod:`educational_publisher`: an educational publisher with e-learning (SEJER).

Each rule cites the line of the policy text (``seeds/*.txt``) it comes from. Where a policy
states no figure, the module says so and takes the figure as a parameter instead of
inventing one; ``tests/test_policies.py`` checks every promise.
"""

__all__ = [
    "belgian_b2b_lms",
    "educational_publisher",
    "french_engineering_school_moodle",
    "saas_lms_processor",
    "training_preparation_centre",
]
