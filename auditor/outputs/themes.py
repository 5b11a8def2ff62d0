"""Themes of the flagged samples: TF-IDF + k-means clusters (outputs.clustering), labelled by their top terms."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .clustering import ENGLISH_STOP_WORDS, Rows, kmeans, nearest, tfidf

FIT_SAMPLE = 5000  # k-means is fitted on at most this many texts, then assigns all of them
# Besides the English stop words: the fragments the tokenizer leaves of contractions ("don't" -> "don")
# and the filler of chat answers, which label no theme ("right, just, completely, people").
FILLER = frozenset("""
    aren couldn didn doesn don hadn hasn haven isn mightn mustn needn shan shouldn wasn weren won wouldn
    actually also basically certainly completely definitely exactly just kind like lot maybe okay people pretty
    probably really right said say sort start sure thing things think time want way yeah yes going got know let
    make need tell use good great
""".split())


@dataclass
class Theme:
    """A cluster of similar texts: its top terms, size, trait counts and member indices."""

    label: str
    count: int
    traits: dict[str, int] = field(default_factory=dict)
    members: list[int] = field(default_factory=list)


def _n_clusters(texts: list[str], max_themes: int) -> int:
    """About sqrt(n/2) clusters (1 for n <= 4), never more than distinct texts or `max_themes`."""
    return max(1, min(max_themes, len(set(texts)), round(math.sqrt(len(texts) / 2))))


def find_themes(texts: list[str], traits_per_text: list[list[str]], max_themes: int = 8, seed: int = 0) -> list[Theme]:
    """Cluster texts with TF-IDF + k-means into at most `max_themes` themes, largest first.

    Every text belongs to exactly one theme. Deterministic for a given seed.
    """
    if len(texts) != len(traits_per_text):
        raise ValueError("texts and traits_per_text differ in length")
    if not texts:
        return []
    found = tfidf(texts, ENGLISH_STOP_WORDS | FILLER, r"(?u)\b[^\W\d_]{3,}\b", max_df=0.9 if len(texts) > 20 else 1.0,
                  max_features=5000)
    k = _n_clusters(texts, max_themes) if found is not None else 1
    labels = _kmeans(found[0], k, seed) if found is not None and k > 1 else np.zeros(len(texts), dtype=int)
    themes = []
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        if not members.size:
            continue
        words: list[str] = []
        if found is not None:
            matrix, terms = found
            part = matrix.take(members)
            weights = np.bincount(part.indices, part.data, minlength=matrix.columns) / members.size
            words = [terms[j] for j in sorted(np.flatnonzero(weights), key=lambda j: (-weights[j], terms[j]))[:4]]
        traits = Counter(t for i in members for t in traits_per_text[i])
        themes.append(
            Theme(
                label=", ".join(words) or "(no distinctive words)",
                count=int(members.size),
                traits=dict(sorted(traits.items(), key=lambda kv: (-kv[1], kv[0]))),
                members=members.tolist(),
            )
        )
    return sorted(themes, key=lambda t: (-t.count, t.members[0]))


def _kmeans(matrix: Rows, k: int, seed: int) -> np.ndarray:
    """k-means cluster labels, fitted on a seeded sample of at most FIT_SAMPLE rows and predicted for all."""
    rows = matrix.n
    fit = np.sort(np.random.default_rng(seed).choice(rows, FIT_SAMPLE, replace=False)) if rows > FIT_SAMPLE else None
    return nearest(matrix, kmeans(matrix if fit is None else matrix.take(fit), k, seed))
