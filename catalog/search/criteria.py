"""What a search asks for: its keywords (words, phrases, Korean fragments, exclusions) and its filters and sort,
read from query parameters and described in words."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from catalog.facets import (
    CATEGORIES,
    CERTIFICATIONS,
    CSAP_GRADES,
    DEPLOYMENT_MODELS,
    category_label,
    certification_label,
    country_label,
    deployment_label,
    grade_label,
    percent,
)
from market.errors import Invalid
from market.formatting import number
from market.i18n import _

SORTS = ("relevance", "price", "name", "newest")
MAX_QUERY_LENGTH = 200
MAX_TERMS = 12
TRIGRAM_MIN = 3  # a fragment at least this long is held by a trigram index; a shorter one is matched with LIKE

HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
EDGE_PUNCTUATION = re.compile(r"^\W+|\W+$")
WORD = re.compile(r"\w+")
TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# Korean particles written after a word, longest first; one is dropped from a typed word when at least two
# letters stay (so 클라우드를 searches 클라우드, while 지도 stays 지도).
PARTICLES = tuple(
    sorted(
        [
            "에서부터",
            "으로부터",
            "로부터",
            "에게서",
            "한테서",
            "에서는",
            "에서도",
            "으로는",
            "으로도",
            "이라는",
            "이라고",
            "라는",
            "라고",
            "에서",
            "에게",
            "한테",
            "으로",
            "부터",
            "까지",
            "처럼",
            "보다",
            "이나",
            "이랑",
            "하고",
            "과의",
            "와의",
            "에는",
            "에도",
            "에의",
            "께서",
            "의",
            "을",
            "를",
            "이",
            "가",
            "은",
            "는",
            "에",
            "로",
            "와",
            "과",
            "도",
            "만",
            "랑",
            "께",
        ],
        key=len,
        reverse=True,
    )
)
# PostgreSQL's English stop words: dropped from queries on both databases so both answer alike.
STOPWORDS = frozenset(
    [
        "i",
        "me",
        "my",
        "myself",
        "we",
        "our",
        "ours",
        "ourselves",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "it",
        "its",
        "itself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
        "a",
        "an",
        "the",
        "and",
        "but",
        "if",
        "or",
        "because",
        "as",
        "until",
        "while",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "in",
        "out",
        "on",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "here",
        "there",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "s",
        "t",
        "can",
        "will",
        "just",
        "don",
        "should",
        "now",
    ]
)


# --- keywords -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One required or excluded piece of the query: an English word or phrase (matched by stem), or a
    fragment (Korean or any text with Hangul, matched as a substring)."""

    text: str
    fragment: bool

    @property
    def indexed_by_trigrams(self) -> bool:
        return self.fragment and len(self.text) >= TRIGRAM_MIN


@dataclass(frozen=True)
class Keywords:
    required: tuple[Term, ...] = ()
    excluded: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.required or self.excluded)


def strip_particle(word: str) -> str:
    for particle in PARTICLES:
        if word.endswith(particle) and len(word) - len(particle) >= 2:
            return word[: -len(particle)]
    return word


def parse_keywords(text: str) -> Keywords:
    required: list[Term] = []
    excluded: list[Term] = []
    for match in TOKEN.finditer(text or ""):
        minus, quoted, bare = match.groups()
        if quoted is not None:
            negative, raw, phrase = minus == "-", " ".join(quoted.split()), True
        else:
            negative = bare.startswith("-") and len(bare) > 1
            raw, phrase = (bare[1:] if negative else bare), False
        term = _term(raw.lower(), phrase=phrase, negative=negative)
        if term is None:
            continue
        target = excluded if negative else required
        if term not in target and len(required) + len(excluded) < MAX_TERMS:
            target.append(term)
    return Keywords(tuple(required), tuple(excluded))


def _term(raw: str, *, phrase: bool, negative: bool) -> Term | None:
    text = EDGE_PUNCTUATION.sub("", raw)
    if not text:
        return None
    if HANGUL.search(text):
        if not phrase and not negative:
            text = strip_particle(text)
        return Term(text, fragment=True)
    words = WORD.findall(text)
    if not words or all(word in STOPWORDS for word in words):
        return None
    return Term(text, fragment=False)


# --- criteria: the keywords and filters of one search -------------------------------------------


@dataclass(frozen=True)
class Criteria:
    q: str = ""
    category: tuple[str, ...] = ()
    deployment: tuple[str, ...] = ()
    certification: tuple[str, ...] = ()  # every chosen one is required
    grade: tuple[str, ...] = ()
    country: tuple[str, ...] = ()
    sla_bp: int | None = None  # availability at least, in basis points
    price_max: int | None = None  # lowest unit price at most, KRW
    free_trial: bool = False
    sme: bool = False
    sort: str = "relevance"

    @property
    def keywords(self) -> Keywords:
        return parse_keywords(self.q)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form for saving (a project's search) and for the API."""
        data = asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Criteria:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        for name in ("category", "deployment", "certification", "grade", "country"):
            if name in known:
                known[name] = tuple(known[name] or ())
        return cls(**known)

    def params(self, **overrides: Any) -> list[tuple[str, str]]:
        """Query-string pairs that give this search back (`overrides` replace fields first)."""
        criteria = replace(self, **overrides) if overrides else self
        pairs: list[tuple[str, str]] = []
        if criteria.q:
            pairs.append(("q", criteria.q))
        for name in ("category", "deployment", "certification", "grade", "country"):
            pairs.extend((name, value) for value in getattr(criteria, name))
        if criteria.sla_bp is not None:
            pairs.append(("sla", percent(criteria.sla_bp).removesuffix(" %")))
        if criteria.price_max is not None:
            pairs.append(("price_max", str(criteria.price_max)))
        if criteria.free_trial:
            pairs.append(("free_trial", "1"))
        if criteria.sme:
            pairs.append(("sme", "1"))
        if criteria.sort != "relevance":
            pairs.append(("sort", criteria.sort))
        return pairs

    def query_string(self, **overrides: Any) -> str:
        from urllib.parse import urlencode

        return urlencode(self.params(**overrides))

    @property
    def has_filters(self) -> bool:
        return bool(
            self.category
            or self.deployment
            or self.certification
            or self.grade
            or self.country
            or self.sla_bp is not None
            or self.price_max is not None
            or self.free_trial
            or self.sme
        )


TRUE_WORDS = {"1", "true", "on", "yes"}
FALSE_WORDS = {"", "0", "false", "off", "no"}


def parse_criteria(raw: Mapping[str, Any]) -> Criteria:
    """Criteria from query parameters (each a string or a list of strings); every problem named in one Invalid."""

    def values(name: str) -> list[str]:
        value = raw.get(name)
        if value is None:
            return []
        items = value if isinstance(value, list | tuple) else [value]
        return [str(item).strip() for item in items if str(item).strip()]

    def last(name: str) -> str:
        found = values(name)
        return found[-1] if found else ""

    errors: dict[str, str] = {}

    def choices(name: str, allowed: Iterable[str]) -> tuple[str, ...]:
        allowed = set(allowed)
        chosen = tuple(dict.fromkeys(values(name)))
        if any(value not in allowed for value in chosen):
            errors[name] = _("Choose one of the offered values.")
            return ()
        return chosen

    q = " ".join(last("q").split())
    if len(q) > MAX_QUERY_LENGTH:
        errors["q"] = _("At most %(n)s characters.", n=MAX_QUERY_LENGTH)
        q = ""
    countries = tuple(dict.fromkeys(value.upper() for value in values("country")))
    if any(not re.fullmatch(r"[A-Z]{2}", value) for value in countries):
        errors["country"] = _("Give a country as its two-letter code, such as KR.")
        countries = ()

    sla_bp: int | None = None
    if sla := last("sla").removesuffix("%").strip():
        try:
            number = Decimal(sla)
            if not number.is_finite() or not 0 <= number <= 100 or number != number.quantize(Decimal("0.01")):
                raise InvalidOperation
            sla_bp = int(number * 100)
        except InvalidOperation:
            errors["sla"] = _("Give the availability as a percentage from 0 to 100, such as 99.9.")

    price_max: int | None = None
    if price := last("price_max").replace(",", ""):
        if re.fullmatch(r"\d{1,15}", price):  # at most MONEY_MAX's fifteen digits
            price_max = int(price)
        else:
            errors["price_max"] = _("Enter a whole number of won.")

    flags = {}
    for name in ("free_trial", "sme"):
        text = last(name).lower()
        if text not in TRUE_WORDS | FALSE_WORDS:
            errors[name] = _("Choose yes or no.")
        flags[name] = text in TRUE_WORDS

    sort = last("sort") or "relevance"
    if sort not in SORTS:
        errors["sort"] = _("Choose one of the offered values.")
        sort = "relevance"

    criteria = Criteria(
        q=q,
        category=choices("category", CATEGORIES),
        deployment=choices("deployment", DEPLOYMENT_MODELS),
        certification=choices("certification", CERTIFICATIONS),
        grade=choices("grade", CSAP_GRADES),
        country=countries,
        sla_bp=sla_bp,
        price_max=price_max,
        sort=sort,
        **flags,
    )
    if errors:
        raise Invalid(_("Please correct: %(fields)s.", fields=", ".join(errors)), errors=errors)
    return criteria


def parse_page(raw: Mapping[str, Any]) -> int:
    value = raw.get("page")
    if isinstance(value, list | tuple):
        value = value[-1] if value else None
    text = str(value or "").strip()
    if not text:
        return 1
    if not re.fullmatch(r"-?\d{1,9}", text):
        raise Invalid(_("Please correct: %(fields)s.", fields="page"), errors={"page": _("Enter a whole number.")})
    return int(text)


def describe(criteria: Criteria) -> str:
    """The search in words, as saved with a project and printed on its export."""
    parts: list[str] = []
    if criteria.q:
        parts.append(_("Keywords: %(q)s", q=criteria.q))
    else:
        parts.append(_("No keywords"))

    def either(values: Iterable[str], name: Callable[[str], str]) -> str:
        return _(" or ").join(name(value) for value in values)

    if criteria.category:
        parts.append(_("category: %(v)s", v=either(criteria.category, category_label)))
    if criteria.deployment:
        parts.append(_("deployment model: %(v)s", v=either(criteria.deployment, deployment_label)))
    if criteria.certification:
        parts.append(
            _("certification: %(v)s", v=_(" and ").join(certification_label(v) for v in criteria.certification))
        )
    if criteria.grade:
        parts.append(_("CSAP grade: %(v)s", v=either(criteria.grade, grade_label)))
    if criteria.country:
        parts.append(_("data kept in: %(v)s", v=either(criteria.country, country_label)))
    if criteria.sla_bp is not None:
        parts.append(_("SLA availability at least %(v)s", v=percent(criteria.sla_bp)))
    if criteria.price_max is not None:
        parts.append(_("lowest unit price at most ₩%(v)s", v=number(criteria.price_max)))
    if criteria.free_trial:
        parts.append(_("with a free trial"))
    if criteria.sme:
        parts.append(_("from SME providers"))
    parts.append(_("sorted by %(v)s", v=sort_label(criteria.sort)))
    return "; ".join(parts)


def sort_label(sort: str) -> str:
    return {
        "relevance": _("relevance"),
        "price": _("lowest price"),
        "name": _("name"),
        "newest": _("newest first"),
    }.get(sort, sort)
