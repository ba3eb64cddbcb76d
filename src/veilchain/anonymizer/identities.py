"""Pseudo-identities: k-means clusters of dlib embeddings, and target-identity choice.

No package ships identity labels, so CIAGAN's identity classes are clusters of the training
faces' 128-d dlib embeddings (see ``corpus.build_face_hunters_corpus``). A target is always
drawn among the half of the clusters farthest from the source face, never its nearest one.
"""

from __future__ import annotations

import numpy as np

from veilchain.errors import InputError

#: Also exclude clusters whose centroid lies this close to the source embedding (dlib units);
#: the same-person threshold is 0.6.
DEFAULT_EXCLUDE_RADIUS = 0.5


class PseudoIdentities:
    """Centroids (k, 128) of the pseudo-identities in dlib embedding space."""

    def __init__(self, centroids: np.ndarray):
        c = np.asarray(centroids, np.float32)
        if c.ndim != 2 or c.shape[0] < 2:
            raise InputError("pseudo-identities need at least two centroids of shape (k, d)")
        self.centroids = c

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def distances(self, embedding: np.ndarray) -> np.ndarray:
        e = np.asarray(embedding, np.float32).reshape(-1)
        return np.sqrt(((self.centroids - e) ** 2).sum(-1))

    def assign(self, embedding: np.ndarray) -> int:
        """The source's pseudo-identity: its nearest centroid."""
        return int(self.distances(embedding).argmin())

    def candidates(
        self, embedding: np.ndarray | None, *, radius: float = DEFAULT_EXCLUDE_RADIUS
    ) -> np.ndarray:
        """Allowed targets: the farthest half of the clusters from ``embedding``, less any
        within ``radius`` (unless that leaves none); never the nearest. With no embedding
        every cluster is allowed.

        Why the farthest half: a look-alike target pulls the new face towards the source's
        appearance (docs/MODEL_CARD.md measures both rules on the sample photos).
        """
        if embedding is None:
            return np.arange(self.k)
        d = self.distances(embedding)
        far = np.argsort(d, kind="stable")[self.k // 2 :]  # the nearest sorts first
        ok = far[d[far] >= radius]
        return ok if len(ok) else far

    def choose_target(self, embedding: np.ndarray | None, rng: np.random.Generator) -> int:
        """A target pseudo-identity drawn uniformly among :meth:`candidates`."""
        return int(rng.choice(self.candidates(embedding)))
