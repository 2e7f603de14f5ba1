"""The diverging colour map of the difference views, as a 256-entry table.

CET-D7 (``diverging_linear_bjy_30_90_c45``) from Peter Kovesi's perceptually uniform
colour maps (https://colorcet.com, CC-BY 4.0), as distributed by the colorcet package:
blue through grey to yellow, with lightness rising steadily from 30 to 90. The
steady lightness matters: a map that is dark (or light) in the middle folds
small positive and negative differences onto similar colours, which halved the
measured visibility of ghost disks (``benchmarks/views_visibility.py``).
Stored as a table because importing colorcet takes about a second.
"""

from __future__ import annotations

import numpy as np

_TABLE = (
    "1431c11832c11c33c11f33c02234c02535c02836bf2a36bf2d37bf2f38be3139be3339be353abd363bbd383bbc3a3cbc"
    "3b3dbc3d3ebb3f3ebb403fbb4240ba4341ba4441ba4642b94743b94844b94a44b84b45b84c46b74d46b74e47b74f48b6"
    "5149b65249b6534ab5544bb5554cb5564cb4574db4584eb4594fb35a4fb35b50b25c51b25d51b25e52b15e53b15f54b1"
    "6054b06155b06256af6357af6457af6458ae6559ae665aae675aad685bad685cad695dac6a5dac6b5eab6b5fab6c60ab"
    "6d60aa6e61aa6e62a96f63a97063a97064a87165a87266a87366a77367a77468a67569a67569a6766aa5766ba5776ca5"
    "786ca4786da4796ea37a6fa37a6fa37b70a27b71a27c72a17d72a17d73a17e74a07e75a07f759f7f769f80779f81789e"
    "81789e82799d827a9d837b9d837b9c847c9c847d9b857e9b857f9b867f9a86809a878199878299888298888398898498"
    "8985978a85978a86968b87968b88968c88958c89958d8a948d8b948e8c938e8c938f8d938f8e928f8f92908f91909091"
    "91919092919093928f94938e95938e96948d97958d98958c99968b9a968b9b978a9c988a9d98899e99889f9988a09a87"
    "a19b86a29b86a39c85a49d85a59d84a69e83a79e83a89f82a9a081aaa081aaa180aba27faca27fada37eaea37dafa47d"
    "b0a57cb1a57bb2a67bb3a77ab3a779b4a879b5a978b6a977b7aa77b8aa76b9ab75baac75baac74bbad73bcae73bdae72"
    "beaf71bfb070c0b070c0b16fc1b26ec2b26dc3b36dc4b46cc5b46bc6b56ac6b56ac7b669c8b768c9b767cab867cbb966"
    "cbb965ccba64cdbb63cebb63cfbc62cfbd61d0bd60d1be5fd2bf5ed3bf5ed4c05dd4c15cd5c15bd6c25ad7c359d8c358"
    "d8c457d9c556dac556dbc655dcc754dcc753ddc852dec951dfc950dfca4fe0cb4ee1cb4de2cc4ce3cd4be3cd49e4ce48"
    "e5cf47e6cf46e7d045e7d144e8d143e9d241ead340ead33febd43eecd53cedd63bedd639eed738efd837f0d835f1d933"
    "f1da32f2da30f3db2ef4dc2df4dc2bf5dd29f6de27f7de25f7df22f8e020f9e01dfae11afae217fbe313fce30ffde409"
)


def diverging_lut() -> np.ndarray:
    """(256, 3) uint8: index 0 is the most negative value, 128 zero, 255 the most positive."""
    raw = bytes.fromhex(_TABLE)
    return np.frombuffer(raw, np.uint8).reshape(256, 3).copy()
