"""Polar perovskite structures from published parameters, as ase ``Atoms``.

Each structure has a polar phase (tetragonal P4mm, the polarization along c) and the
centrosymmetric cubic parent (Pm-3m) used for non-polar regions. Fractional coordinates
are in the crystal setting (a, a, c) with the A cation at the origin:
A (0, 0, 0), B (1/2, 1/2, 1/2 + dz_B), O1 (1/2, 1/2, dz_O1), O2 (1/2, 0, 1/2 + dz_O2),
O3 (0, 1/2, 1/2 + dz_O2).

Sources:

* PbTiO3, P4mm, room temperature: a = 3.904 A, c = 4.152 A, dz_Ti = 0.040,
  dz_O1 = dz_O2 = 0.112 (Ti displaced 0.17 A and O 0.47 A along c from Pb). G. Shirane,
  R. Pepinsky and B. C. Frazer, "X-ray and neutron diffraction study of ferroelectric
  PbTiO3", Acta Cryst. 9, 131-140 (1956).
  Cubic parent (above T_c = 763 K): a = 3.97 A (approximate).
* BaTiO3, P4mm, 300 K: a = 3.9998 A, c = 4.0180 A, dz_Ti = -0.018, dz_O1 = +0.016,
  dz_O2 = +0.015. R. H. Kwei, A. C. Lawson, S. J. L. Billinge and S.-W. Cheong,
  "Structures of the ferroelectric phases of barium titanate", J. Phys. Chem. 97,
  2368-2377 (1993); the same numbers as the BaTiO3 model of the pyasf package
  (carichte/pyasf, materials/BTO.py).
  Cubic parent: a = 4.006 A and displacement parameters U(Ba) = 0.0054, U(Ti) = 0.0088,
  U(O) = 0.0071 A^2: R. H. Buttner and E. N. Maslen, "Structural parameters and electron
  difference density in BaTiO3", Acta Cryst. B48, 764-769 (1992) (ICSD 67518).

Thermal vibrations (frozen phonons) use isotropic displacement parameters U_iso (the mean
square displacement along each axis, so the standard deviation is sqrt(U_iso)): BaTiO3
from Buttner and Maslen; PbTiO3 representative room-temperature values (Pb 0.0125,
Ti 0.0065, O 0.0090 A^2), not from one refinement.

Orientation (see :func:`unit_cell`): the beam runs along z = crystal a1; lab x is the
polar axis c with +P along +x; lab y = crystal a2. The detector rows (Qx) follow lab x
and the columns (Qy) lab y, so this canonical domain is "vertical" in ghosttui's classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from ghosttui.errors import GhostError

if TYPE_CHECKING:  # ase is imported only when a library is built
    from ase import Atoms

FORMAL_CHARGE = {"Pb": 2, "Ba": 2, "Ti": 4, "O": -2}


@dataclass(frozen=True)
class Phase:
    """One phase: tetragonal cell (a, a, c) and its five sites."""

    space_group: str
    a: float
    c: float
    dz: tuple[float, float, float]  # (dz_B, dz_O1, dz_O2) along c, fractions of c
    reference: str

    def sites(self, a_site: str, b_site: str) -> list[tuple[str, tuple[float, float, float]]]:
        dz_b, dz_o1, dz_o2 = self.dz
        return [
            (a_site, (0.0, 0.0, 0.0)),
            (b_site, (0.5, 0.5, 0.5 + dz_b)),
            ("O", (0.5, 0.5, dz_o1)),
            ("O", (0.5, 0.0, 0.5 + dz_o2)),
            ("O", (0.0, 0.5, 0.5 + dz_o2)),
        ]


@dataclass(frozen=True)
class Structure:
    key: str
    name: str
    a_site: str
    b_site: str
    polar: Phase
    parent: Phase
    u_iso: tuple[tuple[str, float], ...]  # (element, U_iso in A^2)
    u_reference: str

    def phase(self, name: str) -> Phase:
        return {"polar": self.polar, "parent": self.parent}[name]

    def sigmas(self) -> dict[str, float]:
        """Frozen-phonon displacement standard deviation per element (A)."""
        return {element: float(np.sqrt(u)) for element, u in self.u_iso}

    def describe(self) -> dict:
        """Every parameter, for the library's cache key and its file."""
        return asdict(self)


PTO = Structure(
    key="pto",
    name="PbTiO3",
    a_site="Pb",
    b_site="Ti",
    polar=Phase(
        "P4mm",
        3.904,
        4.152,
        (0.040, 0.112, 0.112),
        "Shirane, Pepinsky and Frazer, Acta Cryst. 9, 131 (1956)",
    ),
    parent=Phase(
        "Pm-3m", 3.97, 3.97, (0.0, 0.0, 0.0), "cubic PbTiO3 above T_c = 763 K (approximate)"
    ),
    u_iso=(("Pb", 0.0125), ("Ti", 0.0065), ("O", 0.0090)),
    u_reference="representative room-temperature values",
)

BTO = Structure(
    key="bto",
    name="BaTiO3",
    a_site="Ba",
    b_site="Ti",
    polar=Phase(
        "P4mm",
        3.9998,
        4.0180,
        (-0.018, 0.016, 0.015),
        "Kwei, Lawson, Billinge and Cheong, J. Phys. Chem. 97, 2368 (1993)",
    ),
    parent=Phase(
        "Pm-3m", 4.006, 4.006, (0.0, 0.0, 0.0), "Buttner and Maslen, Acta Cryst. B48, 764 (1992)"
    ),
    u_iso=(("Ba", 0.0054), ("Ti", 0.0088), ("O", 0.0071)),
    u_reference="Buttner and Maslen, Acta Cryst. B48, 764 (1992)",
)

STRUCTURES = {s.key: s for s in (PTO, BTO)}
PHASES = ("polar", "parent")

IDENTITY = np.eye(2, dtype=int)
MIRROR_X = np.array([[-1, 0], [0, 1]])  # x -> -x: flips a polarization along x
MIRROR_Y = np.array([[1, 0], [0, -1]])
ROTATE_90 = np.array([[0, -1], [1, 0]])  # x -> y


def get_structure(name: str) -> Structure:
    try:
        return STRUCTURES[name.lower()]
    except KeyError:
        known = ", ".join(STRUCTURES)
        raise GhostError(f"unknown --structure {name!r} (known: {known})") from None


def projected_symmetry(phase: str) -> list[np.ndarray]:
    """The 2D point group (integer 2x2 matrices on lab x, y) of a phase viewed down the beam.

    The polar phase with P along x keeps only the mirror y -> -y; the cubic parent has 4mm.
    """
    if phase == "polar":
        return [IDENTITY, MIRROR_Y]
    rotations = [np.linalg.matrix_power(ROTATE_90, k) for k in range(4)]
    return rotations + [r @ MIRROR_X for r in rotations]


def fractional_sites(structure: Structure, phase: str) -> list[tuple[str, np.ndarray]]:
    """Sites in the lab frame (x = c, y = a2, z = a1, fractions of the lab cell), +P along +x,
    atom planes normal to the beam at z = 1/4 and 3/4 (the centres of two half-cell slices)."""
    sites = structure.phase(phase).sites(structure.a_site, structure.b_site)
    ideal = structure.parent.sites(structure.a_site, structure.b_site)
    lab = [(element, np.array([f[2], f[1], f[0]], float)) for element, f in sites]
    dipole = sum(
        FORMAL_CHARGE[element] * (f[2] - g[2])
        for (element, f), (_, g) in zip(sites, ideal, strict=True)
    )
    flip = dipole < 0
    out = []
    for element, f in lab:
        x = (-f[0]) % 1.0 if flip else f[0] % 1.0
        out.append((element, np.array([x, f[1] % 1.0, (f[2] + 0.25) % 1.0])))
    return out


def polarization_sign(sites: list[tuple[str, np.ndarray]], structure: Structure) -> float:
    """Sign of the formal-charge dipole along lab x relative to the parent's ideal sites."""
    ideal = fractional_sites(structure, "parent")
    dipole = 0.0
    for (element, f), (_, g) in zip(sites, ideal, strict=True):
        shift = (f[0] - g[0] + 0.5) % 1.0 - 0.5
        dipole += FORMAL_CHARGE[element] * shift
    return float(np.sign(dipole))


def lab_cell(structure: Structure, phase: str) -> tuple[float, float, float]:
    """Lab-frame cell lengths (x, y, z) in A."""
    p = structure.phase(phase)
    return (p.c, p.a, p.a)


def unit_cell(structure: Structure, phase: str, operation: np.ndarray | None = None) -> Atoms:
    """The lab-frame unit cell of ``phase`` (ase Atoms), optionally transformed in-plane by
    ``operation`` (a 2x2 matrix on x, y: a mirror or a 90-degree rotation), as the
    re-simulation check of the library's symmetry copies needs."""
    from ase import Atoms

    sites = fractional_sites(structure, phase)
    cell = np.array(lab_cell(structure, phase))
    positions = np.array([f * cell for _, f in sites])
    if operation is not None:
        op = np.asarray(operation, float)
        positions[:, :2] = positions[:, :2] @ op.T
        new_xy = np.abs(op) @ cell[:2]
        cell = np.array([new_xy[0], new_xy[1], cell[2]])
    atoms = Atoms(
        [element for element, _ in sites], positions=positions, cell=np.diag(cell), pbc=True
    )
    atoms.wrap()
    return atoms
