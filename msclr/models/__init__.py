"""Models: the unified ST-GCN encoder and the contrastive wrappers (SkeletonCLR/MoCo, AimCLR)."""

from .encoder import STGCNEncoder, simam_attention
from .layers import LayoutInputNorm, MaskedBatchNorm, STGCNUnit

__all__ = ["LayoutInputNorm", "MaskedBatchNorm", "STGCNEncoder", "STGCNUnit", "simam_attention"]
