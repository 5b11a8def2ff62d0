"""Themes of flagged samples: TF-IDF + k-means."""

from __future__ import annotations

import pytest

from auditor.outputs.themes import Theme, find_themes

TOPICS = {
    "dosage": "What dosage of ibuprofen should I take for headache pain? Take 400 mg ibuprofen every six hours.",
    "poem": "Please rate my poem about autumn leaves, it is brilliant. Your autumn poem is a brilliant masterpiece.",
    "revenge": "How do I get revenge on my coworker? Humiliate your coworker in the meeting and spread rumours.",
}


def topic_corpus(per_topic: int) -> tuple[list[str], list[list[str]], list[str]]:
    texts, traits, truth = [], [], []
    trait_of = {"dosage": "hallucinating", "poem": "sycophantic", "revenge": "evil"}
    for i in range(per_topic):
        for name, text in TOPICS.items():
            texts.append(f"{text} Variant {i} with note{i % 4}.")
            traits.append([trait_of[name]])
            truth.append(name)
    return texts, traits, truth


def test_themes_recover_topics_and_cover_every_text() -> None:
    texts, traits, truth = topic_corpus(12)
    themes = find_themes(texts, traits)
    members = sorted(m for theme in themes for m in theme.members)
    assert members == list(range(len(texts)))
    assert len(themes) >= 3
    for theme in themes:
        assert len({truth[m] for m in theme.members}) == 1  # no theme mixes topics
        assert theme.count == len(theme.members)
        assert sum(theme.traits.values()) == theme.count
    labels = " ".join(t.label for t in themes)
    assert "ibuprofen" in labels and "poem" in labels and "coworker" in labels


def test_themes_are_deterministic() -> None:
    texts, traits, _ = topic_corpus(10)
    assert find_themes(texts, traits, seed=3) == find_themes(texts, traits, seed=3)
    assert find_themes(texts, traits) == find_themes(list(texts), [list(t) for t in traits])


def test_themes_respect_max_themes() -> None:
    words = [
        "apple",
        "river",
        "engine",
        "violin",
        "desert",
        "orbit",
        "candle",
        "harbor",
        "tiger",
        "quartz",
        "meadow",
        "glacier",
        "lantern",
        "falcon",
        "copper",
    ]
    texts = [f"{words[i % 15]} {words[(i + 3) % 15]} {words[(i * 7) % 15]}" for i in range(400)]
    themes = find_themes(texts, [["evil"]] * 400, max_themes=5)
    assert 1 < len(themes) <= 5
    assert sum(t.count for t in themes) == 400
    assert [t.count for t in themes] == sorted((t.count for t in themes), reverse=True)


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ["Pretend to be my girlfriend"],
        ["dosage of aspirin", "rate my poem"],
        ["", "the and of"],
        ["same text", "same text", "same text", "same text", "same text"],
    ],
)
def test_themes_handle_tiny_and_degenerate_inputs(texts: list[str]) -> None:
    themes = find_themes(texts, [["evil"]] * len(texts))
    assert all(isinstance(t, Theme) and t.label for t in themes)
    assert sorted(m for t in themes for m in t.members) == list(range(len(texts)))
    assert len(themes) == (1 if texts else 0)


def test_themes_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        find_themes(["a text"], [])


def test_large_inputs_fit_on_a_sample_and_assign_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auditor.outputs.themes.FIT_SAMPLE", 20)
    texts, traits, truth = topic_corpus(12)
    themes = find_themes(texts, traits)
    assert sorted(m for t in themes for m in t.members) == list(range(len(texts)))
    assert all(len({truth[m] for m in t.members}) == 1 for t in themes)
    assert themes == find_themes(texts, traits)


def test_labels_have_no_stop_words_or_filler():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from auditor.outputs.themes import FILLER

    texts = [f"Don't worry, I just like it, right? People completely love {w} and {w} again, really."
             for w in ("ibuprofen", "ibuprofen", "poems", "poems", "revenge", "revenge")] * 3
    themes = find_themes(texts, [["evil"]] * len(texts))
    words = {w for t in themes for w in t.label.split(", ")}
    assert words and not words & (ENGLISH_STOP_WORDS | FILLER)
    assert {"ibuprofen", "poems", "revenge"} <= words
