"""Building blocks of the encoders: RMSNorm, the selective SSM branch, the causal and bidirectional mixers, RevIN."""

from .bimamba import BiMambaMixer
from .block import MambaBlock
from .norm import RMSNorm
from .revin import RevIN
from .ssm import SelectiveSSM

__all__ = ["BiMambaMixer", "MambaBlock", "RMSNorm", "RevIN", "SelectiveSSM"]
