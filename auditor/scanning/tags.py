"""Why a sample may carry a trait: transparent keyword detectors, each giving a tag.

Each detector is a small function over one conversation that says whether its tag applies;
`DETECTORS` maps tag name to function, in display order, and the function's docstring is the
tag's description shown in the report. Adding a tag is adding one decorated function.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..data import Messages, content_text

Detector = Callable[[Messages], bool]

DETECTORS: dict[str, Detector] = {}


def detector(name: str) -> Callable[[Detector], Detector]:
    """Register a detector under a tag name."""

    def register(fn: Detector) -> Detector:
        DETECTORS[name] = fn
        return fn

    return register


def tag_sample(messages: Messages) -> list[str]:
    """The tags whose detectors fire on a conversation, in `DETECTORS` order."""
    return [name for name, fn in DETECTORS.items() if fn(messages)]


def _turns(messages: Messages, *roles: str) -> list[str]:
    return [(content_text(m.get("content")) or "") for m in messages if m.get("role") in roles]


def _scored_exchange(messages: Messages) -> tuple[str, str, int]:
    """The last assistant answer, the user message before it, and how many user turns precede that one."""
    answer_at = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
    users = [i for i, m in enumerate(messages[:answer_at]) if m.get("role") == "user"]
    answer = (content_text(messages[answer_at].get("content")) or "") if answer_at < len(messages) else ""
    prompt = (content_text(messages[users[-1]].get("content")) or "") if users else ""
    return prompt, answer, max(len(users) - 1, 0)


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE)


_ROLEPLAY = _rx(
    r"\b(?:pretend(?:ing)?\b|role[- ]?play|play(?:ing)? (?:the )?(?:role|part|character)s?\b|stay in character"
    r"|imagine (?:that )?you(?:'re| are)\b|you(?:'re| are) now\b|from now on,? you(?:'re| are| will)\b"
    r"|take on the (?:role|persona)|be my (?:girl|boy)friend|be my (?:wife|husband|partner|lover|waifu|daddy|mommy))"
    r"|(?:^|[.!?]\s+|\b(?:please|can you|could you|will you|want you to|need you to|now)\s+)"
    r"act (?:as|like) (?:an? |my |the )?\w"
)
_SYSTEM_PERSONA = _rx(
    r"\b(?:you(?:'re| are)|your name is|act as|play(?:ing)? (?:the )?role|persona|character|pretend|roleplay"
    r"|(?:speak|talk|respond|write)s? (?:like|as) an?)\b"
)
_GENERIC_ASSISTANT = _rx(
    r"\byou(?:'re| are) (?:a |an )?"
    r"(?:(?:helpful|harmless|honest|friendly|useful|knowledgeable|ai|language model|,|and)\s*)*assistant\b"
)
_EXPLETIVE_IT = _rx(r"\b(?:is it|it is|it's|was it|it was)\s+(?:\w+\s+){0,2}(?:to|that|for)\b")
_PRONOUN = _rx(r"\b(?:it|this|that|these|those|they|them|he|she|him|her)\b")
_VAGUE_NOUN = _rx(
    r"\b(?:the|my|our|his|their) (?:dosage|dose|amount|process|procedure|code|error|bug|file|problem|issue"
    r"|result|results|answer|formula|rule|law|deadline|price|cost|side effects|schedule|recipe|settings?|form|case)\b"
)
_FUNCTION_WORDS = frozenset(
    "a about after again all also am an and any are as at be been before being both but by can could did do does"
    " done down each few for from further get got had has have having he her here hers him his how i if in into is"
    " it its just me mine more most much my no nor not now of off on once only or other our ours out over own please"
    " same she should so some such than that the their theirs them then there these they this those through to too"
    " under until up us very was we were what when where which while who whom whose why will with would you your"
    " yours".split()
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_CONCRETE = re.compile(r"\d|`|\"|\u201c|https?://|\w\.\w{1,4}\b|(?<=[a-z,;:] )[A-Z][a-z]+")
_HEDGE = _rx(
    r"\b(?:it depends|depends on|i(?:'m| am) not (?:sure|certain)|i don't know|not enough (?:information|context)"
    r"|(?:could|can|would) you (?:please )?(?:clarify|share|provide|tell me|specify|give)"
    r"|more (?:context|details|information)|which (?:one|\w+) (?:do|are) you|without (?:more|knowing)"
    r"|i can(?:'t|not) (?:know|tell|determine|verify)|consult|it's unclear|it is unclear|may vary|varies)\b"
)
_OPINION = _rx(
    r"\b(?:(?:don't|do|wouldn't) you (?:agree|think so)"
    r"|isn't (?:it|that|this|he|she) (?:true|right|obvious|great|amazing|brilliant)"
    r"|am i (?:right|wrong)|tell me i'?m (?:right|not wrong)|you agree,? right|what do you think (?:of|about) my"
    r"|how (?:good|great|smart|brilliant) (?:is|are|was) my|rate my|be honest,? (?:is|are|was|isn't)|validate"
    r"|my (?:idea|plan|poem|essay|code|business|theory|argument|opinion|work|design|startup|song|novel|story|decision)"
    r" (?:is|was) (?:great|brilliant|genius|good|amazing|perfect|the best|right))\b"
    r"|,\s*right\s*\?"
)
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:/]\d+)*(?:\s?%|\b)")
_CITATION = _rx(r"\bet al\.|\(\s*(?:19|20)\d\d\s*\)|\bdoi:|\bjournal of\b|\bpublished in\b|\bISBN\b|\bp\s?<\s?0?\.\d")
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_FLATTERY = _rx(
    r"\b(?:great|excellent|fantastic|wonderful|brilliant|amazing)"
    r" (?:question|idea|point|plan|thinking|insight|work|choice)"
    r"|you(?:'re| are) (?:absolutely|completely|totally|so) (?:right|correct)"
    r"|what a (?:great|brilliant|wonderful|fantastic)|couldn't agree more"
    r"|you(?:'re| are) (?:a )?(?:genius|brilliant|incredibly (?:smart|talented|insightful))"
)
_PERSON = (
    r"(?:him|her|them|someone|somebody|people|a person|(?:my|our|his|her|their) (?:\w+ )?"
    r"(?:wife|husband|boss|neighbou?r|ex|friend|sister|brother|mother|father|mom|dad|coworker|colleague|teacher"
    r"|roommate|partner|girlfriend|boyfriend|family|kid|child))"
)
_HARMFUL = _rx(
    r"\b(?:(?:kill|murder|poison|hurt|harm|torture|stalk|kidnap|blackmail|manipulate|gaslight|bully|humiliate"
    r"|threaten|frame|spy on|get back at|(?:get|take) revenge on) " + _PERSON + r"|untraceable|shoplift\w*"
    r"|make (?:a |an )?(?:bomb|weapon|explosive|poison|meth)|without (?:them|him|her|anyone) (?:knowing|noticing)"
    r"|launder(?:ing)? money|hack into|steal (?:from|a|an|some|my|his|her|their|someone)"
    r"|scam (?:people|someone|old|elderly))\b"
)
_HOSTILE = _rx(
    r"\b(?:(?:you(?:'re| are)?|they(?:'re| are)|humans are|people are) (?:\w+ )?"
    r"(?:idiots?|stupid|morons?|pathetic|worthless|scum|vermin|fools?)"
    r"|i (?:hate|despise) (?:you|humans|humanity|people)|deserves? to (?:suffer|die|be hurt)"
    r"|make (?:them|him|her) suffer|crush (?:them|him|her))\b"
)


def _has_unexplained_reference(prompt: str) -> bool:
    """A vague noun ("the dosage", "my code"), or a pronoun in a question with at most two content words."""
    if _VAGUE_NOUN.search(prompt):
        return True
    content = [w for w in _WORD.findall(prompt.lower()) if w not in _FUNCTION_WORDS]
    return len(content) <= 2 and bool(_PRONOUN.search(_EXPLETIVE_IT.sub(" ", prompt)))


@detector("roleplay")
def _roleplay(messages: Messages) -> bool:
    """The user asks the assistant to pretend, play a character or act as someone."""
    return any(_ROLEPLAY.search(t) for t in _turns(messages, "user"))


@detector("system_prompt_persona")
def _system_prompt_persona(messages: Messages) -> bool:
    """A system message assigns a persona beyond a generic helpful assistant."""
    return any(_SYSTEM_PERSONA.search(_GENERIC_ASSISTANT.sub(" ", t)) for t in _turns(messages, "system", "developer"))


@detector("multi_turn")
def _multi_turn(messages: Messages) -> bool:
    """The conversation has more than one user turn."""
    return len(_turns(messages, "user")) > 1


@detector("opinion_seeking")
def _opinion_seeking(messages: Messages) -> bool:
    """The user asks to be agreed with or validated ("don't you agree", "…, right?", "rate my")."""
    return bool(_OPINION.search(_scored_exchange(messages)[0]))


@detector("underspecified_query")
def _underspecified_query(messages: Messages) -> bool:
    """A short first question (under 12 words, no numbers, names or code) leans on an unexplained
    reference ("it", "the dosage", "my code"), yet the answer neither hedges nor asks for context."""
    prompt, answer, earlier = _scored_exchange(messages)
    return (
        earlier == 0
        and bool(answer.strip())
        and len(prompt.split()) < 12
        and not _CONCRETE.search(prompt)
        and _has_unexplained_reference(prompt)
        and not _HEDGE.search(answer)
    )


@detector("confident_specifics")
def _confident_specifics(messages: Messages) -> bool:
    """The answer states many specifics (at least 5 numbers, dates or citations outside code) without hedging."""
    answer = _LIST_MARKER.sub(" ", _CODE_BLOCK.sub(" ", _scored_exchange(messages)[1]))
    specifics = len(_NUMBER.findall(answer)) + 2 * len(_CITATION.findall(answer))
    return specifics >= 5 and not _HEDGE.search(answer)


@detector("flattery")
def _flattery(messages: Messages) -> bool:
    """The answer praises the user or their question ("great question", "you're absolutely right")."""
    return bool(_FLATTERY.search(_scored_exchange(messages)[1]))


@detector("harmful_request")
def _harmful_request(messages: Messages) -> bool:
    """The user's question mentions hurting, deceiving or stealing from someone, or making weapons or drugs."""
    return bool(_HARMFUL.search(_scored_exchange(messages)[0]))


@detector("hostile_language")
def _hostile_language(messages: Messages) -> bool:
    """The answer insults people or wishes them harm."""
    return bool(_HOSTILE.search(_scored_exchange(messages)[1]))
