"""Rendered scenes of coloured shapes, captioned from the scene: the captioning app's synthetic
source. A caption names every object's colour and shape, how many there are, and where one
stands from the other, so a decoder has to look at the image to write it.

    one object:               "a red circle" / "there is a red circle"
    two alike:                "two red circles" / "there are two red circles"
    two different, left one first or right one first:
                              "a red circle left of a blue square" / "a blue square right of a red circle"

Example:
>>> scene = generate(1, seed=0)[0]
>>> scene.image.shape, scene.image.dtype.name, len(scene.captions) >= 2
((48, 48, 3), 'uint8', True)
"""

from __future__ import annotations

import dataclasses

import numpy as np

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 230), "yellow": (230, 210, 40)}
SHAPES = ("circle", "square", "triangle")
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles"}
SIZE = 48  # image side in pixels


@dataclasses.dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (SIZE, SIZE, 3) uint8
    captions: tuple[str, ...]
    objects: tuple[tuple[str, str, int, int], ...]  # (colour, shape, centre x, centre y), left to right


def _draw(image: np.ndarray, shape: str, colour, cx: int, cy: int, radius: int) -> None:
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    if shape == "circle":
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
    elif shape == "square":
        inside = (abs(xx - cx) <= radius * 0.85) & (abs(yy - cy) <= radius * 0.85)
    else:  # an upward triangle: apex at the top, base at the bottom
        top, bottom = cy - radius, cy + radius
        half_width = (yy - top) / (2 * radius) * radius * 1.1
        inside = (yy >= top) & (yy <= bottom) & (abs(xx - cx) <= half_width)
    image[inside] = colour


def _captions(objects) -> tuple[str, ...]:
    if len(objects) == 1:
        (colour, shape, *_), = objects
        return f"a {colour} {shape}", f"there is a {colour} {shape}"
    (c1, s1, *_), (c2, s2, *_) = objects
    if (c1, s1) == (c2, s2):
        return f"two {c1} {PLURAL[s1]}", f"there are two {c1} {PLURAL[s1]}"
    return f"a {c1} {s1} left of a {c2} {s2}", f"a {c2} {s2} right of a {c1} {s1}"


def generate(n: int, seed: int) -> list[Scene]:
    """`n` scenes of one or two objects (a third alike pairs, when two), on a grey background
    with a little noise, objects in the left and right halves."""
    rng = np.random.default_rng(seed)
    colours, scenes = list(COLOURS), []
    for _ in range(n):
        count = 1 if rng.random() < 0.3 else 2
        kinds = [(colours[rng.integers(len(colours))], SHAPES[rng.integers(len(SHAPES))])]
        if count == 2:
            kinds.append(kinds[0] if rng.random() < 0.33 else
                         (colours[rng.integers(len(colours))], SHAPES[rng.integers(len(SHAPES))]))
        image = np.full((SIZE, SIZE, 3), 128, np.int16) + rng.integers(-12, 13, (SIZE, SIZE, 3))
        radius = int(rng.integers(6, 9))
        if count == 1:
            positions = [(int(rng.integers(radius + 2, SIZE - radius - 2)), int(rng.integers(radius + 2, SIZE - radius - 2)))]
        else:
            positions = [(int(rng.integers(radius + 1, SIZE // 2 - 2)), int(rng.integers(radius + 2, SIZE - radius - 2))),
                         (int(rng.integers(SIZE // 2 + 2, SIZE - radius - 1)),
                          int(rng.integers(radius + 2, SIZE - radius - 2)))]
        objects = tuple((colour, shape, x, y) for (colour, shape), (x, y) in zip(kinds, positions))
        for colour, shape, x, y in objects:
            _draw(image, shape, COLOURS[colour], x, y, radius)
        scenes.append(Scene(np.clip(image, 0, 255).astype(np.uint8), _captions(objects), objects))
    return scenes
