"""The `reasoning` suite: subsets whose answer is a fact computed from the scene, with no shortcut in the
query text.

Every scene uses one to three colours for four to nine shapes, so colours repeat and a colour word never
picks out one object; objects are named by colour and kind together (unique in their scene) or by their
relation to one. The facts are short, end with the answer and fit the reasoning budget of the claims
experiment (at most about 28 tokens of the tiny tokenizer): writing them first turns the question into a
lookup.
Label priors are flat: the asked-for count is uniform over one..nine with uniform distractors, colours and
kinds are uniform, and grounding scenes hold eight or nine objects so every candidate crop shows one. A
model that learns which candidates tend to be right, or reads the query text alone, stays at chance; the
blind baselines of `experiments/claims.py` measure it.
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

MAX_ASKED_COUNT = len(NUMBER_WORDS)  # SynthCountColor's answers: one..nine, uniform
GROUNDING_OBJECTS = 8  # SynthGroundRelation's scenes: as many objects as the claims' eval has candidates


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
    while True:  # four to nine shapes, a colour repeats, other colours unless all nine cells are asked for
        counts = {asked: count} | {color: rng.randint(1, 3) for color in others[: rng.randint(0, 2)]}
        total = sum(counts.values())
        if 4 <= total <= GRID * GRID and max(counts.values()) >= 2 and (len(counts) > 1 or total == GRID * GRID):
            break
    scene = colored_scene(rng, counts)
    answer = NUMBER_WORDS[count - 1]
    text = f"{IMG}\nRepresent the given image for classification: how many {asked} shapes are in the image?\n"
    facts = f"The {asked} shapes: {_kinds([s for s in scene.shapes if s.color == asked])}; {answer}."
    # Distractors drawn uniformly: every number word is then as likely to be right as any other candidate,
    # so a model that learns only which labels tend to be right stays at chance.
    return Item(Side(text, render(scene, size)), labels(answer, [NUMBER_WORDS], n, rng), facts)


def synth_most_color(rng: random.Random, size: int, n: int) -> Item:
    colors = rng.sample(COLOR_NAMES, rng.randint(2, 3))
    tallies = sorted(rng.sample(range(1, 5), len(colors)), reverse=True)  # distinct: one colour has the most
    counts = dict(zip(colors, tallies, strict=True))
    scene = colored_scene(rng, counts)
    text = f"{IMG}\nRepresent the given image for classification: which color do most shapes have?\n"
    listing = ", ".join(f"{color} {NUMBER_WORDS[k - 1]}" for color, k in counts.items())
    facts = f"The counts: {listing}, so {colors[0]}."
    return Item(Side(text, render(scene, size)), labels(colors[0], [colors, COLOR_NAMES], n, rng), facts)


def _relation_scene(
    rng: random.Random, colors: int, per_color: tuple[int, int], min_shapes: int = 0
) -> tuple[Scene, Shape, str, Shape]:
    """A scene of `colors` colours with `per_color` (min, max) shapes each and at least `min_shapes` shapes,
    an object named uniquely by colour and kind, its relation to another object and that object."""
    while True:
        palette = rng.sample(COLOR_NAMES, colors)
        scene = colored_scene(rng, {color: rng.randint(*per_color) for color in palette})
        names = [s.name for s in scene.shapes]
        choices = [
            (s, relation, other)
            for s in scene.shapes
            if names.count(s.name) == 1
            for relation, step in RELATIONS.items()
            if (other := neighbor(scene, s, step))
        ]
        if choices:
            chosen = rng.choice(choices)
            if len(scene.shapes) >= min_shapes:
                return scene, *chosen


def synth_relation(rng: random.Random, size: int, n: int) -> Item:
    scene, anchor, relation, other = _relation_scene(rng, rng.randint(2, 3), (2, 3))
    question = f"What shape is directly {relation} the {anchor.name}?"
    text = f"{IMG}\nRepresent the given image with the following question: {question}\n"
    facts = f"The {anchor.name} is {anchor.place}; {relation} it is the {other.name}."
    in_scene = [s.name for s in scene.shapes if s is not anchor]
    anywhere = [f"{color} {kind}" for color in COLOR_NAMES for kind in KINDS]
    return Item(Side(text, render(scene, size)), labels(other.name, [in_scene, anywhere], n, rng), facts)


def synth_ground_relation(rng: random.Random, size: int, n: int) -> Item:
    # Eight or nine objects, so all eight candidates are objects' crops: with random regions among them,
    # "the crop shows an object" alone would beat chance.
    scene, anchor, relation, target = _relation_scene(rng, 3, (2, 3), GROUNDING_OBJECTS)
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
