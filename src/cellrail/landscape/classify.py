"""Classify a trial as ex vivo or in vivo cell and gene therapy with an ordered, data-driven rule set.

The rules live in ``data/modality_rules.yaml`` so that analysts can read and challenge them without reading code;
each classification names the rule that decided it, so every count in a report can be traced to a rule. A
classification the source already gives (ptjeong's ``ProductType``) is kept when the rule file lists it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cellrail.kernel.errors import InvalidInput
from cellrail.kernel.yaml_source import parse_yaml
from cellrail.landscape.model import Classification, Modality, Trial

RULES_FILE = "cellrail/landscape/data/modality_rules.yaml"
# Letters the regex engine matches case-insensitively with an ASCII letter although casefold() does not give it
# (CPython re._casefix): dotless i, dotted capital I, long s, Kelvin sign.
FOLD_TRAPS = ("\u0131", "\u0130", "\u017f", "\u212a")
NO_RULE = "none"
UPSTREAM_PREFIX = "upstream:"

TrialField = Literal["title", "interventions", "product_interventions", "intervention_types", "conditions", "target"]
# Registry intervention types that are never a cell or gene product (a transplant procedure, a device, a diet...).
# DRUG stays in: many cell products are registered as DRUG (177 of 1,073 cell-named interventions in the 2021
# classic-CSV exports under tests/data/ctgov/jesnyder-allogenic-2021).
NOT_A_PRODUCT = frozenset({"PROCEDURE", "DEVICE", "BEHAVIORAL", "RADIATION", "DIAGNOSTIC_TEST", "DIETARY_SUPPLEMENT"})
CellSource = Literal["autologous", "allogeneic"]


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return pattern


Regex = Annotated[str, AfterValidator(_regex)]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Rule(_Strict):
    id: RuleId
    fields: list[TrialField] = Field(min_length=1)
    match: list[Regex] = Field(min_length=1)
    requires: list[Regex] = []
    unless: list[Regex] = []
    rationale: str = Field(min_length=1)
    source: str = Field(min_length=1)


class ModalityRule(_Rule):
    modality: Literal[Modality.EX_VIVO, Modality.IN_VIVO]
    platform: str | None = None
    cell_source: CellSource | None = None


class PlatformRule(_Rule):
    applies_to: Literal[Modality.EX_VIVO, Modality.IN_VIVO]
    platform: str = Field(min_length=1)


class CellSourceRule(_Rule):
    cell_source: CellSource


class UpstreamValue(_Strict):
    value: str = Field(min_length=1)
    modality: Literal[Modality.EX_VIVO, Modality.IN_VIVO]
    platform: str | None = None
    cell_source: CellSource | None = None
    source: str = Field(min_length=1)


class RuleFile(_Strict):
    upstream: list[UpstreamValue] = []
    modality_rules: list[ModalityRule] = Field(min_length=1)
    platform_rules: list[PlatformRule] = []
    cell_source_rules: list[CellSourceRule] = []


def _necessary(items: Any) -> frozenset[str] | None:
    """Literal strings one of which every match of the parsed regex ``items`` must contain (casefolded), or None
    when no such set is known. Conservative: only runs of plain literals and alternatives of them count."""
    best: frozenset[str] | None = None
    run = ""

    def consider(candidate: frozenset[str] | None) -> None:
        nonlocal best
        if candidate and all(candidate) and (best is None or min(map(len, candidate)) > min(map(len, best))):
            best = candidate

    for op, argument in items:
        name = str(op)
        if name == "LITERAL":
            run += chr(argument).casefold()
            continue
        consider(frozenset([run]) if run else None)
        run = ""
        if name == "SUBPATTERN":  # a group: mandatory where it stands
            consider(_necessary(argument[3]))
        elif name == "BRANCH":
            alternatives = [_necessary(alternative) for alternative in argument[1]]
            if all(a is not None for a in alternatives):
                consider(frozenset().union(*(a for a in alternatives if a is not None)))
    consider(frozenset([run]) if run else None)
    return best


def _prefilter(patterns: list[str]) -> frozenset[str] | None:
    """Substrings one of which the casefolded text must contain for any of ``patterns`` to match (None: always
    search). Derived from the regex parse tree of CPython's private ``re._parser``: if it is missing or its tree
    has another shape (another Python), there is simply no prefilter (a test checks every shipped rule has one)."""
    try:
        from re import _parser  # type: ignore[attr-defined]  # CPython's own regex parser (3.11+)

        needed = [_necessary(_parser.parse(p, re.IGNORECASE)) for p in patterns]
    except (ImportError, AttributeError, TypeError, ValueError, IndexError, re.error):
        return None
    if any(n is None for n in needed):
        return None
    return frozenset().union(*(n for n in needed if n is not None))


@dataclass(frozen=True)
class _Compiled:
    """A rule's regexes merged into one alternation (one search per rule), behind a literal prefilter that skips
    the search when the text cannot match (most rules, for most trials)."""

    fields: tuple[TrialField, ...]
    match: tuple[re.Pattern[str], ...]  # searched one by one: each keeps the regex engine's literal-prefix scan
    requires: tuple[re.Pattern[str], ...]
    unless: re.Pattern[str] | None
    needs: frozenset[str] | None
    requires_needs: tuple[frozenset[str], ...] = ()  # one literal of each set must be present (from `requires`)

    def hits(self, texts: _Texts) -> bool:
        # The literal prefilter compares casefolded text, but the regex engine's case-insensitive matching also
        # equates a few non-ASCII letters with ASCII ones (dotless 'ı' and 'İ' ~ 'i', 'ſ' ~ 's', Kelvin sign ~ 'k')
        # which casefold() does not map to them: a text holding one goes straight to the regexes.
        if (self.needs is not None or self.requires_needs) and texts.prefilterable(self.fields):
            folded = texts.joined(self.fields, folded=True)
            if self.needs is not None and not any(n in folded for n in self.needs):
                return False
            if not all(any(n in folded for n in needs) for needs in self.requires_needs):
                return False
        text = texts.joined(self.fields)
        return (
            any(p.search(text) is not None for p in self.match)
            and all(r.search(text) is not None for r in self.requires)
            and (self.unless is None or self.unless.search(text) is None)
        )


def _alternation(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def _compile(rule: _Rule) -> _Compiled:
    unless = _alternation(rule.unless) if rule.unless else None
    requires = tuple(re.compile(p, re.IGNORECASE) for p in rule.requires)
    requires_needs = tuple(n for n in (_prefilter([p]) for p in rule.requires) if n is not None)
    return _Compiled(
        tuple(rule.fields),
        tuple(re.compile(p, re.IGNORECASE) for p in rule.match),
        requires,
        unless,
        _prefilter(rule.match),
        requires_needs,
    )


@dataclass(frozen=True)
class RuleSet:
    """A validated rule file with its regexes compiled once."""

    definition: RuleFile
    file: str
    upstream: dict[str, UpstreamValue]
    modality: tuple[tuple[ModalityRule, _Compiled], ...]
    platform: tuple[tuple[PlatformRule, _Compiled], ...]
    cell_source: tuple[tuple[CellSourceRule, _Compiled], ...]


def load_rules(text: str, file: str) -> RuleSet:
    """Parse and validate a rule file; every problem names the file, line and field (InvalidInput)."""
    document = parse_yaml(text, file)
    definition = document.validate(RuleFile)
    problems = []
    seen: set[str] = set()
    for group in ("modality_rules", "platform_rules", "cell_source_rules"):
        for index, rule in enumerate(getattr(definition, group)):
            if rule.id in seen:
                problems.append(document.problem((group, index, "id"), f"duplicate rule id '{rule.id}'"))
            seen.add(rule.id)
    values = [u.value for u in definition.upstream]
    for index, value in enumerate(values):
        if value in values[:index]:
            problems.append(document.problem(("upstream", index, "value"), f"duplicate upstream value '{value}'"))
    if problems:
        raise InvalidInput(problems)
    return RuleSet(
        definition=definition,
        file=file,
        upstream={u.value: u for u in definition.upstream},
        modality=tuple((r, _compile(r)) for r in definition.modality_rules),
        platform=tuple((r, _compile(r)) for r in definition.platform_rules),
        cell_source=tuple((r, _compile(r)) for r in definition.cell_source_rules),
    )


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The rule set shipped with CellRail (read once per process)."""
    text = resources.files("cellrail.landscape").joinpath("data/modality_rules.yaml").read_text(encoding="utf-8")
    return load_rules(text, RULES_FILE)


class _Texts:
    """The trial's fields as text, each joined field combination built once per classification."""

    def __init__(self, trial: Trial) -> None:
        self.trial = trial
        self._joined: dict[tuple[tuple[TrialField, ...], bool], str] = {}

    def field(self, name: TrialField) -> str:
        t = self.trial
        if name == "title":
            return t.title or ""
        if name == "interventions":
            return "\n".join(i.name or "" for i in t.interventions)
        if name == "product_interventions":
            return "\n".join(i.name or "" for i in t.interventions if i.type.upper() not in NOT_A_PRODUCT)
        if name == "intervention_types":
            return "\n".join(i.type or "" for i in t.interventions)
        if name == "conditions":
            return "\n".join(c or "" for c in t.conditions)
        return t.target or ""

    def prefilterable(self, fields: tuple[TrialField, ...]) -> bool:
        text = self.joined(fields)
        return text.isascii() or all(letter not in text for letter in FOLD_TRAPS)

    def joined(self, fields: tuple[TrialField, ...], folded: bool = False) -> str:
        key = (fields, folded)
        text = self._joined.get(key)
        if text is None:
            text = "\n".join(self.field(f) for f in fields)
            self._joined[key] = text = text.casefold() if folded else text
        return text


def classify(trial: Trial, rules: RuleSet | None = None) -> Classification:
    """The modality of ``trial``: the source's own classification when the rule file keeps it, else the first
    matching modality rule; platform and cell source are filled in by their rules when still open."""
    rules = rules if rules is not None else default_rules()
    texts = _Texts(trial)
    modality: Modality = Modality.UNCLASSIFIED
    platform: str | None = None
    cell_source: str | None = None
    rule_id = NO_RULE
    upstream = rules.upstream.get((trial.upstream_product_type or "").strip())
    if upstream is not None:
        modality, platform, cell_source = upstream.modality, upstream.platform, upstream.cell_source
        rule_id = UPSTREAM_PREFIX + upstream.value
    else:
        for rule, compiled in rules.modality:
            if compiled.hits(texts):
                modality, platform, cell_source, rule_id = rule.modality, rule.platform, rule.cell_source, rule.id
                break
    if modality == Modality.UNCLASSIFIED:
        return Classification(Modality.UNCLASSIFIED, None, None, NO_RULE)
    if platform is None:
        platform = next((r.platform for r, c in rules.platform if r.applies_to == modality and c.hits(texts)), None)
    if cell_source is None and modality == Modality.EX_VIVO:
        cell_source = next((r.cell_source for r, c in rules.cell_source if c.hits(texts)), None)
    return Classification(modality, platform, cell_source, rule_id)
