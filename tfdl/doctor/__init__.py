"""`tfdl doctor`: find what would break a `.keras` file, a SavedModel or a `.tflite` file before a user hits it.

Each problem is named with its layer (or signature, or op) and the change
that fixes it; `main_doctor` exits non-zero on any, so it can gate CI.

A finding true of the file but beside its purpose is a note (`severity:
"note"`), which does not fail the exit status: ops TFLite cannot run, in a
SavedModel whose `manifest.json` says its export writes no TFLite file
(`export.tflite: []`), or in the `model.keras` of a tfdl export folder
whose manifest says so. Without a manifest (a SavedModel from other tools,
a `.keras` file elsewhere) they are problems. The TFLite check covers what tfdl's export converts:
recurrent layers with a fixed sequence length are unrolled first, and a
subclassed model is exported with the input shape its file records.
"""

from tfdl.doctor.command import diagnose, main_doctor
from tfdl.doctor.findings import DoctorReport, Finding

__all__ = ["DoctorReport", "Finding", "diagnose", "main_doctor"]
