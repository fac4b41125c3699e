"""Building blocks of the encoders: RMSNorm, the selective SSM branch, the causal and bidirectional mixers."""

from .bimamba import BiMambaMixer
from .block import MambaBlock
from .norm import RMSNorm
from .ssm import SelectiveSSM

__all__ = ["BiMambaMixer", "MambaBlock", "RMSNorm", "SelectiveSSM"]
