"""What the model reads matches the RGE release (MCG-NJU/RGE at 6074444) string for string. The expected strings
are built by hand from the release's code: src/dataset.py EvalDataset.__getitem__ (the `<|image_1|>` swap, no
strip), src/collator.py AREvalCollator (the chat template with add_generation_prompt, `+ "<emb>"` for targets),
the Qwen2.5-VL chat template's system turn, and `_process_image` for images under 28 px."""

from __future__ import annotations

import pytest
from PIL import Image

from rge_core.model.inputs import Query, Target, load_image
from rge_core.model.rge_model import RGEModel
from rge_core.model.tiny import write_tiny_model

SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
VISION = "<|vision_start|><|image_pad|><|vision_end|>"


@pytest.fixture(scope="module")
def rge(tmp_path_factory) -> RGEModel:
    return RGEModel.load(str(write_tiny_model(tmp_path_factory.mktemp("tiny"), arch="qwen2.5-vl", seed=0)))


def test_a_text_only_candidate_keeps_the_newline_the_rewrites_end_it_with(rge):
    # candidate_replacements.yaml + ensure_trailing_newline make "A photo of a tench\n"
    expected = SYSTEM + "<|im_start|>user\nA photo of a tench\n<|im_end|>\n<|im_start|>assistant\n<emb>"
    assert rge.target_prompt(Target("A photo of a tench\n")) == expected


def test_an_image_query_swaps_the_placeholder_in_place_and_keeps_every_newline(rge):
    text = "<|image_1|>\nRepresent the given image for classification\n"
    image = Image.new("RGB", (56, 56))
    prompt = SYSTEM + f"<|im_start|>user\n{VISION}\nRepresent the given image for classification\n<|im_end|>\n"
    assert rge.generation_prompt(Query(text, image)) == prompt + "<|im_start|>assistant\n"
    assert rge.query_prompt(Query(text, image), "It is a fish.") == prompt + "<|im_start|>assistant\nIt is a fish.<emb>"


def test_a_placeholder_without_an_image_is_dropped_and_nothing_else(rge):
    # EvalDataset: the Qwen tokens replace <|image_1|>, then disappear when img_path == "": "\nFind ..." remains
    expected = SYSTEM + "<|im_start|>user\n\nFind an image of a dog\n<|im_end|>\n<|im_start|>assistant\n<emb>"
    assert rge.target_prompt(Target("<|image_1|>\nFind an image of a dog\n")) == expected


@pytest.mark.parametrize("size", [(10, 40), (40, 7), (3, 5), (28, 28), (64, 30)])
@pytest.mark.parametrize("mode", ["RGB", "P", "L"])
def test_a_side_under_28_pixels_is_stretched_as_the_release_does(size, mode, tmp_path):
    original = Image.linear_gradient("L").resize(size).convert(mode)
    path = tmp_path / "small.png"
    original.save(path)
    # the release's _process_image(image, "original") on Image.open(path), then the processor's RGB conversion
    expected = Image.open(path)
    if expected.size[0] < 28:
        expected = expected.resize((28, expected.size[1]))
    if expected.size[1] < 28:
        expected = expected.resize((expected.size[0], 28))
    expected = expected.convert("RGB")
    for given in (path, Image.open(path)):
        loaded = load_image(given)
        assert loaded.size == (max(size[0], 28), max(size[1], 28))
        assert loaded.tobytes() == expected.tobytes()


def test_a_tiny_image_is_embedded_instead_of_refused(rge):
    vectors = rge.embed_targets([Target("<|image_1|>\nA line\n", Image.new("RGB", (200, 3), (9, 9, 9)))])
    assert vectors.shape[0] == 1 and bool(vectors.isfinite().all())
