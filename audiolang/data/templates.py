"""Text side of the embedded in-car corpus: intent templates, passenger talk and a valence lexicon.

Every template belongs to exactly one of two pools, ``seen`` (pre-training, train and validation) and
``held_out`` (test only); slot values are split the same way. A test sentence therefore always uses a
template or a slot value that training never saw, so it cannot appear in training verbatim (the builder
also checks this). The words were chosen from the CMU pronouncing dictionary so that the offline
recogniser can spell them; recognition errors come from the audio, not from missing words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

INTENTS: tuple[str, ...] = (
    "navigation",
    "music",
    "phone_call",
    "climate",
    "window",
    "seat_heating",
    "radio",
    "volume",
    "news",
    "reminder",
    "message",
    "vehicle_status",
    "media_control",
    "weather",
    "chit_chat",
)
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry")
DIRECTED_NAMES: tuple[str, ...] = ("non_directed", "directed")

# Slot values: (seen, held_out). Held-out values only ever appear in the test split.
SLOTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "place": (
        (
            "the airport",
            "the office",
            "home",
            "the train station",
            "the hospital",
            "the mall",
            "the nearest gas station",
            "the beach",
            "the museum",
            "the hotel",
            "the school",
            "the parking garage",
            "the city center",
            "the park",
        ),
        ("the stadium", "the library", "the harbor", "the bank"),
    ),
    "artist": (
        (
            "the beatles",
            "madonna",
            "elvis",
            "queen",
            "the rolling stones",
            "frank sinatra",
            "michael jackson",
            "bob dylan",
            "johnny cash",
            "prince",
        ),
        ("abba", "elton john", "aretha franklin"),
    ),
    "genre": (
        ("jazz", "rock", "classical music", "country music", "hip hop", "blues"),
        ("reggae", "folk music"),
    ),
    "contact": (
        ("mom", "dad", "john", "sarah", "my wife", "my boss", "david", "lisa", "the office", "peter"),
        ("grandma", "michael", "my brother"),
    ),
    "temperature": (
        ("sixty eight", "seventy", "seventy two", "sixty five", "seventy five", "twenty one", "twenty two"),
        ("sixty nine", "twenty four"),
    ),
    "side": (("driver", "passenger", "front", "back"), ("rear", "left")),
    "station": (
        (
            "ninety eight point one",
            "one oh one point five",
            "the news station",
            "the sports station",
            "one oh five point three",
        ),
        ("ninety two point seven", "the jazz station"),
    ),
    "level": (("three", "five", "seven", "ten", "two"), ("four", "eight")),
    "time": (
        ("five o'clock", "six thirty", "tomorrow morning", "noon", "eight o'clock", "tonight"),
        ("nine fifteen", "this afternoon"),
    ),
    "task": (
        (
            "buy milk",
            "call the doctor",
            "pick up the kids",
            "pay the bills",
            "book a table",
            "water the plants",
        ),
        ("return the books", "charge my phone"),
    ),
    "city": (
        ("boston", "chicago", "london", "paris", "seattle", "denver", "miami"),
        ("dallas", "berlin", "toronto"),
    ),
    "topic": (("sports", "business", "politics", "technology", "science"), ("health", "travel")),
    "part": (
        ("tire pressure", "oil level", "battery", "fuel level", "brakes"),
        ("engine temperature", "range"),
    ),
    "message": (
        ("i am running late", "i will be there soon", "see you tonight", "on my way", "call me back"),
        ("i am stuck in traffic", "dinner is ready"),
    ),
}

# Templates per intent: (seen, held_out). ``{slot}`` placeholders name entries of SLOTS.
INTENT_TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "navigation": (
        (
            "navigate to {place}",
            "take me to {place}",
            "how do i get to {place}",
            "find the fastest route to {place}",
            "start navigation to {place}",
            "show me the way to {place}",
            "how long until we reach {place}",
            "set {place} as my destination",
        ),
        ("i need directions to {place}", "get me to {place} please"),
    ),
    "music": (
        (
            "play some {genre}",
            "play songs by {artist}",
            "i want to hear {artist}",
            "put on some {genre}",
            "play my favorite {genre} playlist",
            "can you play {artist}",
            "shuffle songs by {artist}",
        ),
        ("let me hear some {genre}", "start playing {artist}"),
    ),
    "phone_call": (
        (
            "call {contact}",
            "phone {contact}",
            "dial {contact}",
            "give {contact} a call",
            "can you call {contact} for me",
            "make a call to {contact}",
            "ring {contact}",
        ),
        ("get {contact} on the phone", "place a call to {contact}"),
    ),
    "climate": (
        (
            "set the temperature to {temperature} degrees",
            "make it warmer",
            "turn up the heat",
            "turn on the air conditioning",
            "it is too cold in here",
            "set the fan to {level}",
            "turn off the air conditioning",
            "make it cooler in here",
        ),
        ("change the temperature to {temperature} degrees", "i am freezing turn on the heater"),
    ),
    "window": (
        (
            "open the {side} window",
            "close the {side} window",
            "roll down the {side} window",
            "roll up all the windows",
            "open the sunroof",
            "close the sunroof",
            "open the window a little",
        ),
        ("crack the {side} window", "shut the {side} window"),
    ),
    "seat_heating": (
        (
            "turn on the seat heating",
            "turn on the {side} seat heater",
            "turn off the seat heating",
            "warm up my seat",
            "set the seat heating to {level}",
            "my seat is cold",
        ),
        ("heat the {side} seat", "switch off the {side} seat heater"),
    ),
    "radio": (
        (
            "tune to {station}",
            "play {station}",
            "switch to the radio",
            "turn on the radio",
            "change the station to {station}",
            "find a {genre} station",
        ),
        ("put on {station}", "go to the next radio station"),
    ),
    "volume": (
        (
            "turn the volume up",
            "turn it down",
            "set the volume to {level}",
            "make it louder",
            "lower the volume",
            "mute the sound",
            "volume {level}",
        ),
        ("raise the volume a bit", "it is way too loud"),
    ),
    "news": (
        (
            "read me the news",
            "what is the latest news",
            "play the {topic} news",
            "give me the headlines",
            "what is happening in {topic}",
            "any news about {city}",
        ),
        ("tell me the {topic} headlines", "what are today's top stories"),
    ),
    "reminder": (
        (
            "remind me to {task}",
            "remind me to {task} at {time}",
            "set a reminder for {time}",
            "create a reminder to {task}",
            "don't let me forget to {task}",
        ),
        ("add a reminder to {task} at {time}", "i need a reminder to {task}"),
    ),
    "message": (
        (
            "send a message to {contact}",
            "text {contact} {message}",
            "tell {contact} {message}",
            "send {contact} a text saying {message}",
            "read my messages",
            "reply to {contact}",
        ),
        ("write to {contact} {message}", "message {contact} that {message}"),
    ),
    "vehicle_status": (
        (
            "check the {part}",
            "how is my {part}",
            "what is my {part}",
            "is the {part} okay",
            "how far can i drive",
            "do i need gas",
            "show me the {part}",
        ),
        ("tell me about the {part}", "is there a problem with the {part}"),
    ),
    "media_control": (
        (
            "next song",
            "skip this song",
            "pause the music",
            "resume playing",
            "go back to the last song",
            "repeat this song",
            "stop the music",
        ),
        ("play the previous track", "skip ahead"),
    ),
    "weather": (
        (
            "what is the weather like",
            "will it rain today",
            "what is the weather in {city}",
            "do i need an umbrella",
            "how hot is it outside",
            "what is the forecast for {time}",
        ),
        ("is it going to snow in {city}", "how cold will it be {time}"),
    ),
    "chit_chat": (
        (
            "tell me a joke",
            "how are you today",
            "what is your name",
            "who made you",
            "do you like music",
            "you are funny",
            "what can you do",
            "good morning",
        ),
        ("are you a robot", "sing me a song"),
    ),
}

# Non-directed passenger talk. Many lines deliberately reuse command words (the hard cases): neither
# the words nor the audio alone decide device-directedness.
PASSENGER_TEMPLATES: tuple[tuple[str, ...], tuple[str, ...]] = (
    (
        "i should call {contact} later",
        "did you remember to {task}",
        "we are almost at {place}",
        "i think we should take the highway",
        "the music in this car is always too loud",
        "i told it to call {contact} but it didn't",
        "do you want to stop for coffee",
        "the kids are asleep in the back",
        "i love this song",
        "it is so cold outside today",
        "my mom said it will rain in {city}",
        "can you believe the traffic",
        "we need to {task} tomorrow",
        "i heard the news about {topic}",
        "maybe we should open the window",
        "that was a great movie",
        "did {contact} send you a message",
        "i am so tired",
        "turn left at the next light",
        "the weather in {city} was terrible",
        "let's listen to {artist} when we get home",
        "how was your day",
        "i forgot my phone at {place}",
        "we should leave at {time}",
        "this seat is really comfortable",
        "i can't wait for the weekend",
    ),
    (
        "you should call {contact} when we get to {place}",
        "i think the radio is broken",
        "remember we have dinner at {time}",
        "did you check the {part} this morning",
        "i wonder what the weather is like in {city}",
        "{artist} is playing in {city} next month",
    ),
)

# Spoken-style wrappers. Casual fillers make commands sound less like a keyboard query.
PREFIXES: tuple[str, ...] = ("", "", "", "hey ", "um ", "okay ", "so ", "uh ")
# Sentiment wrappers carry the words' share of valence. Emotion biases which ones a speaker uses.
POSITIVE_PHRASES: tuple[str, ...] = (
    "thank you so much",
    "that would be great",
    "awesome thanks",
    "i love it",
)
NEGATIVE_PHRASES: tuple[str, ...] = (
    "ugh this is so annoying",
    "come on hurry up",
    "this is terrible",
    "i hate this",
)

# Word-level valence in [-2, 2] (hand-set, AFINN-like). A sentence's text valence is their mean
# over scored words, scaled into [-1.5, 1.5].
VALENCE_LEXICON: dict[str, float] = {
    "thank": 1.5,
    "thanks": 1.5,
    "great": 2.0,
    "awesome": 2.0,
    "love": 2.0,
    "favorite": 1.0,
    "please": 0.5,
    "good": 1.5,
    "funny": 1.0,
    "comfortable": 1.0,
    "wait": -0.5,
    "annoying": -2.0,
    "terrible": -2.0,
    "hate": -2.0,
    "ugh": -1.5,
    "hurry": -1.0,
    "cold": -0.5,
    "freezing": -1.0,
    "tired": -1.0,
    "late": -1.0,
    "stuck": -1.5,
    "broken": -1.5,
    "problem": -1.5,
    "forgot": -1.0,
    "asleep": 0.0,
    "ready": 0.5,
}

# Prosody-driven valence of each emotion (the audio's share of valence).
EMOTION_VALENCE: dict[str, float] = {"neutral": 0.0, "happy": 1.5, "sad": -1.5, "angry": -1.0}

_SLOT_RE = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Sentence:
    text: str
    intent: str | None  # None for passenger talk
    directed: bool
    template_id: str


def _templates(held_out: bool) -> list[tuple[str | None, str, str]]:
    """(intent, template, template_id) triples of one pool, in a fixed order."""
    pool = 1 if held_out else 0
    out: list[tuple[str | None, str, str]] = []
    for intent in INTENTS:
        for i, template in enumerate(INTENT_TEMPLATES[intent][pool]):
            out.append((intent, template, f"{intent}/{pool}/{i}"))
    for i, template in enumerate(PASSENGER_TEMPLATES[pool]):
        out.append((None, template, f"passenger/{pool}/{i}"))
    return out


def fill_template(template: str, rng: np.random.Generator, held_out: bool) -> str:
    """Fill every slot; held-out sentences draw from the held-out values half of the time."""

    def value(match: re.Match[str]) -> str:
        seen, unseen = SLOTS[match.group(1)]
        values = unseen if (held_out and rng.random() < 0.5) else seen
        return values[int(rng.integers(len(values)))]

    return _SLOT_RE.sub(value, template)


def text_valence(text: str) -> float:
    """The words' share of valence, in [-1.5, 1.5]: mean lexicon score of scored words, times 0.75."""
    scores = [VALENCE_LEXICON[w] for w in text.split() if w in VALENCE_LEXICON]
    return 0.75 * float(np.mean(scores)) if scores else 0.0


def sample_sentence(rng: np.random.Generator, emotion: str, directed: bool, held_out: bool) -> Sentence:
    """Draw one spoken sentence.

    Held-out sentences use a held-out template, or a seen template with at least one held-out slot
    value, so the test split never repeats a training sentence verbatim.
    """
    pool = [t for t in _templates(held_out=False) if (t[0] is not None) == directed]
    if held_out:
        unseen_pool = [t for t in _templates(held_out=True) if (t[0] is not None) == directed]
        # Half the test sentences come from unseen templates, half from seen templates with unseen values.
        pool = unseen_pool if rng.random() < 0.5 else [t for t in pool if _SLOT_RE.search(t[1])]
    intent, template, template_id = pool[int(rng.integers(len(pool)))]
    text = fill_template(template, rng, held_out)
    text = PREFIXES[int(rng.integers(len(PREFIXES)))] + text
    # Emotional speakers add matching sentiment words more often; neutral ones rarely do.
    p_pos = {"happy": 0.4, "neutral": 0.08, "sad": 0.03, "angry": 0.02}[emotion]
    p_neg = {"angry": 0.4, "sad": 0.25, "neutral": 0.08, "happy": 0.02}[emotion]
    u = rng.random()
    if u < p_pos:
        text = f"{text} {POSITIVE_PHRASES[int(rng.integers(len(POSITIVE_PHRASES)))]}"
    elif u < p_pos + p_neg:
        text = f"{text} {NEGATIVE_PHRASES[int(rng.integers(len(NEGATIVE_PHRASES)))]}"
    return Sentence(text=text.strip(), intent=intent, directed=directed, template_id=template_id)
