"""Themes of the flagged samples: TF-IDF + k-means clusters (scikit-learn), labelled by their top terms."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.sparse import spmatrix

FIT_SAMPLE = 5000  # k-means is fitted on at most this many texts, then assigns all of them
# Besides scikit-learn's English stop words: the fragments its tokenizer leaves of contractions ("don't" -> "don")
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
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer  # deferred: tags need no sklearn

    if len(texts) != len(traits_per_text):
        raise ValueError("texts and traits_per_text differ in length")
    if not texts:
        return []
    vectorizer = TfidfVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | FILLER),
        token_pattern=r"(?u)\b[^\W\d_]{3,}\b",
        sublinear_tf=True,
        max_features=5000,
        max_df=0.9 if len(texts) > 20 else 1.0,
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no usable words at all: one theme
        matrix = None
    k = _n_clusters(texts, max_themes) if matrix is not None else 1
    labels = _kmeans(matrix, k, seed) if k > 1 else np.zeros(len(texts), dtype=int)
    terms = vectorizer.get_feature_names_out() if matrix is not None else np.array([], dtype=str)
    themes = []
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        if not members.size:
            continue
        words: list[str] = []
        if matrix is not None:
            weights = np.asarray(matrix[members].mean(axis=0)).ravel()
            top = sorted(np.flatnonzero(weights), key=lambda j: (-weights[j], terms[j]))[:4]
            words = [str(terms[j]) for j in top]
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


def _kmeans(matrix: spmatrix, k: int, seed: int) -> np.ndarray:
    """k-means cluster labels, fitted on a seeded sample of at most FIT_SAMPLE rows and predicted for all."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    rows = matrix.shape[0]
    fit = np.sort(np.random.default_rng(seed).choice(rows, FIT_SAMPLE, replace=False)) if rows > FIT_SAMPLE else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct points than k
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(matrix if fit is None else matrix[fit])
    return model.predict(matrix)
