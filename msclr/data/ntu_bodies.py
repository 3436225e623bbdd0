"""NTU RGB+D: choosing up to two bodies of a parsed .skeleton file (`select_bodies`).

The denoising of the widely used NTU scripts (SGN, Zhang et al. 2020, ``get_raw_denoised_data.py``,
also used by CTR-GCN, InfoGCN ...):
    * frames with no body are dropped;
    * every body ID is a track; its frames get consecutive indices from the valid frame in
      which it first appears (as those scripts do, gaps included);
    * with several tracks: tracks of <= 11 frames are dropped (length rule); then, while more
      than one track is left, a track whose frames have x spread > 0.8 * y spread in
      >= 69.754 % of its frames is dropped, otherwise its motion becomes the lower of its
      motion and the motion of its good frames (spread rule); tracks are ranked by motion =
      sum over x, y, z of the variance of its joints (motion rule);
    * actor 1 = the track with the largest motion, joined by later tracks that do not overlap
      it in time; actor 2 = the next track that overlaps actor 1, joined likewise; frames in
      which both actors are missing are removed.
    Deviation: when the length rule drops every track (the scripts crash there), the longest
    track is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ntu_skeleton import NUM_JOINTS

# Denoising thresholds of the SGN/CTR-GCN NTU scripts.
NOISE_LEN_THRES = 11
NOISE_SPR_THRES1 = 0.8
NOISE_SPR_THRES2 = 0.69754


@dataclass
class Track:
    """All appearances of one body ID: joints (n, 25, 3) and the frame indices the NTU
    scripts give it (consecutive from its first valid frame)."""

    body_id: int
    joints: np.ndarray
    start: int
    motion: float = 0.0

    @property
    def length(self) -> int:
        return self.joints.shape[0]

    @property
    def end(self) -> int:
        return self.start + self.length - 1


def tracks_from_parsed(parsed: dict) -> tuple[list[Track], int]:
    """Tracks in order of first appearance, and the number of frames that have a body."""
    per_frame = parsed["bodies_per_frame"]
    if per_frame.size == 0 or not (per_frame > 0).any():
        return [], 0
    has_body = per_frame > 0
    valid_index = np.cumsum(has_body) - 1  # index among frames with a body
    frame_of_body = np.repeat(np.arange(per_frame.size), per_frame)
    ids = parsed["body_id"]
    xyz = parsed["joints"][:, :, :3]
    _, first = np.unique(ids, return_index=True)
    tracks = []
    for i in np.sort(first):
        rows = np.flatnonzero(ids == ids[i])
        tracks.append(Track(int(ids[i]), xyz[rows], int(valid_index[frame_of_body[rows[0]]])))
    if len(tracks) > 1:
        for t in tracks:
            t.motion = float(np.sum(np.var(t.joints.reshape(-1, 3), axis=0)))
    return tracks, int(has_body.sum())


def _spread_valid(joints: np.ndarray) -> np.ndarray:
    x, y = joints[:, :, 0], joints[:, :, 1]
    return (x.max(1) - x.min(1)) <= NOISE_SPR_THRES1 * (y.max(1) - y.min(1))


def denoise(tracks: list[Track]) -> tuple[list[Track], list[str]]:
    """The length, spread and motion rules; returns tracks ranked by motion, and notes."""
    notes = []
    if len(tracks) <= 1:
        return list(tracks), notes
    kept = [t for t in tracks if t.length > NOISE_LEN_THRES]
    for t in tracks:
        if t.length <= NOISE_LEN_THRES:
            notes.append(f"body {t.body_id}: dropped, {t.length} frames (length rule)")
    if not kept:
        longest = max(tracks, key=lambda t: t.length)
        notes.append(f"every body has <= {NOISE_LEN_THRES} frames: kept the longest, {longest.body_id}")
        return [longest], notes
    if len(kept) == 1:
        return kept, notes
    survivors = list(kept)
    for t in kept:
        if len(survivors) == 1:
            break
        good = _spread_valid(t.joints)
        noisy = t.length - int(good.sum())
        if noisy == 0:
            continue
        if noisy / t.length >= NOISE_SPR_THRES2:
            survivors.remove(t)
            notes.append(f"body {t.body_id}: dropped, {noisy}/{t.length} frames wider than tall (spread rule)")
        else:
            t.motion = min(t.motion, float(np.sum(np.var(t.joints[good].reshape(-1, 3), axis=0))))
    return sorted(survivors, key=lambda t: t.motion, reverse=True), notes  # stable: ties keep order


def select_bodies(parsed: dict, max_bodies: int = 2) -> tuple[np.ndarray, list[str]]:
    """(3, T, 25, max_bodies) float32 of the chosen actors (see the module docstring)."""
    if max_bodies != 2:
        raise ValueError("the NTU body selection chooses 2 actors")
    tracks, num_frames = tracks_from_parsed(parsed)
    if not tracks:
        raise ValueError("no body in any frame")
    out = np.zeros((num_frames, 2, NUM_JOINTS, 3), np.float32)
    if len(tracks) == 1:
        t = tracks[0]
        out[t.start : t.end + 1, 0] = t.joints
        return out.transpose(3, 0, 2, 1).copy(), []
    ranked, notes = denoise(tracks)
    actor1 = ranked[0]
    out[actor1.start : actor1.end + 1, 0] = actor1.joints
    if len(ranked) > 1:
        s1, e1 = actor1.start, actor1.end
        s2, e2 = 0, 0  # the scripts' initial (virtual) interval of actor 2
        for t in ranked[1:]:
            if min(e1, t.end) - max(s1, t.start) <= 0:  # no overlap with actor 1: joins actor 1
                out[t.start : t.end + 1, 0] = t.joints
                s1, e1 = min(t.start, s1), max(t.end, e1)
            elif min(e2, t.end) - max(s2, t.start) <= 0:  # joins actor 2
                out[t.start : t.end + 1, 1] = t.joints
                s2, e2 = min(t.start, s2), max(t.end, e2)
            else:
                notes.append(f"body {t.body_id}: dropped, overlaps both actors")
    # frames in which both actors are missing
    keep = out.reshape(num_frames, -1).sum(axis=1) != 0
    if not keep.all():
        notes.append(f"{int((~keep).sum())} frame(s) without either actor removed")
        out = out[keep]
    if out.shape[0] == 0:
        raise ValueError("no frame left after denoising")
    return out.transpose(3, 0, 2, 1).copy(), notes
