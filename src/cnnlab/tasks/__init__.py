"""LightningModules, one per task: the data config's `task` picks one."""

TASK_MODULES = {
    "classification": "cnnlab.tasks.classification.ClassificationModule",
    "detection": "cnnlab.tasks.detection.DetectionModule",
    "segmentation": "cnnlab.tasks.segmentation.SegmentationModule",
}
