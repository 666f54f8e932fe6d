"""Sources held in memory, by config: a source section in, an `ArrayData` out.

scikit-learn datasets, CSV files, a folder of images (as file paths, decoded
later in tf.data) and a folder of texts all load into memory; each loader
checks its data here, before any training, and names what is wrong.
"""

from __future__ import annotations

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.config import (
    CsvSource, GeneratedSource, ImageDirectorySource, SklearnSource, SyntheticShapesSource, TextDirectorySource,
)
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError


def load_examples(source, *, on_bad_data: str = "error", report: DataReport | None = None, seed: int = 0) -> ArrayData:
    """Load the examples of an in-memory source config, checked (`seed`: generated sources without their own)."""
    report = report if report is not None else DataReport()
    if isinstance(source, SklearnSource):
        from tfdl.pipelines.sklearn_datasets import load_sklearn_dataset

        return load_sklearn_dataset(source.name)
    if isinstance(source, CsvSource):
        from tfdl.pipelines.csv_source import load_csv

        return load_csv(
            source.path,
            source.label_column,
            header=source.header,
            column_names=source.column_names,
            column_types=source.column_types,
            feature_columns=source.feature_columns,
            delimiter=source.delimiter,
            class_names=source.class_names,
            input_name=source.input_name,
            on_bad_data=on_bad_data,
            report=report,
        )
    if isinstance(source, ImageDirectorySource):
        from tfdl.pipelines.image_directory import check_images, list_image_directory

        listed = list_image_directory(source.path, input_name=source.input_name)
        return check_images(listed, channels=source.channels, on_bad_data=on_bad_data, report=report)
    if isinstance(source, TextDirectorySource):
        from tfdl.pipelines.text_directory import load_text_directory

        return load_text_directory(
            source.path, encoding=source.encoding, input_name=source.input_name,
            on_bad_data=on_bad_data, report=report,
        )
    if isinstance(source, SyntheticShapesSource):
        from tfdl.pipelines.synthetic_shapes import CLASS_NAMES, make_shapes

        shapes = make_shapes(source.examples, source.image_size, source.seed if source.seed is not None else seed,
                             source.min_objects, source.max_objects)
        if source.task in ("detection", "instance"):
            raise DataError(
                f"data.source.task: {source.task} examples hold boxes, not one label; train a detection model "
                "(one_stage_detector, or two_stage_detector for masks), whose run builds them (tfdl.tasks.detection)"
            )
        if source.task == "segmentation":
            return ArrayData(shapes["image"], shapes["semantic_mask"], ("background", *CLASS_NAMES), source.input_name)
        return ArrayData(shapes["image"], shapes["largest_class"], CLASS_NAMES, source.input_name)
    if isinstance(source, GeneratedSource):
        from tfdl.pipelines.generated import generate

        return generate(source.name, source.examples, source.seed if source.seed is not None else seed, source.params)
    raise TypeError(f"{type(source).__name__} is not an in-memory source")
