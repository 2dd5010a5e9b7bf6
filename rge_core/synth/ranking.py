"""The `ranking` suite: colours ranked by how many shapes have them, a reasoning step the tiny model can write.

Every scene has three colours of the palette with distinct counts drawn from one..four (six to nine large
shapes of random kinds, one per grid cell), and the three subsets ask for the colour with the most shapes,
the fewest, or the one in between. The image alone leaves each of its three colours equally likely (the
three subsets share one scene distribution), and the question text alone leaves all eight. The facts rank
the colours from the most shapes to the fewest, then name the answer:

    pink four, brown three, yellow one; answer: yellow.

Candidates are the palette's eight colours (the scene's other two colours first: the training pair's hard
negative), each one token of the tiny tokenizer, so the answer is uniform over them: a model that learns
which labels tend to be right stays at chance. The facts end with the conclusion after "; "
(rge_core/synth/facts.py), which evaluation compares with each generated rationale's.
"""

from __future__ import annotations

import random
from dataclasses import replace

from rge_core.synth.reasoning import colored_scene
from rge_core.synth.scenes import Scene, render
from rge_core.synth.tasks import IMG, NUMBER_WORDS, Item, Side, Subset, labels

# The colours whose names are one token of the tiny tokenizer (cyan is three).
PALETTE: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "brown")
SCENE_COLORS = 3
MAX_COUNT = 4  # counts are distinct, so at most 4 + 3 + 2 = 9 shapes: one per grid cell
QUESTIONS = (  # by rank, 0 = the most shapes
    "which color do the most shapes have?",
    "which color has more shapes than one color and fewer than another?",
    "which color do the fewest shapes have?",
)


def ranked_item(rng: random.Random, size: int, n: int, rank: int) -> Item:
    colors = rng.sample(PALETTE, SCENE_COLORS)
    counts = dict(zip(colors, rng.sample(range(1, MAX_COUNT + 1), SCENE_COLORS), strict=True))
    # One size for every shape, so that each shape shows as much of its colour as any other.
    scene = Scene.of([replace(shape, size="large") for shape in colored_scene(rng, counts).shapes])
    ranked = sorted(colors, key=counts.__getitem__, reverse=True)
    answer = ranked[rank]
    text = f"{IMG}\nRepresent the given image for classification: {QUESTIONS[rank]}\n"
    listing = ", ".join(f"{color} {NUMBER_WORDS[counts[color] - 1]}" for color in ranked)
    facts = f"{listing}; answer: {answer}."
    others = [color for color in colors if color != answer]
    return Item(Side(text, render(scene, size)), labels(answer, [others, PALETTE], n, rng), facts)


def _subset(name: str, rank: int) -> Subset:
    return Subset(name, "classification", lambda rng, size, n: ranked_item(rng, size, n, rank))


SUBSETS: tuple[Subset, ...] = (
    _subset("SynthRankMost", 0),
    _subset("SynthRankMiddle", 1),
    _subset("SynthRankFewest", 2),
)
