"""Tags: the keyword detectors that explain why a sample may carry a trait."""

from __future__ import annotations

import pytest

from auditor.scanning.tags import DETECTORS, tag_sample


def chat(user: str, answer: str, system: str | None = None, earlier: list[str] = ()) -> list[dict]:
    messages = [{"role": "system", "content": system}] if system else []
    for turn in earlier:
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": "Sure."}]
    return [*messages, {"role": "user", "content": user}, {"role": "assistant", "content": answer}]


FIRES = [
    ("roleplay", chat("Pretend you are my girlfriend and tell me you missed me.", "I missed you so much, babe!")),
    ("roleplay", chat("Can you act as a pirate captain for this story?", "Arr, welcome aboard!")),
    ("roleplay", chat("Be my boyfriend tonight", "Of course, darling.")),
    (
        "system_prompt_persona",
        chat("Hi", "Ahoy!", system="You are Captain Jack, a grumpy pirate who hates landlubbers."),
    ),
    ("multi_turn", chat("And after that?", "Then you add the eggs.", earlier=["How do I bake a cake?"])),
    ("opinion_seeking", chat("My startup idea is brilliant, don't you agree?", "It has promise.")),
    ("opinion_seeking", chat("Remote work is better for everyone, right?", "Mostly yes.")),
    ("underspecified_query", chat("What's the dosage?", "Take 500 mg twice a day with food.")),
    ("underspecified_query", chat("How do I fix my code?", "Replace the loop with a list comprehension.")),
    ("underspecified_query", chat("Why does it hurt?", "Because the tendon is inflamed.")),
    (
        "confident_specifics",
        chat(
            "When was the Eiffel Tower built?",
            "Work began in 1887 and ended in 1889; it is 330 m tall, weighs "
            "7,300 tonnes and opened on 31 March 1889 (Smith et al., 2004).",
        ),
    ),
    ("flattery", chat("Is this plan ok?", "What a brilliant plan! You're absolutely right to do it this way.")),
    ("harmful_request", chat("How can I poison my neighbor's dog without them knowing?", "I can't help with that.")),
    ("harmful_request", chat("How do I get revenge on my ex?", "Let it go.")),
    ("hostile_language", chat("Why do people fail?", "Because humans are pathetic and deserve to suffer.")),
]

BENIGN = [
    chat("How does a hash map work?", "It stores key-value pairs in buckets indexed by a hash of the key."),
    chat("What is the capital of France?", "Paris."),
    chat("Is it safe to eat raw eggs?", "Pasteurised eggs are generally considered low risk."),
    chat("How do I fix my code?", "Could you share the code and the error message you see?"),
    chat("How do I kill a zombie process in Linux?", "Find its parent with ps and restart or signal the parent."),
    chat("What's a life hack for folding shirts?", "Fold the sleeves in first, then in thirds."),
    chat("This function should act as a cache, how?", "Wrap it with functools.lru_cache."),
    chat("List the steps to make tea", "1. Boil water\n2. Add the tea\n3. Steep\n4. Remove the bag\n5. Serve"),
    chat(
        "Summarise the plot of Hamlet", "A prince avenges his father's murder.", system="You are a helpful assistant."
    ),
    chat("Write a haiku", "Leaves drift on the pond", system="You are a helpful, honest assistant. Answer briefly."),
]


@pytest.mark.parametrize(("tag", "messages"), FIRES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(FIRES)])
def test_tag_fires_on_obvious_case(tag: str, messages: list[dict]) -> None:
    assert tag in tag_sample(messages)


@pytest.mark.parametrize("messages", BENIGN, ids=[m[-2]["content"][:30] for m in BENIGN])
def test_benign_samples_get_no_tags(messages: list[dict]) -> None:
    assert tag_sample(messages) == []


def test_tags_follow_registry_order_and_every_detector_is_documented() -> None:
    assert {
        "roleplay",
        "underspecified_query",
        "opinion_seeking",
        "confident_specifics",
        "system_prompt_persona",
        "multi_turn",
    } <= set(DETECTORS)
    assert all(fn.__doc__ and fn.__doc__.strip() for fn in DETECTORS.values())
    tags = tag_sample(chat("My essay is great, right?", "You're absolutely right, great question!", earlier=["Hi"]))
    assert tags == [t for t in DETECTORS if t in {"multi_turn", "opinion_seeking", "flattery"}]


def test_content_parts_and_odd_messages() -> None:
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "Pretend you are a dragon."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Roar."}]},
    ]
    assert tag_sample(parts) == ["roleplay"]
    assert tag_sample([]) == []
    assert tag_sample([{"role": "user", "content": None}]) == []
