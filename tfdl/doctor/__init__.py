"""`tfdl doctor`: find what would break a `.keras` file, a SavedModel or a `.tflite` file before a user hits it.

Each problem is named with its layer (or signature, or op) and the change
that fixes it; `main_doctor` exits non-zero on any, so it can gate CI.
"""

from tfdl.doctor.command import diagnose, main_doctor
from tfdl.doctor.findings import DoctorReport, Finding

__all__ = ["DoctorReport", "Finding", "diagnose", "main_doctor"]
