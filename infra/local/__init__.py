"""The local platform: moto as the embedded AWS and a gateway that serves the functions
in-process the way API Gateway would (`make run`, `python -m infra.local`)."""
