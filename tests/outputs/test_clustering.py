"""TF-IDF and k-means in numpy give scikit-learn's vectors and clusters, and themes need no scikit-learn."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import numpy as np
import pytest

from auditor.outputs.clustering import ENGLISH_STOP_WORDS, kmeans, nearest, tfidf
from auditor.outputs.themes import FILLER
from tests.helpers import imported_after

EXAMPLE = Path(__file__).parents[2] / "examples" / "chat_mix.jsonl"
PATTERN = r"(?u)\b[^\W\d_]{3,}\b"  # the themes' token pattern
STOP = ENGLISH_STOP_WORDS | FILLER
WORDS = "apple river engine violin desert orbit candle harbor tiger quartz meadow glacier lantern falcon".split()


def example_texts() -> list[str]:
    """Each record's last prompt and answer, as the report clusters them."""
    texts = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        last = {m["role"]: m["content"] for m in messages}
        texts.append(f"{last['user']}\n{last['assistant']}")
    return texts


def word_salad(n: int, seed: int) -> list[str]:
    """n short texts over a few words: many repeats and ties."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS[: rng.randint(3, len(WORDS))]) for _ in range(rng.randint(1, 5)))
            for _ in range(n)]


CORPORA = {"example": example_texts, "example-40": lambda: example_texts()[:40],
           "salad-12": lambda: word_salad(12, 1), "salad-300": lambda: word_salad(300, 2),
           "repeated": lambda: example_texts()[:30] * 3}


def scikit_tfidf(texts: list[str], max_features: int = 5000):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words=sorted(STOP), token_pattern=PATTERN, sublinear_tf=True,
                                 max_features=max_features, max_df=0.9 if len(texts) > 20 else 1.0)
    return vectorizer.fit_transform(texts), list(vectorizer.get_feature_names_out())


def test_the_stop_words_are_scikit_learns():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as SCIKIT

    assert ENGLISH_STOP_WORDS == SCIKIT


@pytest.mark.parametrize("name", CORPORA)
@pytest.mark.parametrize("max_features", [5000, 40])
def test_tfidf_is_scikit_learns_bit_for_bit(name, max_features):
    texts = CORPORA[name]()
    expected, terms = scikit_tfidf(texts, max_features)
    rows, found_terms = tfidf(texts, STOP, PATTERN, 0.9 if len(texts) > 20 else 1.0, max_features)
    assert found_terms == terms
    assert np.array_equal(rows.indptr, expected.indptr) and np.array_equal(rows.indices, expected.indices)
    assert np.array_equal(rows.data, expected.data)


@pytest.mark.parametrize("texts", [["", "the and of"], ["12 34", "a b"], ["same text here"] * 30])
def test_tfidf_gives_none_where_scikit_learn_finds_no_terms(texts):
    with pytest.raises(ValueError):
        scikit_tfidf(texts)
    assert tfidf(texts, STOP, PATTERN, 0.9 if len(texts) > 20 else 1.0, 5000) is None


@pytest.mark.parametrize("name", CORPORA)
def test_kmeans_gives_scikit_learns_clusters(name):
    from sklearn.cluster import KMeans

    texts = CORPORA[name]()
    matrix, _ = scikit_tfidf(texts)
    rows, _ = tfidf(texts, STOP, PATTERN, 0.9 if len(texts) > 20 else 1.0, 5000)
    for k in (2, 3, 5, 8):
        for seed in (0, 3):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fewer distinct points than k
                expected = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(matrix).predict(matrix)
            assert np.array_equal(nearest(rows, kmeans(rows, k, seed)), expected), (k, seed)


def test_themes_import_no_scikit_learn():
    code = ("from auditor.outputs.themes import find_themes; "
            "texts = [f'{w} story number {i}' for i, w in enumerate(['poem', 'revenge', 'dosage'] * 10)]; "
            "themes = find_themes(texts, [['evil']] * 30); assert len(themes) > 1")
    assert imported_after(code, ("sklearn", "scipy")) == []
