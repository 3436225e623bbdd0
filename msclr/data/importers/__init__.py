"""Importers of common skeleton dataset formats into the store, one module per format (named
as below; common.py holds what they share).

stgcn       st-gcn / CrosSCLR / AimCLR preprocessed data: ``{part}_data_joint.npy`` (or
            ``{part}_data.npy`` / ``{part}_position.npy``), float32 (N, C, T, V, M), with
            ``{part}_label.pkl`` = pickle of (sample names, labels) and, when present,
            ``{part}_num_frame.npy`` (valid frames; otherwise the frames up to the last
            non-zero one). Parts ``train`` and ``val`` become the train/test of one split.
ctrgcn      CTR-GCN / SGN ``.npz``: x_train/x_test (N, T, M*V*C) (NTU: M=2, V=25, C=3, joint-major
            then xyz), y_train/y_test one-hot (N, K) or labels (N,). Read in chunks straight
            from the zip, so a 7 GB array never sits in memory.
pyskl       PySKL / MMAction2 annotation pickle: {'split': {'xsub_train': [...], ...},
            'annotations': [{'frame_dir', 'label', 'keypoint' (M, T, V, C), optional
            'keypoint_score' (M, T, V), 'total_frames'}]}. 2-D keypoints with scores become
            (x, y, score) channels, as ST-GCN does for Kinetics.
estimator   per-sample outputs of a pose estimator for an existing store, matched by sample
            id: ``<dir>/<sample_id>.npy`` (or .npz), (T, V, C) or (T, M, V, C); units mm are
            scaled to metres (MeTRAbs' smplx_42 / berkeley_mhad_43 / smpl_24 are in mm).
folder      "bring your own" data, see `import_folder`.

Pickles are read with an unpickler that only builds plain Python containers and numpy
arrays, so a pickle from elsewhere cannot run code.
"""

from .common import MM, load_pickle
from .ctrgcn import import_ctrgcn
from .estimator import import_estimator
from .folder import CONVENTION_FILES, FOLDER_LAYOUT, folder_convention, import_folder
from .pyskl import import_pyskl
from .stgcn import import_stgcn

__all__ = [
    "CONVENTION_FILES",
    "FOLDER_LAYOUT",
    "MM",
    "folder_convention",
    "import_ctrgcn",
    "import_estimator",
    "import_folder",
    "import_pyskl",
    "import_stgcn",
    "load_pickle",
]
