"""One generator per synthetic subset: a seeded scene becomes an MMEB query, its targets and the facts that
lead from the query to the answer.

Every generator is `(rng, image_size, n_targets) -> Item`. `targets[0]` is the ground truth, the rest are
distinct distractors, hardest first: training keeps two targets (positive, hard negative), evaluation keeps
`candidates`. Query texts never give the answer away: classification and image-to-text queries are one
fixed text per subset, VQA questions name an object whose asked-for attribute varies, and image targets all
carry the same text, so only the pixels decide.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from rge_core.synth.scenes import (
    COLOR_NAMES,
    GRID,
    KINDS,
    SIZES,
    Box,
    Scene,
    Shape,
    caption,
    crop,
    describe,
    perturb,
    render,
    sample_scene,
)

IMG = "<|image_1|>"  # Phi-3-V placeholder, as in MMEB; loaders swap in the backbone's image tokens
IMAGE_TARGET = f"{IMG}\nRepresent the given image.\n"
CROP_TARGET = f"{IMG}\nRepresent the given cropped image of the object"
NUMBER_WORDS: tuple[str, ...] = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# SynthCount's labels (one..nine) are the smallest label set, so they bound the candidates per row.
MAX_CANDIDATES = len(NUMBER_WORDS)
CROP_PAD = 1.4  # crops show some background around the object, like MMEB's grounding crops
RELATIONS: dict[str, tuple[int, int]] = {
    "to the left of": (-1, 0),
    "to the right of": (1, 0),
    "above": (0, -1),
    "below": (0, 1),
}


@dataclass(frozen=True)
class Side:
    """A query or a target: MMEB text plus an optional image."""

    text: str
    image: Image.Image | None = None


@dataclass(frozen=True)
class Item:
    query: Side
    targets: tuple[Side, ...]
    facts: str  # plain-English reasoning from the query to targets[0]


@dataclass(frozen=True)
class Subset:
    name: str
    category: str
    make: Callable[[random.Random, int, int], Item]


def labels(answer: str, tiers: Sequence[Sequence[str]], n: int, rng: random.Random) -> tuple[Side, ...]:
    """`answer`, then distinct distractors tier by tier (each tier shuffled): plausible ones first."""
    labels = [answer]
    for tier in tiers:
        fresh = [label for label in dict.fromkeys(tier) if label not in labels]
        rng.shuffle(fresh)
        labels += fresh
    if len(labels) < n:
        raise ValueError(f"only {len(labels)} distinct labels for {answer!r}, {n} candidates requested")
    return tuple(Side(label) for label in labels[:n])


def synth_color(rng: random.Random, size: int, n: int) -> Item:
    # Exactly one large shape, so "the largest" is unambiguous and needs a comparison step.
    scene = sample_scene(rng, 2, 5)
    while [s.size for s in scene.shapes].count("large") != 1:
        scene = sample_scene(rng, 2, 5)
    big = next(s for s in scene.shapes if s.size == "large")
    text = f"{IMG}\nRepresent the given image for classification: what is the color of the largest shape?\n"
    facts = f"{describe(scene)} The only large shape is the {big.name}, so the largest shape is {big.color}."
    others = [s.color for s in scene.shapes]
    return Item(Side(text, render(scene, size)), labels(big.color, [others, COLOR_NAMES], n, rng), facts)


def synth_count(rng: random.Random, size: int, n: int) -> Item:
    scene = sample_scene(rng, 1, len(NUMBER_WORDS))
    count = len(scene.shapes)
    answer = NUMBER_WORDS[count - 1]
    near = [NUMBER_WORDS[i] for i in (count - 2, count) if 0 <= i < len(NUMBER_WORDS)]
    text = f"{IMG}\nRepresent the given image for classification: how many shapes are in the image?\n"
    facts = f"{describe(scene)} Counting them one by one gives {answer}."
    return Item(Side(text, render(scene, size)), labels(answer, [near, NUMBER_WORDS], n, rng), facts)


def neighbor(scene: Scene, shape: Shape, step: tuple[int, int]) -> Shape | None:
    """The nearest shape from `shape` in direction `step` along its grid row or column."""
    col, row = shape.col + step[0], shape.row + step[1]
    while 0 <= col < GRID and 0 <= row < GRID:
        if found := scene.at(col, row):
            return found
        col, row = col + step[0], row + step[1]
    return None


def _vqa_questions(scene: Scene) -> dict[str, list[tuple[str, str, str, list[str]]]]:
    """Every unambiguous (question, answer, reason, wrong answers from the scene), by question type."""
    colors = [s.color for s in scene.shapes]
    kinds = [s.kind for s in scene.shapes]
    questions: dict[str, list[tuple[str, str, str, list[str]]]] = {"kind": [], "color": [], "relation": []}
    for s in scene.shapes:
        questions["kind"].append(
            (
                f"What shape is the {s.color} object?",
                s.kind,
                f"The {s.color} object is {s.phrase}, so it is a {s.kind}.",
                kinds,
            )
        )
        if kinds.count(s.kind) == 1:
            questions["color"].append(
                (
                    f"What color is the {s.kind}?",
                    s.color,
                    f"The only {s.kind} is {s.phrase}, so its color is {s.color}.",
                    colors,
                )
            )
        for relation, step in RELATIONS.items():
            if other := neighbor(scene, s, step):
                reason = (
                    f"The {s.name} is {s.place}; the nearest shape directly {relation} it is "
                    f"{other.phrase}, so the answer is {other.color}."
                )
                questions["relation"].append(
                    (f"What color is the shape directly {relation} the {s.name}?", other.color, reason, colors)
                )
    return questions


def synth_vqa(rng: random.Random, size: int, n: int) -> Item:
    scene = sample_scene(rng, 2, 5)
    questions = _vqa_questions(scene)
    kind = rng.choice([k for k, found in questions.items() if found])  # balance types, not questions
    question, answer, reason, wrong = rng.choice(questions[kind])
    own, other = (KINDS, COLOR_NAMES) if kind == "kind" else (COLOR_NAMES, KINDS)
    text = f"{IMG}\nRepresent the given image with the following question: {question}\n"
    targets = labels(answer, [wrong, own, other], n, rng)
    return Item(Side(text, render(scene, size)), targets, f"{describe(scene)} {reason}")


def _other_scenes(scene: Scene, rng: random.Random, k: int) -> list[Scene]:
    """`k` scenes whose captions differ from `scene`'s and each other's: near misses first, then random."""
    captions = [caption(scene)]
    others: list[Scene] = []
    while len(others) < k:
        other = perturb(scene, rng) if len(others) < (k + 1) // 2 else sample_scene(rng, 1, 4)
        if caption(other) not in captions:
            captions.append(caption(other))
            others.append(other)
    return others


def _shapes(scene: Scene) -> str:
    count = len(scene.shapes)
    return f"{NUMBER_WORDS[count - 1]} shape" + "s" * (count > 1)


def synth_t2i(rng: random.Random, size: int, n: int) -> Item:
    scene = sample_scene(rng, 1, 4)
    scenes = [scene, *_other_scenes(scene, rng, n - 1)]
    text = f"Find me an everyday image that matches the given caption: {caption(scene)}\n"
    facts = (
        f"The caption asks for exactly {_shapes(scene)} with given sizes, colors and positions. "
        f"{describe(scene)} That image has every listed shape in its place and nothing else."
    )
    return Item(Side(text), tuple(Side(IMAGE_TARGET, render(s, size)) for s in scenes), facts)


def synth_i2t(rng: random.Random, size: int, n: int) -> Item:
    scene = sample_scene(rng, 1, 4)
    scenes = [scene, *_other_scenes(scene, rng, n - 1)]
    text = f"{IMG}\nFind an image caption describing the given everyday image.\n"
    facts = (
        f"{describe(scene)} The matching caption names exactly what is seen ({_shapes(scene)}) with "
        f"sizes, colors and positions, and no other shape."
    )
    return Item(Side(text, render(scene, size)), tuple(Side(caption(s)) for s in scenes), facts)


def _iou(a: Box, b: Box) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def object_crops(scene: Scene, target: Shape, image: Image.Image, rng: random.Random, n: int) -> tuple[Side, ...]:
    """`n` crop targets of `image`: `target`'s first, then the other objects' (the hard distractors,
    shuffled), then random regions that miss the target; all with distinct pixels."""
    others = [s for s in scene.shapes if s is not target]
    rng.shuffle(others)
    boxes = [target.box(CROP_PAD)] + [s.box(CROP_PAD) for s in others]
    crops: list[Image.Image] = []
    pixels: list[bytes] = []
    while len(crops) < n:
        if boxes:
            box = boxes.pop(0)
        else:
            side = rng.uniform(SIZES["small"], SIZES["large"]) * CROP_PAD
            box = (x := rng.uniform(0, 1 - side), y := rng.uniform(0, 1 - side), x + side, y + side)
            if _iou(box, target.box(CROP_PAD)) > 0.25:
                continue
        region = crop(image, box)
        if region.tobytes() not in pixels:  # distinct pixels, not just distinct files
            crops.append(region)
            pixels.append(region.tobytes())
    return tuple(Side(CROP_TARGET, region) for region in crops)


def synth_ground(rng: random.Random, size: int, n: int) -> Item:
    scene = sample_scene(rng, 2, 5)
    target = rng.choice(scene.shapes)
    image = render(scene, size)
    crops = object_crops(scene, target, image, rng, n)
    text = f'{IMG}\nSelect the portion of the image that isolates the object labeled as "{target.name}"\n'
    facts = (
        f"{describe(scene)} The {target.name} is the {target.size} one {target.place}, so the matching "
        f"crop is the region {target.place} around it."
    )
    return Item(Side(text, image), crops, facts)


SUBSETS: tuple[Subset, ...] = (
    Subset("SynthColor", "classification", synth_color),
    Subset("SynthCount", "classification", synth_count),
    Subset("SynthVQA", "vqa", synth_vqa),
    Subset("SynthT2I", "retrieval", synth_t2i),
    Subset("SynthI2T", "retrieval", synth_i2t),
    Subset("SynthGround", "grounding", synth_ground),
)
