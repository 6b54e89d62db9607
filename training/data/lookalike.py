"""Look-alike faces: the same face in copies of one photo that carry different names.

Web and AFLW sets hold resized, recoloured or recropped copies of one photo under different names
(shared/data/README.md); a split must keep them on one side. Each face gets a 256-bit difference hash
(dHash, Krawetz 2013: signs of horizontal neighbour differences on a 17x16 grey thumbnail) of a square
`CONTEXT` times the face square around its labelled points: the points fix the region, so a resized or
recropped copy hashes the same pixels, grey differences ignore recolouring, and the context (hair,
clothes, background) keeps two different people with aligned faces apart. Faces whose hashes differ in
at most `max_bits` bits are look-alikes; identities that share look-alikes are merged for the split.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from core.geometry import crop_affine, crop_matrix, face_square_from_points
from core.imageio import read_image_bgr
from training.data.samples import FaceSample

HASH_SIDE = 16  # 16x16 = 256 bits
CONTEXT = 2.0  # hashed square / face square
# Measured on MTFL + Caltech (12,089 faces): random pairs differ in 46..256 bits (median 117); copies of
# one photo (recropped, resized, recoloured, the README's Beltran/Ibanez pair at 9) in 0..20; from 22
# on, pairs of different people appear too.
DEFAULT_MAX_BITS = 20
_CHUNK = 1024


def face_hash(image_bgr: np.ndarray, points_px: np.ndarray) -> np.ndarray:
    """The (32,) uint8 packed 256-bit dHash of the context square around a face's four points."""
    center, side = face_square_from_points(points_px)
    patch = crop_affine(image_bgr, crop_matrix(center, side * CONTEXT, 64), 64)
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    thumb = cv2.resize(grey, (HASH_SIDE + 1, HASH_SIDE), interpolation=cv2.INTER_AREA).astype(np.int16)
    return np.packbits(thumb[:, 1:] > thumb[:, :-1])


def sample_hashes(samples: list[FaceSample], workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32) uint8 hashes, one per sample, each image decoded once; an unreadable image's row is all
    255 and its `valid` entry False (returned as the second value)."""
    by_image: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_image[s.image_path].append(i)
    hashes = np.full((len(samples), HASH_SIDE * HASH_SIDE // 8), 255, dtype=np.uint8)
    valid = np.zeros(len(samples), dtype=bool)

    def work(item):
        path, idx = item
        image = read_image_bgr(path)
        return [(i, None if image is None else face_hash(image, samples[i].points_px)) for i in idx]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for pairs in pool.map(work, by_image.items()):
            for i, h in pairs:
                if h is not None:
                    hashes[i], valid[i] = h, True
    return hashes, valid


def lookalike_pairs(hashes: np.ndarray, valid: np.ndarray, max_bits: int = DEFAULT_MAX_BITS) -> list[tuple[int, int]]:
    """Index pairs (i < j) of valid hashes that differ in at most `max_bits` bits."""
    words = np.ascontiguousarray(hashes).view(np.uint64)  # (N, 4)
    pairs = []
    for start in range(0, len(words), _CHUNK):
        block = words[start:start + _CHUNK]
        bits = np.bitwise_count(block[:, None, :] ^ words[None, :, :]).sum(axis=2)
        for i, j in zip(*np.nonzero(bits <= max_bits)):
            i = int(i) + start
            if i < j and valid[i] and valid[j]:
                pairs.append((i, int(j)))
    return pairs


def merge_lookalike_identities(samples: list[FaceSample], workers: int = 2,
                               max_bits: int = DEFAULT_MAX_BITS) -> dict[str, str]:
    """Map each `source:identity` key joined to another by look-alike faces to one shared key.

    Returns only the keys that change (an empty dict when no two identities hold look-alikes).
    """
    keys = [f"{s.source}:{s.identity}" for s in samples]
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    hashes, valid = sample_hashes(samples, workers)
    for i, j in lookalike_pairs(hashes, valid, max_bits):
        a, b = find(keys[i]), find(keys[j])
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {k: find(k) for k in parent if find(k) != k}
