"""Class lists of the CLImage releases, which their pickles do not carry (their README lists them).

Index i is ``ord_labels`` / ``cl_labels`` value i, spelled as the README spells it.
"""

from __future__ import annotations

CLASS_PRESETS: dict[str, list[str]] = {
    "clcifar10": [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ],
    "clcifar20": [
        "aquatic_mammals",
        "fish",
        "flowers",
        "food_containers",
        "fruit, vegetables and mushrooms",
        "household electrical devices",
        "household furniture",
        "insects",
        "large carnivores and bear",
        "large man-made outdoor things",
        "large natural outdoor scenes",
        "large omnivores and herbivores",
        "medium-sized mammals",
        "non-insect invertebrates",
        "people",
        "reptiles",
        "small mammals",
        "trees",
        "transportation vehicles",
        "non-transportation vehicles",
    ],
    "clmicroimagenet10": [
        "sulphur-butterfly", "backpack", "cardigan", "kimono", "magnetic-compass",
        "oboe", "scandal", "torch", "pizza", "alp",
    ],
    "clmicroimagenet20": [
        "tailed frog", "scorpion", "snail", "american lobster", "tabby",
        "persian cat", "gazelle", "chimpanzee", "bannister", "barrel",
        "christmas stocking", "gasmask", "hourglass", "iPod", "scoreboard",
        "snorkel", "suspension bridge", "torch", "tractor", "triumphal arch",
    ],
}  # fmt: skip


def class_preset(name: str) -> list[str] | None:
    """A copy of the preset class list called ``name`` (case-insensitive), or None."""
    preset = CLASS_PRESETS.get(name.strip().lower())
    return list(preset) if preset is not None else None
