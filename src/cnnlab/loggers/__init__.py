"""Loggers beside Lightning's own: MLflow (``logger=mlflow``) and the record a run folder keeps
of where it was logged."""
