"""tfdl.pipelines: a user's data to a `tf.data.Dataset` (sources -> transforms -> feed).

    build_pipeline(DataConfig(...), seed)      config -> checked, split, fitted feeds
    load_csv, from_dataframe, from_arrays      tabular sources
    list_image_directory, load_text_directory  folders of images or texts, one sub-folder per class
    write_tfrecords, read_tfrecords, load_tfds file and TFDS sources
    make_shapes, shapes_dataset                synthetic shapes with boxes and masks (ships with tfdl)
    generate, available_generators             generated datasets by name (xor, adding_problem, sine, ...)
    load_coco_detection, load_tfds_vision      COCO annotations; TFDS vision datasets per task
    augment_dataset                            augmentation that keeps boxes and masks with the image
    fit_normalization, fit_imputer, fit_text_vectorizer, build_augmentation
    class_weights, resample, window_dataset, bucket_by_length, pad_sequences

Installed as `tfdl.pipelines`; it never imports `tfdl.serving`. Names load
their module on first use, so the configs and errors import no TensorFlow.
"""

from tfdl.lazy_names import lazy_getattr

_LAZY = {
    "ArrayData": "tfdl.pipelines.array_data",
    "AugmentationConfig": "tfdl.pipelines.config",
    "CsvSource": "tfdl.pipelines.config",
    "DataConfig": "tfdl.pipelines.config",
    "ImageDirectorySource": "tfdl.pipelines.config",
    "ImbalanceConfig": "tfdl.pipelines.config",
    "MissingConfig": "tfdl.pipelines.config",
    "SklearnSource": "tfdl.pipelines.config",
    "SplitConfig": "tfdl.pipelines.config",
    "TextConfig": "tfdl.pipelines.config",
    "TextDirectorySource": "tfdl.pipelines.config",
    "TFDSSource": "tfdl.pipelines.config",
    "TFRecordSource": "tfdl.pipelines.config",
    "SyntheticShapesSource": "tfdl.pipelines.config",
    "DataReport": "tfdl.pipelines.data_report",
    "DataError": "tfdl.pipelines.errors",
    "make_dataset": "tfdl.pipelines.dataset",
    "feed_options": "tfdl.pipelines.options",
    "fit_normalization": "tfdl.pipelines.normalization",
    "Pipeline": "tfdl.pipelines.pipeline",
    "build_pipeline": "tfdl.pipelines.pipeline",
    "load_sklearn_dataset": "tfdl.pipelines.sklearn_datasets",
    "generate": "tfdl.pipelines.generated",
    "available_generators": "tfdl.pipelines.generated",
    "SplitIndices": "tfdl.pipelines.splits",
    "split_indices": "tfdl.pipelines.splits",
    "encode_labels": "tfdl.pipelines.labels",
    "from_arrays": "tfdl.pipelines.dataframe",
    "from_dataframe": "tfdl.pipelines.dataframe",
    "load_csv": "tfdl.pipelines.csv_source",
    "check_no_missing": "tfdl.pipelines.missing",
    "drop_missing": "tfdl.pipelines.missing",
    "fit_imputer": "tfdl.pipelines.missing",
    "write_tfrecords": "tfdl.pipelines.tfrecord",
    "read_tfrecords": "tfdl.pipelines.tfrecord",
    "scan_tfrecords": "tfdl.pipelines.tfrecord",
    "list_image_directory": "tfdl.pipelines.image_directory",
    "check_images": "tfdl.pipelines.image_directory",
    "build_augmentation": "tfdl.pipelines.augmentation",
    "augment": "tfdl.pipelines.augmentation",
    "image_loader": "tfdl.pipelines.image_directory",
    "load_image_array": "tfdl.pipelines.image_directory",
    "impute_report": "tfdl.pipelines.missing",
    "resample_dataset": "tfdl.pipelines.imbalance",
    "class_distribution": "tfdl.pipelines.imbalance",
    "vectorize": "tfdl.pipelines.text_vectorization",
    "tfds_splits": "tfdl.pipelines.tfds_source",
    "tfds_class_names": "tfdl.pipelines.tfds_source",
    "list_tfrecord_files": "tfdl.pipelines.tfrecord",
    "load_feature_spec": "tfdl.pipelines.tfrecord",
    "make_feed": "tfdl.pipelines.dataset",
    "load_text_directory": "tfdl.pipelines.text_directory",
    "fit_text_vectorizer": "tfdl.pipelines.text_vectorization",
    "save_vocabulary": "tfdl.pipelines.text_vectorization",
    "load_text_vectorizer": "tfdl.pipelines.text_vectorization",
    "bucket_by_length": "tfdl.pipelines.text_vectorization",
    "pad_sequences": "tfdl.pipelines.sequence_padding",
    "split_series": "tfdl.pipelines.windows",
    "window_dataset": "tfdl.pipelines.windows",
    "load_tfds": "tfdl.pipelines.tfds_source",
    "class_weights": "tfdl.pipelines.imbalance",
    "resample": "tfdl.pipelines.imbalance",
    "make_shapes": "tfdl.pipelines.synthetic_shapes",
    "shapes_dataset": "tfdl.pipelines.synthetic_shapes",
    "augment_example": "tfdl.pipelines.geometric_augmentation",
    "augment_dataset": "tfdl.pipelines.geometric_augmentation",
    "flip_example": "tfdl.pipelines.geometric_augmentation",
    "crop_example": "tfdl.pipelines.geometric_augmentation",
    "load_coco_detection": "tfdl.pipelines.coco_annotations",
    "load_tfds_vision": "tfdl.pipelines.tfds_vision",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)
