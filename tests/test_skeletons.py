"""Tests of msclr.skeletons: built-in conventions, ST-GCN adjacency, layout table, user conventions."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from msclr import skeletons
from msclr.skeletons import (
    ConventionError,
    LayoutTable,
    from_dict,
    load_file,
    make_convention,
    pad_joints,
    unpad_joints,
)

BUILTIN_COUNTS = {
    "ntu25": 25,
    "kinect_v1_20": 20,
    "smpl24": 24,
    "smplx42": 42,
    "berkeley_mhad43": 43,
    "coco17": 17,
    "h36m17": 17,
    "openpose18": 18,
}
BUILTINS = sorted(BUILTIN_COUNTS)

# docs/architecture.md section 9: NTU (Kinect v2) joints, 0-based.
NTU_JOINTS_CAMEL = [
    "SpineBase",
    "SpineMid",
    "Neck",
    "Head",
    "ShoulderLeft",
    "ElbowLeft",
    "WristLeft",
    "HandLeft",
    "ShoulderRight",
    "ElbowRight",
    "WristRight",
    "HandRight",
    "HipLeft",
    "KneeLeft",
    "AnkleLeft",
    "FootLeft",
    "HipRight",
    "KneeRight",
    "AnkleRight",
    "FootRight",
    "SpineShoulder",
    "HandTipLeft",
    "ThumbLeft",
    "HandTipRight",
    "ThumbRight",
]
# docs/architecture.md section 9: ST-GCN 'ntu-rgb+d' edges, 1-based, centre 21 (1-based).
STGCN_NTU_EDGES_1BASED = [
    (1, 2),
    (2, 21),
    (3, 21),
    (4, 3),
    (5, 21),
    (6, 5),
    (7, 6),
    (8, 7),
    (9, 21),
    (10, 9),
    (11, 10),
    (12, 11),
    (13, 1),
    (14, 13),
    (15, 14),
    (16, 15),
    (17, 1),
    (18, 17),
    (19, 18),
    (20, 19),
    (22, 23),
    (23, 8),
    (24, 25),
    (25, 12),
]


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch):
    """Each test sees its own copy of the convention registry (register() mutates module state)."""
    monkeypatch.setattr(skeletons, "_registry", dict(skeletons._registry))


# --------------------------------------------------------------------------- independent ST-GCN graph


def _stgcn_hop_distance(num_node, edges, max_hop):
    """ST-GCN get_hop_distance: reachability from matrix powers 0..max_hop, inf beyond."""
    a = np.zeros((num_node, num_node))
    for i, j in edges:
        a[j, i] = 1
        a[i, j] = 1
    arrive = []
    power = np.eye(num_node)
    for _ in range(max_hop + 1):
        arrive.append(power > 0)
        power = power @ a
    hop = np.full((num_node, num_node), np.inf)
    for d in range(max_hop, -1, -1):
        for i in range(num_node):
            for j in range(num_node):
                if arrive[d][i, j]:
                    hop[i, j] = d
    return hop


def _bfs_distance(num_node, edges, src):
    nbrs = [[] for _ in range(num_node)]
    for i, j in edges:
        nbrs[i].append(j)
        nbrs[j].append(i)
    dist = np.full(num_node, np.inf)
    dist[src] = 0
    frontier = [src]
    while frontier:
        nxt = []
        for u in frontier:
            for w in nbrs[u]:
                if dist[w] == np.inf:
                    dist[w] = dist[u] + 1
                    nxt.append(w)
        frontier = nxt
    return dist


def _stgcn_normalize_digraph(a):
    """A @ D^-1 with D the column sums (ST-GCN normalize_digraph)."""
    n = a.shape[0]
    col = np.zeros(n)
    for i in range(n):
        for j in range(n):
            col[i] += a[j, i]
    dn = np.zeros((n, n))
    for i in range(n):
        if col[i] > 0:
            dn[i, i] = 1.0 / col[i]
    return a @ dn


def _stgcn_hop_adjacency(num_node, hop_dis, valid_hop):
    """1 where two joints are a valid hop apart."""
    adjacency = np.zeros((num_node, num_node))
    for hop in valid_hop:
        for i in range(num_node):
            for j in range(num_node):
                if hop_dis[i, j] == hop:
                    adjacency[i, j] = 1
    return adjacency


def _stgcn_distance_parts(norm, hop_dis, valid_hop, num_node):
    """The distance strategy: one partition per valid hop."""
    out = np.zeros((len(valid_hop), num_node, num_node))
    for k, hop in enumerate(valid_hop):
        for i in range(num_node):
            for j in range(num_node):
                if hop_dis[i, j] == hop:
                    out[k, i, j] = norm[i, j]
    return out


def _stgcn_spatial_parts(norm, hop_dis, to_centre, valid_hop, num_node):
    """The spatial strategies: root, closer to the centre and further from it, per valid hop."""
    parts = []
    for hop in valid_hop:
        a_root = np.zeros((num_node, num_node))
        a_close = np.zeros((num_node, num_node))
        a_further = np.zeros((num_node, num_node))
        for i in range(num_node):
            for j in range(num_node):
                if hop_dis[j, i] == hop:
                    if to_centre[j] == to_centre[i]:  # inf == inf counts as equal
                        a_root[j, i] = norm[j, i]
                    elif to_centre[j] > to_centre[i]:
                        a_close[j, i] = norm[j, i]
                    else:
                        a_further[j, i] = norm[j, i]
        if hop == 0:
            parts.append(a_root)
        else:
            parts.append(a_root + a_close)
            parts.append(a_further)
    return np.stack(parts)


def stgcn_graph(num_node, neighbor_link, center, strategy="spatial", max_hop=1, dilation=1):
    """ST-GCN net/utils/graph.py Graph.get_adjacency, rewritten with plain loops."""
    self_link = [(i, i) for i in range(num_node)]
    edges = self_link + list(neighbor_link)
    hop_dis = _stgcn_hop_distance(num_node, edges, max_hop)
    valid_hop = list(range(0, max_hop + 1, dilation))
    norm = _stgcn_normalize_digraph(_stgcn_hop_adjacency(num_node, hop_dis, valid_hop))
    if strategy == "uniform":
        return norm[None]
    if strategy == "distance":
        return _stgcn_distance_parts(norm, hop_dis, valid_hop, num_node)
    if strategy == "spatial":
        to_centre = hop_dis[:, center]
    elif strategy == "spatial_bfs":
        to_centre = _bfs_distance(num_node, neighbor_link, center)
    else:
        raise ValueError(strategy)
    return _stgcn_spatial_parts(norm, hop_dis, to_centre, valid_hop, num_node)


def _ntu_edges_0based():
    return [(i - 1, j - 1) for i, j in STGCN_NTU_EDGES_1BASED]


# --------------------------------------------------------------------------- 1. built-in conventions


def test_available_contains_builtins():
    avail = skeletons.available()
    for name in BUILTINS:
        assert name in avail
    assert avail == sorted(avail)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_joint_count_and_names(name):
    conv = skeletons.get(name)
    assert conv.name == name
    assert conv.num_joints == BUILTIN_COUNTS[name]
    assert len(set(conv.joints)) == conv.num_joints
    for j in conv.joints:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", j), j
    for v, j in enumerate(conv.joints):
        assert conv.index(j) == v
    assert conv.unit in ("m", "mm", "px")
    assert skeletons.get(name) is conv  # cached
    assert skeletons.get(conv) is conv  # passed through


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_bones_form_one_tree(name):
    conv = skeletons.get(name)
    V = conv.num_joints
    assert len(conv.bones) == V - 1
    # No cycle (union-find), which with V-1 edges also implies connected.
    root = list(range(V))

    def find(v):
        while root[v] != v:
            root[v] = root[root[v]]
            v = root[v]
        return v

    for a, b in conv.bones:
        assert 0 <= a < V and 0 <= b < V and a != b
        ra, rb = find(a), find(b)
        assert ra != rb, f"bone {conv.joints[a]}-{conv.joints[b]} closes a cycle"
        root[ra] = rb
    assert len({find(v) for v in range(V)}) == 1
    # Connected (independently, by BFS).
    assert np.isfinite(_bfs_distance(V, conv.bones, conv.centre)).all()


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_flip_map(name):
    conv = skeletons.get(name)
    V = conv.num_joints
    flip = conv.flip
    assert len(flip) == V
    assert sorted(flip) == list(range(V))
    for v in range(V):
        assert flip[flip[v]] == v
    n_pairs = 0
    for v, j in enumerate(conv.joints):
        if "left" in j:
            twin = j.replace("left", "right")
            assert twin in conv.joints, f"{j} has no right twin"
            assert flip[v] == conv.index(twin)
            n_pairs += 1
        elif "right" in j:
            twin = j.replace("right", "left")
            assert twin in conv.joints, f"{j} has no left twin"
            assert flip[v] == conv.index(twin)
        else:
            assert flip[v] == v, f"non-lateral joint {j} maps to {conv.joints[flip[v]]}"
    assert n_pairs > 0
    assert sum(flip[v] != v for v in range(V)) == 2 * n_pairs
    # The centre is a midline joint.
    assert flip[conv.centre] == conv.centre


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_centre_and_parents(name):
    conv = skeletons.get(name)
    V = conv.num_joints
    assert isinstance(conv.centre, int) and 0 <= conv.centre < V
    parents = conv.parents
    assert len(parents) == V
    assert parents[conv.centre] == conv.centre
    bone_set = {frozenset(b) for b in conv.bones}
    dist = _bfs_distance(V, conv.bones, conv.centre)
    for v in range(V):
        if v == conv.centre:
            continue
        p = parents[v]
        assert 0 <= p < V and p != v
        assert frozenset((v, p)) in bone_set
        assert dist[p] == dist[v] - 1  # breadth-first tree: the parent is one hop closer
        # Following the parents reaches the centre in at most V-1 steps.
        u, steps = v, 0
        while u != conv.centre:
            u = parents[u]
            steps += 1
            assert steps < V
    # Every bone is a parent link in one direction or the other.
    assert {frozenset((v, parents[v])) for v in range(V) if v != conv.centre} == bone_set


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_to_dict_round_trip(name):
    conv = skeletons.get(name)
    d = conv.to_dict()
    back = from_dict(d)
    assert back == conv
    assert back.joints == conv.joints and back.bones == conv.bones and back.flip == conv.flip
    # The dict is the file format: it survives JSON.
    assert from_dict(json.loads(json.dumps(d))) == conv


def test_builtin_units():
    assert skeletons.get("ntu25").unit == "m"
    assert skeletons.get("kinect_v1_20").unit == "m"
    for name in ("smpl24", "smplx42", "berkeley_mhad43"):  # MeTRAbs output, docs/architecture.md section 9
        assert skeletons.get(name).unit == "mm"
    assert skeletons.get("openpose18").unit == "px"


@pytest.mark.parametrize("name", ["ntu25", "openpose18", "coco17", "berkeley_mhad43"])
def test_builtin_bones_point_towards_centre(name):
    # These conventions document (child, parent) bones oriented towards the centre.
    conv = skeletons.get(name)
    parents = conv.parents
    for child, parent in conv.bones:
        assert parents[child] == parent, (conv.joints[child], conv.joints[parent])


def test_builtin_yaml_files_load_through_the_user_loader(monkeypatch):
    # The built-ins are data files (msclr/skeletons/conventions/<name>.yaml) in the user file format.
    from msclr.skeletons.builtin import BUILTIN_SPECS

    folder = Path(skeletons.__file__).parent / "conventions"
    files = sorted(folder.glob("*.yaml"))
    stems = sorted(p.stem for p in files)
    assert stems == BUILTINS
    for path in files:
        conv = load_file(path)
        assert conv.name == path.stem  # the file's name field is its file name
        assert conv == skeletons.get(path.stem)
        assert skeletons.get(str(path)) == conv  # a path to the file works like any user file
    monkeypatch.setattr(skeletons, "_registry", {})  # no user-registered conventions
    assert skeletons.available() == stems
    assert sorted(BUILTIN_SPECS) == stems


def test_convention_is_frozen_and_index_errors():
    conv = skeletons.get("ntu25")
    with pytest.raises(dataclasses.FrozenInstanceError):
        conv.centre = 0
    with pytest.raises(ConventionError, match=r"unknown joint 'tail'"):
        conv.index("tail")


# --------------------------------------------------------------------------- 2. ntu25 = ST-GCN


def test_ntu25_matches_stgcn():
    conv = skeletons.get("ntu25")
    assert conv.bones == tuple(_ntu_edges_0based())
    assert conv.centre == 20
    assert conv.joints[20] == "spine_shoulder"
    # Joint order: docs/architecture.md section 9 names, CamelCase -> lower_snake_case.
    expected = [re.sub(r"(?<!^)([A-Z])", r"_\1", n).lower() for n in NTU_JOINTS_CAMEL]
    assert list(conv.joints) == expected
    # parents reproduces ST-GCN's (child, parent) orientation exactly.
    for child, parent in _ntu_edges_0based():
        assert conv.parents[child] == parent
    assert conv.flip[conv.index("hand_tip_left")] == conv.index("hand_tip_right")


# --------------------------------------------------------------------------- 3. adjacency


def test_ntu25_spatial_matches_independent_stgcn():
    A = skeletons.adjacency("ntu25")
    assert A.shape == (3, 25, 25)
    assert A.dtype == np.float32
    ref = stgcn_graph(25, _ntu_edges_0based(), 20, "spatial", max_hop=1)
    np.testing.assert_allclose(A, ref, rtol=1e-6, atol=1e-7)
    assert skeletons.adjacency(skeletons.get("ntu25")).shape == (3, 25, 25)


def test_ntu25_uniform_and_distance():
    U = skeletons.adjacency("ntu25", "uniform")
    assert U.shape == (1, 25, 25) and U.dtype == np.float32
    np.testing.assert_allclose(U[0].sum(0), np.ones(25), rtol=1e-6)
    np.testing.assert_allclose(U, stgcn_graph(25, _ntu_edges_0based(), 20, "uniform"), rtol=1e-6, atol=1e-7)
    D = skeletons.adjacency("ntu25", "distance", max_hop=1)
    assert D.shape == (2, 25, 25) and D.dtype == np.float32
    np.testing.assert_allclose(D, stgcn_graph(25, _ntu_edges_0based(), 20, "distance"), rtol=1e-6, atol=1e-7)
    # The partitions split the uniform matrix.
    np.testing.assert_allclose(D.sum(0), U[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(skeletons.adjacency("ntu25").sum(0), U[0], rtol=1e-6, atol=1e-7)


def test_ntu25_spatial_max_hop_2():
    A = skeletons.adjacency("ntu25", "spatial", max_hop=2)
    assert A.shape == (5, 25, 25)
    ref = stgcn_graph(25, _ntu_edges_0based(), 20, "spatial", max_hop=2)
    np.testing.assert_allclose(A, ref, rtol=1e-6, atol=1e-7)
    A2 = skeletons.adjacency("ntu25", "spatial", max_hop=2, dilation=2)
    assert A2.shape == (3, 25, 25)
    np.testing.assert_allclose(
        A2, stgcn_graph(25, _ntu_edges_0based(), 20, "spatial", max_hop=2, dilation=2), rtol=1e-6, atol=1e-7
    )


def test_ntu25_spatial_quirk_far_edges_in_root():
    """With max_hop=1 only the centre and its neighbours have a finite hop to the centre."""
    A = skeletons.adjacency("ntu25")
    ref = stgcn_graph(25, _ntu_edges_0based(), 20, "spatial", max_hop=1)
    j = skeletons.get("ntu25").index
    hand, wrist, tip, thumb = j("hand_left"), j("wrist_left"), j("hand_tip_left"), j("thumb_left")
    for M in (A, ref):
        # Far-from-centre edges (both ends at inf hops) go to the root partition (1), both directions.
        for a, b in [(hand, wrist), (tip, thumb), (thumb, hand)]:
            for x, y in [(a, b), (b, a)]:
                assert M[1, x, y] > 0
                assert M[2, x, y] == 0
        # shoulder (hop 1) - elbow (inf): closer in one direction, further in the other.
        sh, el = j("shoulder_left"), j("elbow_left")
        assert M[1, el, sh] > 0 and M[2, el, sh] == 0
        assert M[2, sh, el] > 0 and M[1, sh, el] == 0
    # The further partition holds exactly 8 entries: centre -> its 4 neighbours, and each
    # neighbour -> its neighbour away from the centre. Everything else beyond hop 1 is "root".
    expected = {(20, 1), (20, 2), (20, 4), (20, 8), (1, 0), (2, 3), (4, 5), (8, 9)}
    assert {tuple(p) for p in np.argwhere(ref[2] != 0).tolist()} == expected
    assert {tuple(p) for p in np.argwhere(A[2] != 0).tolist()} == expected


def test_ntu25_spatial_bfs_differs():
    conv = skeletons.get("ntu25")
    S = skeletons.adjacency("ntu25", "spatial")
    B = skeletons.adjacency("ntu25", "spatial_bfs")
    assert B.shape == S.shape == (3, 25, 25)
    assert not np.allclose(B, S)
    np.testing.assert_allclose(B, stgcn_graph(25, conv.bones, 20, "spatial_bfs"), rtol=1e-6, atol=1e-7)
    # True BFS: the further partition holds exactly parent -> child of every bone.
    expected = {(conv.parents[v], v) for v in range(25) if v != 20}
    assert {tuple(p) for p in np.argwhere(B[2] != 0).tolist()} == expected
    np.testing.assert_allclose(B.sum(0), S.sum(0), rtol=1e-6, atol=1e-7)


def test_adjacency_bad_arguments():
    with pytest.raises(ValueError, match="unknown adjacency strategy"):
        skeletons.adjacency("ntu25", "nope")
    with pytest.raises(ValueError, match="max_hop"):
        skeletons.adjacency("ntu25", max_hop=0)
    with pytest.raises(ConventionError, match="unknown skeleton convention"):
        skeletons.adjacency("no_such_skeleton")


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize(
    "strategy,max_hop,k",
    [("spatial", 1, 3), ("spatial", 2, 5), ("spatial_bfs", 1, 3), ("uniform", 1, 1), ("distance", 1, 2)],
)
def test_builtin_adjacency_matches_independent_stgcn(name, strategy, max_hop, k):
    conv = skeletons.get(name)
    V = conv.num_joints
    A = skeletons.adjacency(name, strategy, max_hop=max_hop)
    assert A.shape == (k, V, V) and A.dtype == np.float32
    ref = stgcn_graph(V, conv.bones, conv.centre, strategy, max_hop=max_hop)
    np.testing.assert_allclose(A, ref, rtol=1e-6, atol=1e-7)
    # Every column of the summed partitions sums to 1 (self-links make no column empty).
    np.testing.assert_allclose(A.sum(0).sum(0), np.ones(V), rtol=1e-5)


# --------------------------------------------------------------------------- 4. layout table

LAYOUT_NAMES = ("ntu25", "kinect_v1_20", "berkeley_mhad43")


@pytest.fixture
def table():
    return LayoutTable([skeletons.get(n) for n in LAYOUT_NAMES])


def test_layout_table_tensors(table):
    convs = [skeletons.get(n) for n in LAYOUT_NAMES]
    assert len(table) == 3
    assert table.names == LAYOUT_NAMES
    assert table.v_max == 43
    assert table.num_partitions == 3
    assert tuple(table.A.shape) == (3, 3, 43, 43)
    assert table.A.dtype == torch.float32
    assert table.joint_mask.dtype == torch.bool and tuple(table.joint_mask.shape) == (3, 43)
    assert table.num_joints.tolist() == [25, 20, 43]
    assert table.flip.dtype == torch.int64 and table.parent.dtype == torch.int64
    for l, conv in enumerate(convs):
        v = conv.num_joints
        assert table.layout_id(conv.name) == l
        A = table.A[l].numpy()
        np.testing.assert_array_equal(A[:, :v, :v], skeletons.adjacency(conv))
        assert not A[:, v:, :].any()
        assert not A[:, :, v:].any()
        assert table.joint_mask[l, :v].all() and not table.joint_mask[l, v:].any()
        assert table.flip[l, :v].tolist() == list(conv.flip)
        assert table.flip[l, v:].tolist() == list(range(v, 43))
        assert table.parent[l, :v].tolist() == list(conv.parents)
        assert table.parent[l, v:].tolist() == list(range(v, 43))
    with pytest.raises(KeyError, match="smpl24"):
        table.layout_id("smpl24")
    assert "V_max=43" in repr(table)


def test_layout_table_options():
    convs = [skeletons.get(n) for n in LAYOUT_NAMES]
    t = LayoutTable(convs, max_hop=2, v_max=50)
    assert tuple(t.A.shape) == (3, 5, 50, 50)
    assert not t.A[2, :, 43:, :].any() and not t.A[2, :, :, 43:].any()
    assert t.flip[2, 43:].tolist() == list(range(43, 50))
    u = LayoutTable(convs, strategy="uniform")
    assert tuple(u.A.shape) == (3, 1, 43, 43)
    with pytest.raises(ValueError, match="duplicate convention names"):
        LayoutTable([convs[0], convs[1], convs[0]])
    with pytest.raises(ValueError, match="smaller than the largest"):
        LayoutTable(convs, v_max=42)
    with pytest.raises(ValueError, match="at least one"):
        LayoutTable([])


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_layout_pad_unpad_round_trip(table, kind):
    rng = np.random.default_rng(0)
    for name, v in zip(LAYOUT_NAMES, (25, 20, 43)):
        x = rng.standard_normal((3, 4, v, 2)).astype(np.float32) + 1.0
        if kind == "torch":
            x = torch.from_numpy(x)
        p = table.pad(x, name)
        assert type(p) is type(x)
        assert tuple(p.shape) == (3, 4, 43, 2)
        assert p.dtype == x.dtype
        pn = np.asarray(p)
        assert (pn[:, :, v:] == 0).all()
        np.testing.assert_array_equal(pn[:, :, :v], np.asarray(x))
        u = table.unpad(p, name)
        assert tuple(u.shape) == tuple(x.shape)
        np.testing.assert_array_equal(np.asarray(u), np.asarray(x))
    bad = np.zeros((3, 4, 24, 2), np.float32)
    if kind == "torch":
        bad = torch.from_numpy(bad)
    with pytest.raises(ValueError, match="24 joints.*25"):
        table.pad(bad, "ntu25")
    with pytest.raises(ValueError, match=r"\(C, T, V, M\)"):
        table.pad(bad[0], "ntu25")
    with pytest.raises(ValueError, match=r"\(C, T, V, M\)"):
        table.unpad(bad[0], "ntu25")
    with pytest.raises(KeyError):
        table.pad(bad, "coco17")


def test_pad_joints_functions():
    x = torch.ones(2, 3, 5, 1, dtype=torch.float64)
    p = pad_joints(x, 7)
    assert p.dtype == torch.float64 and tuple(p.shape) == (2, 3, 7, 1)
    assert p[:, :, 5:].abs().sum() == 0 and torch.equal(unpad_joints(p, 5), x)
    with pytest.raises(ValueError, match="more than V_max"):
        pad_joints(x, 4)
    with pytest.raises(ValueError, match="its convention has 6"):
        pad_joints(x, 7, expected=6)


def test_layout_bones(table):
    rng = np.random.default_rng(1)
    layout = torch.tensor([0, 1, 2, 0, 1])
    samples = []
    for l in layout.tolist():
        v = table.conventions[l].num_joints
        samples.append(table.pad(torch.from_numpy(rng.standard_normal((3, 4, v, 2))), table.names[l]))
    x = torch.stack(samples)  # (N, C, T, V_max, M), zero padded
    # Garbage in the padded joints of the last sample: their bone must still be exactly zero.
    x[-1, :, :, 20:] = 7.0
    out = table.bones(x, layout)
    assert out.shape == x.shape and out.dtype == x.dtype
    for n, l in enumerate(layout.tolist()):
        conv = table.conventions[l]
        for v in range(43):
            if v < conv.num_joints:
                expected = x[n, :, :, v] - x[n, :, :, conv.parents[v]]
            else:
                expected = torch.zeros_like(x[n, :, :, v])
            assert torch.equal(out[n, :, :, v], expected), (n, v)
        assert (out[n, :, :, conv.centre] == 0).all()
        assert (out[n, :, :, conv.num_joints :] == 0).all()


# --------------------------------------------------------------------------- 5. user-defined conventions

TOY = dict(
    name="toy5",
    joints=["pelvis", "spine", "head", "left_arm", "right_arm"],
    bones=[["spine", "pelvis"], ["head", "spine"], ["left_arm", "spine"], ["right_arm", "spine"]],
    centre="spine",
    flip_pairs=[["left_arm", "right_arm"]],
    unit="mm",
    description="a toy skeleton",
)

TOY_YAML = """\
name: toy5
joints: [pelvis, spine, head, left_arm, right_arm]
bones:
  - [spine, pelvis]
  - [head, spine]
  - [left_arm, spine]
  - [right_arm, spine]
centre: spine
flip_pairs:
  - [left_arm, right_arm]
unit: mm
description: a toy skeleton
"""


def _check_toy(conv):
    assert conv.name == "toy5"
    assert conv.joints == ("pelvis", "spine", "head", "left_arm", "right_arm")
    assert conv.bones == ((1, 0), (2, 1), (3, 1), (4, 1))
    assert conv.centre == 1
    assert conv.flip == (0, 1, 2, 4, 3)
    assert conv.unit == "mm"
    assert conv.parents == (1, 1, 1, 1, 1)
    assert skeletons.adjacency(conv).shape == (3, 5, 5)


def test_user_convention_from_json(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(TOY))
    conv = load_file(path)
    _check_toy(conv)
    assert skeletons.get(str(path)) == conv
    assert skeletons.get(path) == conv
    assert conv == from_dict(dict(TOY))


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_user_convention_from_yaml(tmp_path, suffix):
    path = tmp_path / f"toy{suffix}"
    path.write_text(TOY_YAML)
    conv = load_file(path)
    _check_toy(conv)
    assert skeletons.get(str(path)) == conv
    assert conv == from_dict(dict(TOY))


def test_user_convention_from_python():
    conv = make_convention(
        "toy5",
        joints=TOY["joints"],
        bones=[(1, 0), ("head", 1), (3, "spine"), ("right_arm", "spine")],  # names and indices mix
        centre=1,
        flip_pairs=[(3, "right_arm")],
        unit="mm",
        description="a toy skeleton",
    )
    _check_toy(conv)
    assert conv == from_dict(dict(TOY))
    assert from_dict(conv.to_dict()) == conv
    # The same flip as a full permutation.
    perm = make_convention("toy5", TOY["joints"], TOY["bones"], "spine", flip=[0, 1, 2, "right_arm", 3], unit="mm")
    assert perm.flip == conv.flip
    derived = make_convention("toy5b", TOY["joints"], TOY["bones"], "spine", derived_from="toy5")
    assert derived.derived_from == "toy5" and from_dict(derived.to_dict()) == derived
    assert derived.flip == (0, 1, 2, 3, 4) and derived.unit == "m"


def test_register_and_get_by_name():
    conv = from_dict(dict(TOY, name="toy_registered"))
    assert "toy_registered" not in skeletons.available()
    assert skeletons.register(conv) is conv
    assert skeletons.get("toy_registered") is conv
    assert "toy_registered" in skeletons.available()
    with pytest.raises(ConventionError, match="already exists"):
        skeletons.register(from_dict(dict(TOY, name="toy_registered")))
    other = from_dict(dict(TOY, name="toy_registered", unit="m"))
    skeletons.register(other, overwrite=True)
    assert skeletons.get("toy_registered") is other
    with pytest.raises(ConventionError, match="already exists"):
        skeletons.register(from_dict(dict(TOY, name="ntu25")), overwrite=True)
    with pytest.raises(TypeError):
        skeletons.register(dict(TOY))
    table = LayoutTable([skeletons.get("ntu25"), skeletons.get("toy_registered")])
    assert table.num_joints.tolist() == [25, 5]


def test_get_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(ConventionError, match=r"unknown skeleton convention 'nope'.*ntu25"):
        skeletons.get("nope")
    missing = tmp_path / "missing.json"
    with pytest.raises(ConventionError, match=re.escape(str(missing)) + ".*does not exist"):
        skeletons.get(str(missing))


def _spec(**changes):
    d = json.loads(json.dumps(TOY))
    for k, v in changes.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    return d


@pytest.mark.parametrize(
    "changes,pattern",
    [
        (
            dict(bones=[["spine", "pelvis"], ["head", "neck"], ["left_arm", "spine"], ["right_arm", "spine"]]),
            r"field 'bones' entry 1: unknown joint 'neck'",
        ),
        (dict(centre="chest"), r"field 'centre': unknown joint 'chest'"),
        (dict(joints=["pelvis", "spine", "head", "left_arm", "spine"]), r"duplicate joint name 'spine'"),
        (
            dict(bones=[["spine", "pelvis"], ["left_arm", "spine"], ["right_arm", "spine"]]),
            r"skeleton not connected: joints \['head'\] cannot be reached",
        ),
        (
            dict(flip_pairs=[["left_arm", "right_arm"], ["left_arm", "head"]]),
            r"flip map is not an involution: joint 'left_arm' appears in more than one flip pair",
        ),
        (dict(flip=[0, 1, 3, 4, 2], flip_pairs=None), r"flip map is not an involution: 'head' -> 'left_arm'"),
        (dict(flip=[0, 1, 2, 4], flip_pairs=None), r"field 'flip': 4 entries for 5 joints"),
        (dict(flip=[0, 1, 2, 4, 3]), r"either 'flip' or 'flip_pairs'"),
        (dict(colour="red"), r"unknown field\(s\) \['colour'\]"),
        (dict(bones=None), r"missing field 'bones'"),
        (dict(centre=None), r"missing field 'centre'"),
        (dict(unit="inch"), r"field 'unit': 'inch' is not one of"),
        (dict(bones=[["spine", "pelvis"], ["head", "head"]]), r"links joint 'head' to itself"),
        (dict(bones=[["spine", 9]]), r"joint index 9 out of range"),
        (dict(bones=[["spine", "pelvis", "head"]]), r"not a pair of joints"),
        (dict(centre=True), r"True is not a joint name or index"),
        (dict(name=""), r"field 'name' must be a non-empty string"),
        (dict(joints=[]), r"field 'joints' is empty"),
    ],
)
def test_convention_errors(changes, pattern):
    with pytest.raises(ConventionError, match=pattern):
        from_dict(_spec(**changes), where="my_spec")
    with pytest.raises(ConventionError, match=r"^my_spec: "):
        from_dict(_spec(**changes), where="my_spec")


def test_not_connected_names_all_unreachable_joints():
    with pytest.raises(ConventionError) as info:
        make_convention("bad", ["a", "b", "c", "d", "e"], [("b", "a"), ("d", "e")], centre="a")
    msg = str(info.value)
    assert "not connected" in msg and "['c', 'd', 'e']" in msg and "'a'" in msg
    assert "'b'" not in msg.split("cannot be reached")[0]


def test_from_dict_not_a_mapping():
    with pytest.raises(ConventionError, match="expected a mapping, got list"):
        from_dict([1, 2])


def test_file_errors_name_the_file(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"name": "x", "joints": [')
    with pytest.raises(ConventionError, match=re.escape(str(bad_json)) + ": cannot parse"):
        load_file(bad_json)
    with pytest.raises(ConventionError, match=re.escape(str(bad_json))):
        skeletons.get(str(bad_json))
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: x\njoints: [a, b\nbones: {\n")
    with pytest.raises(ConventionError, match=re.escape(str(bad_yaml)) + ": cannot parse"):
        load_file(bad_yaml)
    # Semantic errors in a file also name the file.
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(_spec(centre="chest")))
    with pytest.raises(ConventionError, match=re.escape(str(wrong)) + r": field 'centre': unknown joint 'chest'"):
        skeletons.get(wrong)
    listy = tmp_path / "listy.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConventionError, match=re.escape(str(listy)) + ": expected a mapping"):
        load_file(listy)
