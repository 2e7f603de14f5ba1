"""Reading 4D-STEM data: formats, lazy scans, fingerprints."""

from ghosttui.data.fingerprint import file_fingerprint
from ghosttui.data.formats import open_scan
from ghosttui.data.options import LoadOptions, parse_shape
from ghosttui.data.scan import Calibration, Scan

__all__ = ["Calibration", "LoadOptions", "Scan", "file_fingerprint", "open_scan", "parse_shape"]
