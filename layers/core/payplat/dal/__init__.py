"""The data access layer: the only place boto3 is imported."""
