"""Scenes of coloured shapes: sampling, perturbing, describing in English and rendering with PIL.

A scene places 1-9 shapes in distinct cells of a 3x3 grid, each with a small jitter inside its cell, so
shapes never overlap and "left of" / "top left" have one clear answer. Geometry is kept in image
fractions, so one scene renders at any resolution. Rendering draws without anti-aliasing: every pixel is
the background or one palette colour, which lets tests read answers back from the pixels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 210, 20),
    "purple": (130, 40, 170),
    "orange": (250, 130, 10),
    "pink": (250, 140, 200),
    "brown": (120, 70, 30),
    "cyan": (40, 200, 220),
    "black": (15, 15, 15),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
KINDS: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
SIZES: dict[str, float] = {"small": 0.16, "large": 0.28}  # side of the shape's box, in image fractions
BACKGROUND = (235, 235, 235)
GRID = 3
CELL = 1.0 / GRID
# Jitter uses half the free room of a cell, so a shape stays visibly in its row and column.
JITTER = 0.5
Box = tuple[float, float, float, float]  # left, top, right, bottom in image fractions


@dataclass(frozen=True)
class Shape:
    kind: str
    color: str
    size: str
    col: int
    row: int
    jx: float  # jitter in [-1, 1], scaled by the free room of the cell for this size
    jy: float

    @property
    def side(self) -> float:
        return SIZES[self.size]

    @property
    def center(self) -> tuple[float, float]:
        room = JITTER * (CELL - self.side) / 2
        return (self.col + 0.5) * CELL + self.jx * room, (self.row + 0.5) * CELL + self.jy * room

    @property
    def name(self) -> str:
        return f"{self.color} {self.kind}"

    @property
    def place(self) -> str:
        vertical = ("top", "", "bottom")[self.row]
        horizontal = ("left", "", "right")[self.col]
        if not vertical and not horizontal:
            return "in the center"
        if not vertical:
            return f"on the {horizontal}"
        return f"at the {vertical} {horizontal}".rstrip()

    @property
    def phrase(self) -> str:
        return f"a {self.size} {self.color} {self.kind} {self.place}"

    def box(self, pad: float = 1.0) -> Box:
        x, y = self.center
        half = self.side * pad / 2
        return x - half, y - half, x + half, y + half


@dataclass(frozen=True)
class Scene:
    shapes: tuple[Shape, ...]  # in reading order (row by row), so descriptions are canonical

    @staticmethod
    def of(shapes: list[Shape] | tuple[Shape, ...]) -> Scene:
        return Scene(tuple(sorted(shapes, key=lambda s: (s.row, s.col))))

    def at(self, col: int, row: int) -> Shape | None:
        return next((s for s in self.shapes if (s.col, s.row) == (col, row)), None)

    def free_cells(self) -> list[tuple[int, int]]:
        return [(c, r) for r in range(GRID) for c in range(GRID) if self.at(c, r) is None]


def new_shape(rng: random.Random, color: str, col: int, row: int) -> Shape:
    return Shape(rng.choice(KINDS), color, rng.choice(tuple(SIZES)), col, row, rng.uniform(-1, 1), rng.uniform(-1, 1))


def sample_scene(rng: random.Random, n_min: int, n_max: int) -> Scene:
    n = rng.randint(n_min, n_max)
    cells = rng.sample(range(GRID * GRID), n)
    colors = rng.sample(COLOR_NAMES, n)
    return Scene.of(
        [new_shape(rng, color, cell % GRID, cell // GRID) for cell, color in zip(cells, colors, strict=True)]
    )


def perturb(scene: Scene, rng: random.Random) -> Scene:
    """A near-miss of `scene`: one shape changes colour, kind, size or cell, or a shape is added/removed."""
    shapes = list(scene.shapes)
    i = rng.randrange(len(shapes))
    unused = [c for c in COLOR_NAMES if c not in {s.color for s in shapes}]
    free = scene.free_cells()
    ops = ["color", "kind", "size"] + ["move", "add"] * bool(free) + ["remove"] * (len(shapes) > 1)
    op = rng.choice(ops)
    if op == "color":
        shapes[i] = replace(shapes[i], color=rng.choice(unused))
    elif op == "kind":
        shapes[i] = replace(shapes[i], kind=rng.choice([k for k in KINDS if k != shapes[i].kind]))
    elif op == "size":
        shapes[i] = replace(shapes[i], size="large" if shapes[i].size == "small" else "small")
    elif op == "move":
        col, row = rng.choice(free)
        shapes[i] = replace(shapes[i], col=col, row=row)
    elif op == "add":
        col, row = rng.choice(free)
        shapes.append(new_shape(rng, rng.choice(unused), col, row))
    else:
        del shapes[i]
    return Scene.of(shapes)


def _listing(scene: Scene) -> str:
    phrases = [s.phrase for s in scene.shapes]
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def caption(scene: Scene) -> str:
    """One sentence naming every shape with its size, colour and position; equal captions mean equal scenes
    up to jitter."""
    text = _listing(scene)
    return text[0].upper() + text[1:] + "."


def describe(scene: Scene) -> str:
    """The opening of every reference rationale; it lists the shapes without stating their number, so a
    counting rationale still has to count."""
    return f"The image shows {_listing(scene)}."


def _points(shape: Shape, size: int) -> list[tuple[float, float]]:
    left, top, right, bottom = (v * size for v in shape.box())
    x, y = shape.center[0] * size, shape.center[1] * size
    if shape.kind == "triangle":
        return [(x, top), (right, bottom), (left, bottom)]
    if shape.kind == "diamond":
        return [(x, top), (right, y), (x, bottom), (left, y)]
    if shape.kind == "cross":  # a plus sign with arms one third of the side wide
        a = (right - left) / 6
        return [
            (x - a, top),
            (x + a, top),
            (x + a, y - a),
            (right, y - a),
            (right, y + a),
            (x + a, y + a),
            (x + a, bottom),
            (x - a, bottom),
            (x - a, y + a),
            (left, y + a),
            (left, y - a),
            (x - a, y - a),
        ]
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


def render(scene: Scene, size: int) -> Image.Image:
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for shape in scene.shapes:
        if shape.kind == "circle":
            draw.ellipse([v * size for v in shape.box()], fill=COLORS[shape.color])
        else:
            draw.polygon(_points(shape, size), fill=COLORS[shape.color])
    return image


def crop(image: Image.Image, box: Box) -> Image.Image:
    """The region `box` (image fractions, side <= 1) scaled back to the full image size; nearest-neighbour
    keeps the palette exact."""
    left, top, right, bottom = box
    # Shift the box inside the image rather than letting PIL pad with black, a palette colour.
    dx = max(0.0, -left) - max(0.0, right - 1.0)
    dy = max(0.0, -top) - max(0.0, bottom - 1.0)
    size = image.width
    x0, y0, x1, y1 = (round(v * size) for v in (left + dx, top + dy, right + dx, bottom + dy))
    return image.crop((x0, y0, x1, y1)).resize((size, size), Image.Resampling.NEAREST)
