"""Simulated 4D-STEM scans with their ground truth.

Two physics, one output layout (``/data`` (Rx, Ry, Qx, Qy) uint16, ``/truth`` int8 with
its ``classes``, ``/simulation`` attributes):

* :mod:`~ghosttui.simulate.kinematic` (the default, ``--physics kinematic``): a fast
  boracite-like simulator whose polarization signal is a faint "ghost" disk;
* ``--physics multislice``: patterns composed from an abTEM multislice library of a
  polar perovskite (:mod:`~ghosttui.simulate.structures`,
  :mod:`~ghosttui.simulate.library`, :mod:`~ghosttui.simulate.compose`; needs the
  ``multislice`` extra for the one-time library build).

Domain layouts (:mod:`~ghosttui.simulate.layouts`) are shared by both.
"""

from ghosttui.simulate.kinematic import (
    FORMAT_VERSION,
    SimulationSettings,
    domain_truth,
    simulate,
)
from ghosttui.simulate.layouts import CLASSES, GEOMETRIES, HORIZONTAL, NONE, VERTICAL

PHYSICS = ("kinematic", "multislice")

__all__ = [
    "CLASSES",
    "FORMAT_VERSION",
    "GEOMETRIES",
    "HORIZONTAL",
    "NONE",
    "PHYSICS",
    "VERTICAL",
    "SimulationSettings",
    "domain_truth",
    "simulate",
]
