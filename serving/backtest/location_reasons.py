"""Reasons that rest on location alone: what the fairness report flags.

A reason rests on location alone when every input it reads is about where the applicant is:
it can then move a decision for someone because of where they live or apply, with nothing they
did. The inputs of a reason are those of every rule that gives its code (:data:`gnn.RULES`,
the transparent model) and of every explanation family that can render it
(:data:`serving.explanations.FAMILIES`, the model's reasons), relation groups included (a
relation is never location); a code flagged must be location-only in all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gnn import RULES
from serving.explanations import FAMILIES, family_codes

LOCATION_INPUTS: Final = frozenset({
    "dist_usual_log_km", "dist_usual_missing", "dist_home_log_km", "dist_home_missing",
    # NOTE: a count of logins, read beside the distances only to say whether the usual place
    # is known (the rules' MIN_LOGINS; the explanations fold it into the location family):
    # it qualifies a location, it does not describe behaviour there.
    "login_history_log",
})
"""Root features derived from where the applicant is: distances of the application from the
usual login place and from home, whether those are known, and how many logins the usual place
is drawn from."""


@dataclass(frozen=True)
class ReasonInputs:
    """What one reason code reads.

    Args:
        code (str): the reason code.
        features (frozenset[str]): root features, over every rule and family that gives it.
        relations (frozenset[str]): relation groups of the families that give it.
        sources (tuple[str, ...]): ``rules`` and/or ``model``.
    """

    code: str
    features: frozenset[str]
    relations: frozenset[str]
    sources: tuple[str, ...]

    @property
    def location_only(self) -> bool:
        return bool(self.features) and not self.relations and self.features <= LOCATION_INPUTS


def reason_inputs() -> dict[str, ReasonInputs]:
    """Every reason code the rules or the model's explanations give, with its inputs."""
    features: dict[str, set[str]] = {}
    relations: dict[str, set[str]] = {}
    sources: dict[str, set[str]] = {}
    for rule in RULES:
        features.setdefault(rule.code, set()).update(
            n for n in rule.needs if not n.startswith("product_"))
        sources.setdefault(rule.code, set()).add("rules")
    codes = family_codes()
    for fam in FAMILIES:
        for code in codes[fam.name]:
            features.setdefault(code, set()).update(fam.features)
            relations.setdefault(code, set()).update(fam.relations)
            sources.setdefault(code, set()).add("model")
    return {c: ReasonInputs(c, frozenset(features[c]), frozenset(relations.get(c, ())),
                            tuple(sorted(sources[c]))) for c in sorted(features)}


def location_only_reasons() -> list[ReasonInputs]:
    """The reasons that rest on location alone (module docstring), by code."""
    return [r for r in reason_inputs().values() if r.location_only]
