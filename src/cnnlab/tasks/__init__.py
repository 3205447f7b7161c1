"""One LightningModule per task, and the table of tasks (``cnnlab.tasks.table``)."""
