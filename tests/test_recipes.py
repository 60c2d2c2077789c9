"""Named proxy recipes, on-device augmentation and the holdout the claims are scored on."""

from __future__ import annotations

import pytest
import torch

from nasl.common.errors import NaslError
from nasl.data import load_dataset
from nasl.run import verdict
from nasl.space import loads_space
from nasl.training import recipes
from nasl.training.augment import augment_batch

SPACE = """\
name: r
family: shufflenet
proxy: {{dataset: digits, resolution: 16, epochs: 1, {extra}}}
params:
  groups: {{choices: [1, 3]}}
"""


def test_named_recipes_and_overrides():
    plain, aug = recipes.resolve("plain"), recipes.resolve("augmented")
    assert plain.values["augment"] == () and aug.values["augment"] == ("crop", "flip")
    assert aug.values["weight_decay"] == 5e-4 and aug.label == "augmented"
    mixed = recipes.resolve("plain", {"augment": "crop+flip", "weight_decay": 4e-5})
    assert mixed.label == "plain+augment=crop+flip"  # only what differs is named
    assert "crop+flip" in mixed.describe(6) and "6 epochs" in mixed.describe(6)
    with pytest.raises(ValueError, match="expected one of plain, augmented, crop"):
        recipes.resolve("fancy")
    with pytest.raises(ValueError, match="expected none, or a list of crop, flip"):
        recipes.parse_augment("rotate")


def test_space_recipe_keys_resolve_and_bad_values_are_one_line_errors():
    sp = loads_space(SPACE.format(extra="recipe: augmented"))
    kw = sp.proxy.train_kwargs()
    assert kw["augment"] == ("crop", "flip") and kw["weight_decay"] == 5e-4 and kw["epochs"] == 1
    sp = loads_space(SPACE.format(extra="recipe: augmented, weight_decay: 0.001"))
    assert sp.proxy.recipe_of().label == "augmented+weight_decay=0.001"
    for extra, expect in (("recipe: fancy", "expected one of plain, augmented, crop"),
                          ("augment: rotate", "expected none, or a list of crop, flip")):
        with pytest.raises(NaslError) as e:
            loads_space(SPACE.format(extra=extra))
        assert expect in str(e.value) and "\n" not in str(e.value)


def test_augment_batch_crops_flips_and_is_seeded():
    x = torch.arange(64 * 3 * 16 * 16, dtype=torch.float32).reshape(64, 3, 16, 16) + 1
    x = x.contiguous(memory_format=torch.channels_last)
    a = augment_batch(x, ("crop", "flip"), torch.Generator().manual_seed(1))
    b = augment_batch(x, ("crop", "flip"), torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(a, x)
    # every value is an original pixel or the zero padding (the data's mean)
    assert set(a.unique().tolist()) <= set(x.unique().tolist()) | {0.0}
    flipped = augment_batch(x, ("flip",), torch.Generator().manual_seed(2))
    same = sum(torch.equal(flipped[i], x[i]) for i in range(64))
    mirrored = sum(torch.equal(flipped[i], x[i].flip(-1)) for i in range(64))
    assert same + mirrored == 64 and 16 < mirrored < 48  # about half are mirrored
    shifted = augment_batch(x, ("crop",), torch.Generator().manual_seed(3))
    assert (shifted == 0).any()  # padding shows at some border


def test_holdout_is_disjoint_and_confirmation_trains_on_the_rest():
    def keys(t: torch.Tensor, d) -> set[bytes]:  # the raw images, normalisation undone
        raw = t * torch.tensor(d.std).view(1, -1, 1, 1) + torch.tensor(d.mean).view(1, -1, 1, 1)
        return {row.numpy().tobytes() for row in raw.round(decimals=2).reshape(len(t), -1)}

    search = load_dataset("digits", resolution=8, seed=0, holdout_fraction=0.2)
    confirm = load_dataset("digits", resolution=8, seed=0, holdout_fraction=0.2, split="confirm")
    assert len(confirm.val_y) == 288 and len(confirm.train_y) == len(search.train_y) + len(search.val_y)
    held = keys(confirm.val_x, confirm)
    seen = keys(search.train_x, search) | keys(search.val_x, search)
    assert len(held) > 250 and not held & seen  # the search never sees a holdout image
    assert keys(confirm.train_x, confirm) == seen
    plain = load_dataset("digits", resolution=8, seed=0)
    assert len(plain.train_y) + len(plain.val_y) == len(search.train_y) + len(search.val_y) + 288
    with pytest.raises(NaslError, match="holdout_fraction"):
        load_dataset("digits", resolution=8, seed=0, split="confirm")


def test_one_measurement_gets_the_interval_its_repeats_support():
    one = verdict.latency_stats({"latency_ms": 5.0, "latency_p10_ms": 4.5, "latency_p90_ms": 6.0})
    assert one is not None and (one.low, one.median, one.high) == (4.5, 5.0, 6.0)
    bare = verdict.latency_stats({"latency_ms": 5.0})
    assert bare is not None and bare.low == bare.high == 5.0  # nothing known beyond the median


def test_saved_space_keeps_the_recipe_without_turning_defaults_into_overrides():
    """The run folder's space.yaml (what --resume loads) trains with the same recipe."""
    sp = loads_space(SPACE.format(extra="recipe: augmented, label_smoothing: 0.0"))
    again = loads_space(sp.to_yaml())
    assert again.proxy.recipe_of() == sp.proxy.recipe_of()
    assert again.proxy.recipe_of().label == "augmented+label_smoothing=0"
    assert again.proxy.train_kwargs()["weight_decay"] == 5e-4
