"""The published contract: the OpenAPI 3.1 document, built from every capability's request
and response models. Imports the capabilities' exported modules; only the payments handler
(which serves it) and the tests import it.
"""
