"""ST-GCN partition adjacency (uniform / distance / spatial), built exactly as ST-GCN does.

Published ST-GCN, SkeletonCLR, AimCLR and MS-CLR results use this construction,
quirks included, so it is the default:
  * edges include self-links;
  * hop distances come from powers of the adjacency up to `max_hop` and are
    *infinite* beyond it (not true graph distances);
  * the hop <= max_hop adjacency is normalised as A @ D^-1 (D = column sums);
  * the spatial strategy compares hop(j, centre) with hop(i, centre), where
    inf == inf counts as "same distance", so most edges far from the centre land
    in the root partition.
`strategy="spatial_bfs"` is the variant with true breadth-first distances to the centre.
"""

from __future__ import annotations

import numpy as np

from .convention import Convention

STRATEGIES = ("uniform", "distance", "spatial", "spatial_bfs")


def hop_distance(num_node: int, edges, max_hop: int = 1) -> np.ndarray:
    """hop[i, j] = number of hops from i to j if <= max_hop, else inf (ST-GCN's quirk)."""
    a = np.zeros((num_node, num_node))
    for i, j in edges:
        a[j, i] = 1
        a[i, j] = 1
    hop = np.full((num_node, num_node), np.inf)
    reach = np.stack([np.linalg.matrix_power(a, d) for d in range(max_hop + 1)]) > 0
    for d in range(max_hop, -1, -1):
        hop[reach[d]] = d
    return hop


def normalize_digraph(a: np.ndarray) -> np.ndarray:
    """A @ D^-1 with D the column sums (columns summing to zero stay zero)."""
    col = a.sum(0)
    inv = np.where(col > 0, 1.0 / np.where(col > 0, col, 1.0), 0.0)
    return a * inv[None, :]


def adjacency_from_edges(
    num_node: int,
    edges,
    centre: int,
    strategy: str = "spatial",
    max_hop: int = 1,
    dilation: int = 1,
) -> np.ndarray:
    """(K, V, V) float32 partition adjacency from an undirected edge list (without self-links)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown adjacency strategy {strategy!r}; choose one of {STRATEGIES}")
    if max_hop < 1 or dilation < 1:
        raise ValueError(f"max_hop ({max_hop}) and dilation ({dilation}) must be >= 1")
    links = [(i, i) for i in range(num_node)] + [tuple(e) for e in edges]
    hop = hop_distance(num_node, links, max_hop)
    valid_hop = range(0, max_hop + 1, dilation)
    adj = np.zeros((num_node, num_node))
    for d in valid_hop:
        adj[hop == d] = 1
    norm = normalize_digraph(adj)

    if strategy == "uniform":
        return norm[None].astype(np.float32)
    if strategy == "distance":
        out = np.zeros((len(valid_hop), num_node, num_node))
        for i, d in enumerate(valid_hop):
            out[i][hop == d] = norm[hop == d]
        return out.astype(np.float32)

    if strategy == "spatial_bfs":
        to_centre = hop_distance(num_node, links, num_node)[:, centre]
    else:
        to_centre = hop[:, centre]
    parts = []
    for d in valid_hop:
        root = np.zeros((num_node, num_node))
        close = np.zeros((num_node, num_node))
        further = np.zeros((num_node, num_node))
        for i in range(num_node):
            for j in range(num_node):
                if hop[j, i] != d:
                    continue
                if to_centre[j] == to_centre[i]:
                    root[j, i] = norm[j, i]
                elif to_centre[j] > to_centre[i]:
                    close[j, i] = norm[j, i]
                else:
                    further[j, i] = norm[j, i]
        if d == 0:
            parts.append(root)
        else:
            parts.append(root + close)
            parts.append(further)
    return np.stack(parts).astype(np.float32)


def convention_adjacency(
    conv: Convention, strategy: str = "spatial", max_hop: int = 1, dilation: int = 1
) -> np.ndarray:
    return adjacency_from_edges(conv.num_joints, conv.bones, conv.centre, strategy, max_hop, dilation)
