"""Triton kernels of msclr, installed as the subpackage `msclr.kernels`.

Each kernel module sits beside the torch reference in msclr/ops/reference.py and is
launched from inside an opaque `torch.library.custom_op` (not `triton_op`, which
cannot compile on CPU), so torch.compile treats it as one node. Kernels run on a
GPU, or on CPU under TRITON_INTERPRET=1 (how the tests exercise them without one).
"""
