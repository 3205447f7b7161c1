"""Prediction per task: image files in, JSON rows and drawn pictures out (``predict_files``).

Each task's row in ``cnnlab.tasks.table`` names its predictor here."""
