"""Occluder categories and their traits: the one registry that sampling and placement read.

A category's traits say which part of the face it occupies (``slot``: at most one occluder
per slot), how far in front it is drawn (``depth``: layers are composited back to front),
whether its layers take a skin tone (``skin_tint``: hands), which placement rules its
assets may use (``rules``; the first is the default for a sidecar that names none; empty:
any rule) and how far a face may be turned for its drawn assets (``max_yaw``). A new
built-in category is one ``register`` call below. A category that is not registered (a
user's own, from ``--occluders-dir``) gets ``default_traits``: its own slot, the depth of
that slot (middle depth for a new slot), no tint, any rule, any pose; its sidecars may
declare ``slot``, ``depth`` and ``skin_tint`` (see ``occluders.library``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Depth of a slot no registered category occupies: between worn and held items.
DEFAULT_DEPTH = 3

#: Pairs of slots that never occur together on one face (a drink at the mouth and a mask; a
#: headset's boom microphone and a drink or a handheld microphone).
EXCLUSIVE_SLOTS: frozenset[frozenset[str]] = frozenset(
    {
        frozenset({"lower_face", "mouth_prop"}),
        frozenset({"prop", "mouth_prop"}),
        frozenset({"headset", "mouth_prop"}),
        frozenset({"headset", "prop"}),
    }
)

#: Placement rules of objects held in front of the face (the first is the default).
_HELD = ("from_edge", "from_below", "from_above")


@dataclass(frozen=True)
class CategoryTraits:
    """How one category behaves on a face (see the module docstring)."""

    slot: str
    depth: int = DEFAULT_DEPTH
    skin_tint: bool = False
    rules: tuple[str, ...] = ()
    #: Drawn variants go on faces turned at most this far (``placement.estimate_yaw``, in
    #: absolute value); None: any pose. Beyond it a sample draws another of the requested
    #: categories that fits (``placement.pose_fits``), or this one when none does.
    max_yaw: float | None = None

    def compatible(self, chosen: list[CategoryTraits]) -> bool:
        """Whether this category can join the already ``chosen`` ones on one face."""
        return not any(
            o.slot == self.slot or frozenset({self.slot, o.slot}) in EXCLUSIVE_SLOTS for o in chosen
        )


#: category name -> traits, for every built-in category.
CATEGORIES: dict[str, CategoryTraits] = {}


def register(name: str, traits: CategoryTraits) -> CategoryTraits:
    """Add (or replace) the traits of category ``name``; returns them."""
    CATEGORIES[name] = traits
    return traits


def slot_depth(slot: str) -> int:
    """The depth of the registered categories occupying ``slot`` (``DEFAULT_DEPTH`` if none)."""
    return next((t.depth for t in CATEGORIES.values() if t.slot == slot), DEFAULT_DEPTH)


def default_traits(name: str) -> CategoryTraits:
    """The registered traits of ``name``, or those of an unregistered category (own slot)."""
    return CATEGORIES.get(name) or CategoryTraits(slot=name, depth=slot_depth(name))


#: Drawn masks and scarves on faces turned past the yaw where their fit loses the far
#: outline (``placement.FIT_MAX_YAW``) reach into the hair or past the cheek and lie flat:
#: blind reviewers caught 6 of 6 drawn masks on faces turned 0.46-1.0, 4 of 9 below 0.35.
_MASK = CategoryTraits("lower_face", 0, rules=("face_warp",), max_yaw=0.6)
# eyewear: drawn frames use the eyewear rule; glasses harvested from a photo are warped like masks
_EYEWEAR = CategoryTraits("eyes", 2, rules=("eyewear", "face_warp"))
_HEADWEAR = CategoryTraits("head", 3, rules=("from_above",))
_RAISED = ("from_below", "from_edge", "from_above")  # held up from below by default

# Back to front: a mask, hair, glasses (over a mask's top edge), a cap, then held objects.
for _name, _traits in {
    "medical_mask": _MASK,
    "cloth_mask": _MASK,
    "n95_mask": _MASK,
    "scarf": _MASK,
    "hair": CategoryTraits("hair", 1),
    "sunglasses": _EYEWEAR,
    "eyeglasses": _EYEWEAR,
    "cap": _HEADWEAR,
    "hat": _HEADWEAR,
    # a headset with a boom microphone: worn over the hair (and a cap), warped like a mask
    "headset": CategoryTraits("headset", 3, rules=("face_warp",)),
    "microphone": CategoryTraits("prop", 4, rules=_RAISED),
    "book": CategoryTraits("prop", 4, rules=_HELD),
    "cup": CategoryTraits("mouth_prop", 4, rules=_RAISED),
    "food": CategoryTraits("mouth_prop", 4, rules=_RAISED),
    "hand": CategoryTraits("hand", 5, skin_tint=True, rules=_HELD),
    "phone": CategoryTraits("hand", 5, rules=_HELD),
}.items():
    register(_name, _traits)
