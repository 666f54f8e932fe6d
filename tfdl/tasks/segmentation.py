"""The semantic segmentation task of `tfdl run`: a class per pixel, scored by IoU.

Its data stage is `tfdl.pipelines.build_pipeline`: `(image, semantic_mask)`
feeds. With `data.augmentation` the training images are flipped, cropped and
colour-jittered with their masks (`tfdl.pipelines.dense_augmentation`);
validation and test images never are.
"""

from __future__ import annotations

from pathlib import Path

from tfdl.tasks.base import RunTask, TaskEvaluation
from tfdl.evaluation.tables import markdown_table


def segmentation_section(m) -> list[str]:
    """The report's test-set tables of `SegmentationMetrics`."""
    lines = markdown_table(["mean IoU", "pixel accuracy", "pixels"],
                           [[f"{m.mean_iou:.4f}", f"{m.pixel_accuracy:.4f}", int(m.confusion.sum())]])
    # A class absent from both truth and prediction has no IoU (NaN): shown as "-".
    lines += [""] + markdown_table(
        ["class", "IoU", "pixels"],
        [[name, "-" if m.iou[i] != m.iou[i] else f"{m.iou[i]:.3f}", int(m.confusion[i].sum())]
         for i, name in enumerate(m.class_names)],
    )
    return lines


class SegmentationTask(RunTask):
    name = "segmentation"

    def objective(self, pipeline):
        import keras

        from tfdl.losses import CrossentropyDiceLoss

        n = len(pipeline.class_names)
        return CrossentropyDiceLoss(), ["accuracy", keras.metrics.MeanIoU(n, sparse_y_pred=False, name="mean_iou")]

    def evaluate(self, model, pipeline, run_dir: Path) -> TaskEvaluation:
        from tfdl.evaluation import plot_confusion_matrix, plot_mask_overlays, segmentation_metrics

        predicted = model.predict(pipeline.test, verbose=0).argmax(axis=-1)
        names = pipeline.class_names
        m = segmentation_metrics(pipeline.test_labels, predicted, len(names), names)
        plots = {
            "Confusion matrix (test), pixels": plot_confusion_matrix(
                m.confusion, names, run_dir / "plots" / "confusion_matrix.png"),
            "Predicted masks (test)": plot_mask_overlays(
                pipeline.test_inputs, pipeline.test_labels, predicted, names, run_dir / "plots" / "masks.png"),
        }
        return TaskEvaluation(
            figures=m.to_dict(),
            headline=f"test mean IoU {m.mean_iou:.4f}, pixel accuracy {m.pixel_accuracy:.4f}",
            section=segmentation_section(m),
            plots=plots,
        )
