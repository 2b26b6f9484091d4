"""Qualification presets: MTurk QualificationRequirements built from a batch's settings."""

from __future__ import annotations

from typing import Any

from .exceptions import HitsError

# Masters has a different type id in the sandbox and on live MTurk.
MASTERS = {"sandbox": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6", "live": "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"}
PERCENT_ASSIGNMENTS_APPROVED = "000000000000000000L0"
NUMBER_HITS_APPROVED = "00000000000000000040"
LOCALE = "00000000000000000071"
COMPARATORS = {
    "LessThan",
    "LessThanOrEqualTo",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "EqualTo",
    "NotEqualTo",
    "Exists",
    "DoesNotExist",
    "In",
    "NotIn",
}
# The Clothing-ADC study: Masters, approval rate above 85%, more than 500 approved HITs.
ADC_MIN_APPROVAL_RATE = 85
ADC_MIN_APPROVED = 500


class QualificationError(HitsError, ValueError):
    """A batch's qualification settings cannot be turned into MTurk requirements."""


def masters_type_id(environment: str) -> str:
    try:
        return MASTERS[environment]
    except KeyError:
        raise QualificationError(
            f"Masters has no type id for environment {environment!r}"
        ) from None


def _check_custom(req: Any) -> dict:
    if not isinstance(req, dict) or not req.get("QualificationTypeId"):
        raise QualificationError(f"custom requirement {req!r} needs a QualificationTypeId")
    if req.get("Comparator") not in COMPARATORS:
        raise QualificationError(
            f"custom requirement comparator {req.get('Comparator')!r} is not one of "
            f"{sorted(COMPARATORS)}"
        )
    allowed = {
        "QualificationTypeId",
        "Comparator",
        "IntegerValues",
        "LocaleValues",
        "RequiredToPreview",
        "ActionsGuarded",
    }
    extra = set(req) - allowed
    if extra:
        raise QualificationError(f"custom requirement has unknown keys {sorted(extra)}")
    return dict(req)


def qualification_requirements(
    preset: str,
    params: dict,
    environment: str,
    *,
    exclusion_type_id: str = "",
) -> list[dict]:
    """The QualificationRequirements for a batch on MTurk's ``environment``.

    ``params``: ``locales`` (country codes, e.g. ["US", "CA"]), ``custom`` (requirements as
    MTurk spells them), ``allow_type_id`` / ``block_type_id`` (the qualifications that carry the
    batch's allow and block lists).
    ``exclusion_type_id`` is our soft-block qualification: its holders may not accept.
    """
    reqs: list[dict] = []
    if preset == "adc":
        reqs += [
            {"QualificationTypeId": masters_type_id(environment), "Comparator": "Exists"},
            {
                "QualificationTypeId": PERCENT_ASSIGNMENTS_APPROVED,
                "Comparator": "GreaterThan",
                "IntegerValues": [ADC_MIN_APPROVAL_RATE],
            },
            {
                "QualificationTypeId": NUMBER_HITS_APPROVED,
                "Comparator": "GreaterThan",
                "IntegerValues": [ADC_MIN_APPROVED],
            },
        ]
    elif preset not in ("none", "custom"):
        raise QualificationError(f"unknown qualification preset {preset!r}")
    locales = params.get("locales") or []
    if locales:
        if any(not isinstance(c, str) or len(c) != 2 for c in locales):
            raise QualificationError(f"locales must be two-letter country codes, not {locales!r}")
        reqs.append(
            {
                "QualificationTypeId": LOCALE,
                "Comparator": "In",
                "LocaleValues": [{"Country": c.upper()} for c in locales],
            }
        )
    reqs += [_check_custom(r) for r in params.get("custom") or []]
    if params.get("allow_type_id"):
        reqs.append({"QualificationTypeId": params["allow_type_id"], "Comparator": "Exists"})
    if params.get("block_type_id"):
        reqs.append({"QualificationTypeId": params["block_type_id"], "Comparator": "DoesNotExist"})
    if exclusion_type_id:
        reqs.append({"QualificationTypeId": exclusion_type_id, "Comparator": "DoesNotExist"})
    return reqs


def requires_masters(reqs: list[dict]) -> bool:
    """Whether requirements ask for Masters (which costs another 5% in fees)."""
    ids = set(MASTERS.values())
    return any(r["QualificationTypeId"] in ids and r["Comparator"] == "Exists" for r in reqs)
