"""tfdl.pipelines: a user's data to a `tf.data.Dataset` (sources -> transforms -> feed).

Installed as `tfdl.pipelines`; it never imports `tfdl.serving`.
"""

from tfdl.pipelines.config import DataConfig, SplitConfig
from tfdl.pipelines.dataset import make_dataset
from tfdl.pipelines.normalization import fit_normalization
from tfdl.pipelines.pipeline import Pipeline, build_pipeline
from tfdl.pipelines.sklearn_datasets import ArrayData, load_sklearn_dataset
from tfdl.pipelines.splits import SplitIndices, split_indices

__all__ = [
    "ArrayData",
    "DataConfig",
    "Pipeline",
    "SplitConfig",
    "SplitIndices",
    "build_pipeline",
    "fit_normalization",
    "load_sklearn_dataset",
    "make_dataset",
    "split_indices",
]
