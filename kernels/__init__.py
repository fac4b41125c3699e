"""The selective-scan core every seqmamba encoder runs on.

``selective_scan`` runs a whole sequence (training); ``selective_scan_bidirectional`` a forward and a
reverse scan over one z (bidirectional encoders), in one launch on the GPU; ``selective_state_update``
advances a recurrent state by one token (streaming inference); ``depthwise_conv1d`` is the short
convolution (+ SiLU) in front of every scan. Backends: ``reference`` (the
recurrence, step by step), ``torch`` (chunked, for CPUs), ``triton`` (GPU kernels, also runnable
under ``TRITON_INTERPRET=1``).
"""

from .conv1d import depthwise_conv1d, depthwise_conv1d_ref
from .scan import BACKENDS, selective_scan
from .scan_bidirectional import (
    ScanDirection,
    selective_scan_bidirectional,
    selective_scan_bidirectional_ref,
    separate_directions,
)
from .scan_reference import selective_scan_ref
from .state_update import selective_state_update, selective_state_update_ref

__all__ = [
    "BACKENDS",
    "ScanDirection",
    "depthwise_conv1d",
    "depthwise_conv1d_ref",
    "selective_scan",
    "selective_scan_bidirectional",
    "selective_scan_bidirectional_ref",
    "selective_scan_ref",
    "selective_state_update",
    "selective_state_update_ref",
    "separate_directions",
]
