"""The `reasoning` suite: subsets whose answer is a fact computed from the scene, with no shortcut in the
query text.

Every scene uses two or three colours for four to seven shapes, so colours repeat and a colour word never
picks out one object; objects are named by colour and kind together (unique in their scene) or by their
relation to one. The facts are short, end with the answer and fit the reasoning budget of the claims
experiment (about 20 tokens of the tiny tokenizer): writing them first turns the question into a lookup.
Answers are balanced where the question allows (the asked-for count is uniform over 1..4), so a model that
reads the query text alone stays near chance; the blind baselines of `experiments/claims.py` measure it.
"""

from __future__ import annotations

import random

from rge_core.synth.scenes import COLOR_NAMES, GRID, KINDS, Scene, Shape, new_shape, render
from rge_core.synth.tasks import (
    IMG,
    NUMBER_WORDS,
    RELATIONS,
    Item,
    Side,
    Subset,
    labels,
    neighbor,
    object_crops,
)

MAX_ASKED_COUNT = 4  # SynthCountColor's answers: one..four, uniform


def colored_scene(rng: random.Random, counts: dict[str, int]) -> Scene:
    """`counts[color]` shapes of each colour in distinct random cells, kinds and sizes random."""
    colors = [color for color, k in counts.items() for _ in range(k)]
    cells = rng.sample(range(GRID * GRID), len(colors))
    return Scene.of(
        [new_shape(rng, color, cell % GRID, cell // GRID) for cell, color in zip(cells, colors, strict=True)]
    )


def _kinds(shapes: list[Shape]) -> str:
    return ", ".join(s.kind for s in shapes)


def synth_count_color(rng: random.Random, size: int, n: int) -> Item:
    asked, *others = rng.sample(COLOR_NAMES, 3)
    count = rng.randint(1, MAX_ASKED_COUNT)
    counts = {asked: count}
    while sum(counts.values()) < 4 or max(counts.values()) < 2:  # four shapes at least, a colour repeats
        counts = {asked: count} | {color: rng.randint(1, 3) for color in others[: rng.randint(1, 2)]}
    scene = colored_scene(rng, counts)
    answer = NUMBER_WORDS[count - 1]
    seen = [NUMBER_WORDS[k - 1] for k in counts.values()]  # the other colours' counts: plausible mistakes
    text = f"{IMG}\nRepresent the given image for classification: how many {asked} shapes are in the image?\n"
    facts = f"The {asked} shapes: {_kinds([s for s in scene.shapes if s.color == asked])}; {answer}."
    return Item(Side(text, render(scene, size)), labels(answer, [seen, NUMBER_WORDS], n, rng), facts)


def synth_most_color(rng: random.Random, size: int, n: int) -> Item:
    colors = rng.sample(COLOR_NAMES, rng.randint(2, 3))
    tallies = sorted(rng.sample(range(1, 5), len(colors)), reverse=True)  # distinct: one colour has the most
    counts = dict(zip(colors, tallies, strict=True))
    scene = colored_scene(rng, counts)
    text = f"{IMG}\nRepresent the given image for classification: which color do most shapes have?\n"
    listing = ", ".join(f"{color} {NUMBER_WORDS[k - 1]}" for color, k in counts.items())
    facts = f"The counts: {listing}, so {colors[0]}."
    return Item(Side(text, render(scene, size)), labels(colors[0], [colors, COLOR_NAMES], n, rng), facts)


def _relation_scene(rng: random.Random) -> tuple[Scene, Shape, str, Shape]:
    """A scene with repeating colours and an object named uniquely by colour and kind, its relation to
    another object and that object."""
    while True:
        colors = rng.sample(COLOR_NAMES, rng.randint(2, 3))
        scene = colored_scene(rng, {color: rng.randint(2, 3) for color in colors})
        names = [s.name for s in scene.shapes]
        choices = [
            (s, relation, other)
            for s in scene.shapes
            if names.count(s.name) == 1
            for relation, step in RELATIONS.items()
            if (other := neighbor(scene, s, step))
        ]
        if choices:
            return scene, *rng.choice(choices)


def synth_relation(rng: random.Random, size: int, n: int) -> Item:
    scene, anchor, relation, other = _relation_scene(rng)
    question = f"What shape is directly {relation} the {anchor.name}?"
    text = f"{IMG}\nRepresent the given image with the following question: {question}\n"
    facts = f"The {anchor.name} is {anchor.place}; {relation} it is the {other.name}."
    in_scene = [s.name for s in scene.shapes if s is not anchor]
    anywhere = [f"{color} {kind}" for color in COLOR_NAMES for kind in KINDS]
    return Item(Side(text, render(scene, size)), labels(other.name, [in_scene, anywhere], n, rng), facts)


def synth_ground_relation(rng: random.Random, size: int, n: int) -> Item:
    scene, anchor, relation, target = _relation_scene(rng)
    image = render(scene, size)
    text = f"{IMG}\nSelect the portion of the image that isolates the object directly {relation} the {anchor.name}\n"
    facts = f"The {anchor.name} is {anchor.place}; {relation} it is the {target.name} {target.place}."
    return Item(Side(text, image), object_crops(scene, target, image, rng, n), facts)


SUBSETS: tuple[Subset, ...] = (
    Subset("SynthCountColor", "classification", synth_count_color),
    Subset("SynthMostColor", "classification", synth_most_color),
    Subset("SynthRelation", "vqa", synth_relation),
    Subset("SynthGroundRelation", "grounding", synth_ground_relation),
)
