"""Searching the listed services: keywords, filters with facet counts, sorting, paging, highlighting.

This module is the one place where SQLite and PostgreSQL differ (see 0003_catalog_search):

- English words are stemmed: FTS5's porter tokenizer (table `catalog_search_words`, ranked with bm25) on
  SQLite; a weighted tsvector (`search_document`) on PostgreSQL, ranked by the field each word stands in with
  ts_rank_cd's weights, and searched through a narrow copy of what counting and sorting read
  (`catalog_search_rows`, 0006_search_speed: the stemmed words as hashes, GIN-indexed), with the total and
  facet counts capped and relevance ranked over a bounded set (see "PostgreSQL: the narrow search table").
- Korean is matched as Koreans type it: by substring, so 클라우드 finds 클라우드를 and 공공클라우드, and a
  particle typed after a word (클라우드를) is dropped before matching. FTS5's trigram tokenizer on SQLite
  (table `catalog_search_trigrams`); on PostgreSQL the words of the catalogue containing the fragment, found
  in a trigram-indexed vocabulary (`catalog_search_vocabulary`), then looked up like English words, and a
  quoted Korean phrase by pg_trgm over the text. Fragments shorter than three letters, which no trigram index
  holds, are matched with LIKE.
- Field weights: name above summary above description, features, benefits and provider name.

Every word is required; "quoted phrases" match as phrases; -word excludes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.facets import (
    CATEGORIES, CERTIFICATIONS, CSAP_GRADES, DEPLOYMENT_MODELS, PRICE_THRESHOLDS, SLA_THRESHOLDS_BP,
    category_label, certification_label, country_label, country_labels, deployment_label, grade_label, percent, unit_label,
)
from catalog.models import ListedService
from market.errors import Invalid
from market.formatting import number
from market.i18n import _
from market.web import PAGE_SIZE, Page, check_page

LISTED = ListedService.__table__
SORTS = ("relevance", "price", "name", "newest")
MAX_QUERY_LENGTH = 200
MAX_TERMS = 12

# Weights of name, summary, body and provider name, in that order (bm25 on SQLite; PostgreSQL's tsvector
# carries A, B, C and C, which ts_rank_cd weighs 1.0, 0.4, 0.2 and 0.2).
BM25_WEIGHTS = (10.0, 4.0, 2.0, 2.0)
TRIGRAM_MIN = 3
# The expression PostgreSQL's trigram index is built on (0003_catalog_search): queries must repeat it exactly.
PG_TEXT = (
    "(catalog_listed_service.name || ' ' || catalog_listed_service.summary || ' ' || "
    "catalog_listed_service.body || ' ' || catalog_listed_service.provider_name)"
)
PG_DOCUMENT = "catalog_listed_service.search_document"

HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
EDGE_PUNCTUATION = re.compile(r"^\W+|\W+$")
WORD = re.compile(r"\w+")
TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# Korean particles written after a word, longest first; one is dropped from a typed word when at least two
# letters stay (so 클라우드를 searches 클라우드, while 지도 stays 지도).
PARTICLES = tuple(sorted(
    """에서부터 으로부터 로부터 에게서 한테서 에서는 에서도 으로는 으로도 이라는 이라고 라는 라고 에서 에게 한테
    으로 부터 까지 처럼 보다 이나 이랑 하고 과의 와의 에는 에도 에의 께서 의 을 를 이 가 은 는 에 로 와 과 도 만 랑 께""".split(),
    key=len, reverse=True,
))
# PostgreSQL's English stop words: dropped from queries on both databases so both answer alike.
STOPWORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
    herself it its itself they them their theirs themselves what which who whom this that these those am is are
    was were be been being have has had having do does did doing a an the and but if or because as until while
    of at by for with about against between into through during before after above below to from up down in out
    on off over under again further then once here there when where why how all any both each few more most
    other some such no nor not only own same so than too very s t can will just don should now""".split()
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
            self.category or self.deployment or self.certification or self.grade or self.country
            or self.sla_bp is not None or self.price_max is not None or self.free_trial or self.sme
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
        parts.append(_("certification: %(v)s", v=_(" and ").join(certification_label(v) for v in criteria.certification)))
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
        "relevance": _("relevance"), "price": _("lowest price"), "name": _("name"), "newest": _("newest first"),
    }.get(sort, sort)


# --- the two databases ----------------------------------------------------------------------------

@dataclass
class Match:
    """What the keywords add to a query: the FROM clause, the conditions, and the relevance (higher is better)."""

    from_: Any
    where: list[Any]
    relevance: Any


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _like_pattern(text: str) -> str:
    return "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def _sqlite_fts(table: str, terms: list[Term], alias: str) -> Any:
    fts = sa.table(table, sa.column("rowid"))
    expression = " AND ".join(_fts_string(term.text) for term in terms)
    return (
        sa.select(fts.c.rowid.label("service_id"), sa.func.bm25(sa.literal_column(table), *BM25_WEIGHTS).label("score"))
        .select_from(fts)
        .where(sa.literal_column(table).op("MATCH")(expression))
        .subquery(alias)
    )


def _sqlite_field_bonus(table: str, terms: list[Term]) -> Any:
    """bm25 weighs a term by its rarity, so a word most services contain ("cloud") ranks nothing; the name and
    summary holding every term add the weights of those fields, as PostgreSQL's weighted tsvector does."""
    fts = sa.table(table, sa.column("rowid"))
    expression = "(" + " AND ".join(_fts_string(term.text) for term in terms) + ")"
    bonus: Any = sa.literal(0.0)
    for column, weight in (("name", BM25_WEIGHTS[0]), ("summary", BM25_WEIGHTS[1])):
        ids = sa.select(fts.c.rowid).select_from(fts).where(sa.literal_column(table).op("MATCH")(f"{{{column}}} : {expression}"))
        bonus = bonus + sa.case((LISTED.c.service_id.in_(ids), weight), else_=0.0)
    return bonus


def _sqlite_excluding(table: str, term: Term) -> Any:
    fts = sa.table(table, sa.column("rowid"))
    ids = sa.select(fts.c.rowid).select_from(fts).where(sa.literal_column(table).op("MATCH")(_fts_string(term.text)))
    return LISTED.c.service_id.not_in(ids)


def _sqlite_contains(term: Term) -> Any:
    pattern = _like_pattern(term.text)
    return sa.or_(*(LISTED.c[name].like(pattern, escape="!") for name in ("name", "summary", "body", "provider_name")))


def _sqlite_match(keywords: Keywords) -> Match:
    from_: Any = LISTED
    where: list[Any] = []
    relevance: Any = sa.literal(0.0)
    words = [term for term in keywords.required if not term.fragment]
    trigrams = [term for term in keywords.required if term.indexed_by_trigrams]
    if words:
        found = _sqlite_fts("catalog_search_words", words, "words")
        from_ = from_.join(found, found.c.service_id == LISTED.c.service_id)
        relevance = relevance - found.c.score + _sqlite_field_bonus("catalog_search_words", words)
    if trigrams:
        found = _sqlite_fts("catalog_search_trigrams", trigrams, "trigrams")
        from_ = from_.join(found, found.c.service_id == LISTED.c.service_id)
        relevance = relevance - found.c.score + _sqlite_field_bonus("catalog_search_trigrams", trigrams)
    where.extend(_sqlite_contains(term) for term in keywords.required if term.fragment and not term.indexed_by_trigrams)
    for term in keywords.excluded:
        if term.indexed_by_trigrams:
            where.append(_sqlite_excluding("catalog_search_trigrams", term))
        elif term.fragment:
            where.append(sa.not_(_sqlite_contains(term)))
        else:
            where.append(_sqlite_excluding("catalog_search_words", term))
    return Match(from_, where, relevance)


def _pg_words(term: Term) -> Any:
    return sa.func.phraseto_tsquery(sa.literal_column("'english'::regconfig"), term.text)


def _pg_contains(text: Any, term: Term) -> Any:
    """Substring match (pg_trgm answers both): LIKE when the fragment has no letter case to ignore (Hangul,
    digits), for ILIKE folds the case of every character of every candidate and costs much more."""
    pattern = _like_pattern(term.text)
    if term.text == term.text.upper():
        return text.like(pattern, escape="!")
    return text.ilike(pattern, escape="!")


def _pg_in_field(term: Term, weight: str) -> Any:
    """The term stands in the field of that weight (A name, B summary): a lookup in the stored tsvector."""
    pieces = " & ".join(f"'{piece}':{weight}" for piece in WORD.findall(term.text))
    return sa.literal_column(PG_DOCUMENT).op("@@")(sa.func.to_tsquery(sa.literal_column("'english'::regconfig"), pieces))


def _pg_field_score(term: Term) -> Any:
    """1.0 when the term is in the name, 0.4 in the summary, 0.2 elsewhere (ts_rank_cd's weights for A, B, C).

    Ranking by the best field rather than with ts_rank_cd keeps a very common word ("cloud", most of the
    catalogue) cheap: ts_rank_cd would rank every matching service to find the first twenty."""
    if term.fragment:
        return sa.case((_pg_contains(LISTED.c.name, term), 1.0), (_pg_contains(LISTED.c.summary, term), 0.4), else_=0.2)
    return sa.case((_pg_in_field(term, "A"), 1.0), (_pg_in_field(term, "B"), 0.4), else_=0.2)


def _pg_match(keywords: Keywords) -> Match:
    document = sa.literal_column(PG_DOCUMENT)
    text = sa.literal_column(PG_TEXT)
    where: list[Any] = []
    words = [term for term in keywords.required if not term.fragment]
    if words:
        query = _pg_words(words[0])
        for term in words[1:]:
            query = query.op("&&")(_pg_words(term))
        where.append(document.op("@@")(query))
    for term in keywords.required:
        if term.fragment:
            where.append(_pg_contains(text, term))
    for term in keywords.excluded:
        if term.fragment:
            where.append(sa.not_(_pg_contains(text, term)))
        else:
            where.append(sa.not_(document.op("@@")(_pg_words(term))))
    relevance: Any = sa.literal(0.0)
    for term in keywords.required:
        if term.fragment or WORD.search(term.text):
            relevance = relevance + _pg_field_score(term)
    return Match(LISTED, where, relevance)


def match(session: AsyncSession, keywords: Keywords) -> Match:
    if session.bind.dialect.name == "postgresql":
        return _pg_match(keywords)
    return _sqlite_match(keywords)


# --- filters and facets ---------------------------------------------------------------------------

def _filters(criteria: Criteria, source: Any = LISTED) -> dict[str, Any]:
    """One condition per active filter group, keyed by the group's parameter name, over `source`'s columns."""
    c = source.c
    conditions: dict[str, Any] = {}
    if criteria.category:
        conditions["category"] = c.category.in_(criteria.category)
    if criteria.deployment:
        conditions["deployment"] = c.deployment_model.in_(criteria.deployment)
    if criteria.certification:
        conditions["certification"] = sa.and_(*(_has_scheme(value, source) for value in criteria.certification))
    if criteria.grade:
        conditions["grade"] = c.csap_grade.in_(criteria.grade)
    if criteria.country:
        conditions["country"] = c.data_country.in_(criteria.country)
    if criteria.sla_bp is not None:
        conditions["sla"] = c.sla_availability_bp >= criteria.sla_bp
    if criteria.price_max is not None:
        conditions["price_max"] = c.min_price <= criteria.price_max
    if criteria.free_trial:
        conditions["free_trial"] = c.free_trial.is_(True)
    if criteria.sme:
        conditions["sme"] = c.is_sme.is_(True)
    return conditions


def _has_scheme(scheme: str, source: Any = LISTED) -> Any:
    return source.c.certification_schemes.like(f"%|{scheme}|%")


def _all(conditions: Iterable[Any]) -> Any:
    conditions = list(conditions)
    return sa.and_(*conditions) if conditions else sa.true()


@dataclass(frozen=True)
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


@dataclass(frozen=True)
class Facet:
    name: str  # the query parameter
    label: str
    kind: str  # "any" (tick several: any of them), "all" (tick several: all of them), "at_least", "at_most", "flag"
    values: list[FacetValue] = field(default_factory=list)


def _facet_specs() -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(parameter, label, kind, [(value, label)]) for every facet but the data locations."""
    return [
        ("category", _("Category"), "any", [(value, category_label(value)) for value in CATEGORIES]),
        ("deployment", _("Deployment model"), "any", [(value, deployment_label(value)) for value in DEPLOYMENT_MODELS]),
        ("certification", _("Certification"), "all", [(value, certification_label(value)) for value in CERTIFICATIONS]),
        ("grade", _("CSAP grade"), "any", [(value, grade_label(value)) for value in CSAP_GRADES]),
        ("sla", _("SLA availability"), "at_least",
         [(percent(bp).removesuffix(" %"), _("at least %(v)s", v=percent(bp))) for bp in SLA_THRESHOLDS_BP]),
        ("price_max", _("Lowest unit price"), "at_most",
         [(str(price), _("at most ₩%(v)s", v=number(price))) for price in PRICE_THRESHOLDS]),
        ("free_trial", _("Free trial"), "flag", [("1", _("Offers a free trial"))]),
        ("sme", _("Provider"), "flag", [("1", _("Provider is an SME"))]),
    ]


def _selected(criteria: Criteria, name: str, value: str) -> bool:
    current = {
        "category": criteria.category, "deployment": criteria.deployment, "certification": criteria.certification,
        "grade": criteria.grade, "country": criteria.country,
        "sla": (percent(criteria.sla_bp).removesuffix(" %"),) if criteria.sla_bp is not None else (),
        "price_max": (str(criteria.price_max),) if criteria.price_max is not None else (),
        "free_trial": ("1",) if criteria.free_trial else (), "sme": ("1",) if criteria.sme else (),
    }[name]
    return value in current


FACET_COLUMNS = (
    "category", "deployment_model", "certification_schemes", "csap_grade", "data_country", "sla_availability_bp",
    "min_price", "free_trial", "is_sme",
)
GROUPED_FACETS = {  # facet -> the column its counts are grouped by
    "category": "category", "deployment": "deployment_model", "certification": "certification_schemes",
    "grade": "csap_grade", "country": "data_country", "sla": "sla_availability_bp",
}


def _price_bucket(column: Any) -> Any:
    """The smallest price threshold a price is within ("" above them all), so counts can be summed per threshold."""
    return sa.case(*((column <= price, str(price)) for price in PRICE_THRESHOLDS), else_="")


def _statement(criteria: Criteria, found: Match, number: int, size: int, with_facets: bool) -> Any:
    """One statement that reads the matching services once (a materialised CTE) and answers, as rows of
    (part, key, count, service_id, relevance): the total, every facet's counts grouped by value, and the
    page of results. A facet's counts apply every active filter but its own (certification, whose ticked
    values must all hold, applies its own too)."""
    # Each active filter is evaluated once per service, into a column the counts combine.
    conditions = _filters(criteria)
    columns = [LISTED.c.service_id, LISTED.c.tiebreak, LISTED.c.name, LISTED.c.listed_at,
               *(LISTED.c[name] for name in FACET_COLUMNS), found.relevance.label("relevance"),
               *(condition.label(f"ok_{name}") for name, condition in conditions.items())]
    matched = (
        sa.select(*columns).select_from(found.from_).where(*found.where).cte("matched").prefix_with("MATERIALIZED")
    )
    filters = {name: matched.c[f"ok_{name}"] for name in conditions}
    everything = _all(filters.values())

    def others(name: str) -> Any:
        return _all(condition for key, condition in filters.items() if key != name or name == "certification")

    def part(name: str, key: Any, condition: Any) -> Any:
        return sa.select(
            sa.literal(name).label("part"), sa.cast(key, sa.String).label("key"), sa.func.count().filter(condition).label("n"),
            sa.cast(sa.null(), sa.Integer).label("service_id"), sa.cast(sa.null(), sa.Float).label("relevance"),
        ).select_from(matched)

    parts = [part("total", sa.null(), everything)]
    if with_facets:
        for name, column in GROUPED_FACETS.items():
            parts.append(part(name, matched.c[column], others(name)).group_by(matched.c[column]))
        bucket = _price_bucket(matched.c.min_price)
        parts.append(part("price_max", bucket, others("price_max")).group_by(bucket))
        parts.append(part("free_trial", sa.literal("1"), sa.and_(others("free_trial"), matched.c.free_trial.is_(True))))
        parts.append(part("sme", sa.literal("1"), sa.and_(others("sme"), matched.c.is_sme.is_(True))))
    order = _order(criteria, matched.c)
    page = (
        sa.select(matched.c.service_id, matched.c.relevance, sa.func.row_number().over(order_by=order).label("position"))
        .where(everything).order_by(*order).limit(size).offset((number - 1) * size).subquery("page")
    )
    parts.append(sa.select(
        sa.literal("hit"), sa.cast(sa.null(), sa.String), page.c.position, page.c.service_id, sa.cast(page.c.relevance, sa.Float),
    ))
    return sa.union_all(*parts)


def _facets(criteria: Criteria, counts: dict[str, dict[str, int]]) -> list[Facet]:
    """Facet values and their counts from the grouped counts: thresholds and certifications are summed here."""
    facets: list[Facet] = []
    for name, title, kind, values in _facet_specs():
        grouped = counts.get(name, {})
        facet = Facet(name, title, kind)
        for value, text in values:
            if name == "certification":
                number = sum(n for combination, n in grouped.items() if f"|{value}|" in combination)
            elif name == "sla":
                bp = int(Decimal(value) * 100)
                number = sum(n for key, n in grouped.items() if int(key) >= bp)
            elif name == "price_max":
                number = sum(n for key, n in grouped.items() if key and int(key) <= int(value))
            else:
                number = grouped.get(value, 0)
            facet.values.append(FacetValue(value, text, number, _selected(criteria, name, value)))
        facets.append(facet)
    counted = {key: n for key, n in counts.get("country", {}).items() if key and n}
    for value in criteria.country:
        counted.setdefault(value, 0)
    labels = country_labels()
    facets.insert(4, Facet("country", _("Data location"), "any", [
        FacetValue(code, labels.get(code, code), counted[code], code in criteria.country)
        for code in sorted(counted, key=lambda code: (code != "KR", labels.get(code, code)))
    ]))
    return facets


# --- results --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    service_id: int
    version_id: int
    provider_id: int
    provider_name: str
    name: str
    summary: str
    category: str
    deployment_model: str
    certifications: list[str]
    csap_grade: str
    data_country: str
    sla_availability_bp: int
    min_price: int
    min_price_unit: str
    free_trial: bool
    is_sme: bool
    listed_at: datetime
    relevance: float
    name_html: Markup = Markup("")
    summary_html: Markup = Markup("")
    snippet_html: Markup = Markup("")

    @property
    def url(self) -> str:
        return f"/services/{self.service_id}"

    @property
    def category_label(self) -> str:
        return category_label(self.category)

    @property
    def deployment_label(self) -> str:
        return deployment_label(self.deployment_model)

    @property
    def certification_labels(self) -> list[str]:
        return [certification_label(scheme) for scheme in self.certifications]

    @property
    def unit_label(self) -> str:
        return unit_label(self.min_price_unit)

    @property
    def sla_label(self) -> str:
        return percent(self.sla_availability_bp) if self.sla_availability_bp else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.service_id,
            "url": self.url,
            "name": self.name,
            "summary": self.summary,
            "provider": {"id": self.provider_id, "name": self.provider_name, "sme": self.is_sme},
            "category": self.category,
            "deployment_model": self.deployment_model,
            "certifications": self.certifications,
            "csap_grade": self.csap_grade or None,
            "data_country": self.data_country,
            "sla_availability_bp": self.sla_availability_bp,
            "min_price": self.min_price,
            "min_price_unit": self.min_price_unit,
            "free_trial": self.free_trial,
            "listed_at": self.listed_at.isoformat(),
            "relevance": round(self.relevance, 6),
            "highlight": {"name": str(self.name_html), "summary": str(self.summary_html), "snippet": str(self.snippet_html)},
        }


@dataclass(frozen=True)
class Results:
    """One page of a search; frozen, as are its hits and facets, for one is served to many (`catalog.search_cache`)."""

    criteria: Criteria
    hits: list[Hit]
    total: int
    page: Page
    facets: list[Facet]
    total_capped: bool = False  # more services match than `total` (TOTAL_CAP) says
    facets_exact: bool = True  # False: counted over the first FACET_SAMPLE services only, so each is "at least"

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.criteria.to_dict(),
            "total": self.total,
            "total_capped": self.total_capped,
            "facets_exact": self.facets_exact,
            "page": self.page.number,
            "page_size": self.page.size,
            "page_count": self.page.count,
            "results": [hit.to_json() for hit in self.hits],
            "facets": [
                {"name": facet.name, "label": facet.label, "kind": facet.kind,
                 "values": [{"value": value.value, "label": value.label, "count": value.count, "selected": value.selected}
                            for value in facet.values]}
                for facet in self.facets
            ],
        }


def _order(criteria: Criteria, c: Any) -> list[Any]:
    if criteria.sort == "price":
        return [c.min_price.asc(), c.tiebreak.asc(), c.service_id.asc()]
    if criteria.sort == "name":
        return [c.name.asc(), c.service_id.asc()]
    if criteria.sort == "newest":
        return [c.listed_at.desc(), c.service_id.desc()]
    return [c.relevance.desc(), c.tiebreak.asc(), c.service_id.asc()]


async def search(
    session: AsyncSession, criteria: Criteria, page: int = 1, *, size: int = PAGE_SIZE, with_facets: bool = True
) -> Results:
    """One page of listed services matching `criteria`; a page beyond the last raises NotFound."""
    from market.web import page_number

    number = page_number(page)
    keywords = criteria.keywords
    if session.bind.dialect.name == "postgresql":
        if not any(term.fragment and " " in term.text for term in (*keywords.required, *keywords.excluded)):
            return await _pg_search(session, criteria, number, size, with_facets)
        # A quoted Korean phrase is a substring of the long text: matched in catalog_listed_service (pg_trgm).
        await session.execute(sa.text(
            "SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true)"
        ))
    rows = (await session.execute(_statement(criteria, match(session, keywords), number, size, with_facets))).all()
    counts: dict[str, dict[str, int]] = {}
    ranked: list[tuple[int, int, float]] = []
    for part, key, n, service_id, relevance in rows:
        if part == "hit":
            ranked.append((n, service_id, relevance or 0.0))
        else:
            counts.setdefault(part, {})[key] = (counts.get(part, {}).get(key) or 0) + int(n or 0)
    total = counts["total"][None]
    capped = total > TOTAL_CAP
    total = min(total, TOTAL_CAP)
    current = check_page(Page(number=number, size=size, total=total))
    hits = await _hits(session, keywords, sorted(ranked))
    return Results(criteria, hits, total, current, _facets(criteria, counts) if with_facets else [], total_capped=capped)


async def _hits(session: AsyncSession, keywords: Keywords, ranked: list[tuple[int, int, float]]) -> list[Hit]:
    """The services of a page, in the order of `ranked` ((position, service id, relevance)), highlighted."""
    found: dict[int, Any] = {}
    if ranked:
        ids = [service_id for _position, service_id, _relevance in ranked]
        found = {row["service_id"]: row for row in (await session.execute(
            sa.select(LISTED).where(LISTED.c.service_id.in_(ids))
        )).mappings().all()}
    marker = Highlighter(keywords)
    return [_hit(found[service_id], relevance, marker) for _position, service_id, relevance in ranked if service_id in found]


def _hit(row: Mapping[str, Any], relevance: float, marker: Highlighter) -> Hit:
    return Hit(
        service_id=row["service_id"], version_id=row["version_id"], provider_id=row["provider_id"],
        provider_name=row["provider_name"], name=row["name"], summary=row["summary"], category=row["category"],
        deployment_model=row["deployment_model"],
        certifications=[scheme for scheme in row["certification_schemes"].split("|") if scheme],
        csap_grade=row["csap_grade"], data_country=row["data_country"],
        sla_availability_bp=row["sla_availability_bp"], min_price=row["min_price"],
        min_price_unit=row["min_price_unit"], free_trial=bool(row["free_trial"]), is_sme=bool(row["is_sme"]),
        listed_at=row["listed_at"], relevance=float(relevance),
        name_html=marker.mark(row["name"]), summary_html=marker.mark(row["summary"]),
        snippet_html=marker.snippet(row["body"]),
    )


# --- PostgreSQL: the narrow search table (0006_search_speed) ------------------------------------------
#
# The search reads `catalog_search_rows` (filter columns, sort keys, the stemmed words as 64-bit hashes)
# instead of the wide `catalog_listed_service`, and bounds the work of a search matching most of the
# catalogue: the total is counted exactly up to TOTAL_CAP, facets over the first FACET_SAMPLE services that
# fail at most one filter, and relevance ranks a prefix of the matches in tiebreak order when that prefix
# provably holds the page (see `_pg_page`). A Korean or partial word becomes the catalogue's words containing it
# (`catalog_search_vocabulary`), found in the same hashes.

TOTAL_CAP = 10_000
FACET_SAMPLE = 2 * TOTAL_CAP  # enough, in most searches, to see more than TOTAL_CAP services passing every filter
# A search the planner expects to match more than FACET_SAMPLE_ABOVE services counts its facets over fewer: the
# counts are "at least" either way, and its total is counted (up to TOTAL_CAP) by a cheaper query.
FACET_SAMPLE_ABOVE = 2 * FACET_SAMPLE
FACET_SAMPLE_COMMON = 5_000
RANK_PREFIX = 1_000  # services ranked before the whole set is ranked (see `_pg_page`)
RANK_FEW = 200  # at most this many matches with a term in their name or summary: ranked on their own
ROWS = "catalog_search_rows"
FACET_FILTERS = {  # facet -> the filter that it leaves out of its own counts (certification keeps its own)
    "category": "category", "deployment": "deployment", "grade": "grade", "country": "country", "sla": "sla",
    "price_max": "price_max", "free_trial": "free_trial", "sme": "sme", "certification": None,
}


class _Sql:
    """Collects bound parameters while a statement is written as text."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


@dataclass
class _PgWords:
    """A word or phrase of the query: the hashes of its lexemes in the whole text, the name and the summary."""

    term: Term
    words: list[int]
    name: list[int]
    summary: list[int]

    @property
    def phrase(self) -> bool:
        return len(self.words) > 1 and not self.term.fragment

    @property
    def operator(self) -> str:
        """Every lexeme of a word or phrase is required; any word containing a fragment will do."""
        return "&&" if self.term.fragment else "@>"


@dataclass
class _PgQuery:
    """The FROM clause and keyword conditions over `r` (catalog_search_rows), and the relevance."""

    from_: str
    where: list[str]
    relevance: str
    best: float  # the highest relevance a service can reach: every term in its name
    lowest: Decimal  # the lowest: every term elsewhere than in the name and summary (exact, as PostgreSQL sums it)
    heading: list[int]  # the name and summary hashes of every required word
    names: list[int]  # the name hashes alone


async def _pg_prepare(session: AsyncSession, keywords: Keywords) -> list[_PgWords]:
    """Sets the transaction up for the search and stems and hashes the query's words, in one round trip."""
    sql = _Sql()
    columns = [
        # Compiling these short queries to machine code costs more than it saves; parameters are planned with
        # their values (a very common word and a rare one need different plans).
        "set_config('jit', 'off', true)", "set_config('work_mem', '32MB', true)",
        "set_config('plan_cache_mode', 'force_custom_plan', true)",
    ]
    terms = [*keywords.required, *keywords.excluded]
    for term in terms:
        if term.fragment:
            # the words of the catalogue containing the fragment (particles and longer words included)
            pattern = sql.bind(_like_pattern(term.text.lower()))
            found = f"SELECT lexeme FROM catalog_search_vocabulary WHERE lexeme LIKE {pattern} ESCAPE '!'"
            columns.extend(f"ARRAY(SELECT hashtextextended(lexeme, {seed}) FROM ({found}) AS v)" for seed in (0, 1, 2))
            continue
        vector = f"to_tsvector('english'::regconfig, translate({sql.bind(term.text)}, '/', ' '))"
        columns.extend(f"catalog_search_hashes({vector}, {seed})" for seed in (0, 1, 2))
    row = (await session.execute(sa.text("SELECT " + ", ".join(columns)), sql.params)).one()
    hashes = list(row[len(row) - 3 * len(terms):])
    return [_PgWords(term, *hashes[index * 3:index * 3 + 3]) for index, term in enumerate(terms)]


def _pg_phrase(sql: _Sql, term: Term) -> str:
    return (
        "EXISTS (SELECT 1 FROM catalog_listed_service WHERE catalog_listed_service.service_id = r.service_id AND "
        f"{PG_DOCUMENT} @@ phraseto_tsquery('english'::regconfig, translate({sql.bind(term.text)}, '/', ' ')))"
    )


def _pg_query(sql: _Sql, keywords: Keywords, words: list[_PgWords]) -> _PgQuery:
    """Words, phrases and fragments (a quoted Korean phrase reads the long text instead: `_pg_match`)."""
    where: list[str] = []
    relevance: list[str] = []
    stemmed = {item.term: item for item in words}
    for term in keywords.required:
        item = stemmed[term]
        if not item.words:  # nothing but punctuation or stop words after stemming: matches nothing
            where.append("false")
            continue
        where.append(f"r.words {item.operator} {sql.bind(item.words)}")
        if item.phrase:
            where.append(_pg_phrase(sql, term))
        relevance.append(
            f"CASE WHEN r.heading {item.operator} {sql.bind(item.name)} THEN 1.0 "
            f"WHEN r.heading {item.operator} {sql.bind(item.summary)} THEN 0.4 ELSE 0.2 END"
        )
    for term in keywords.excluded:
        item = stemmed[term]
        if item.words:
            contains = f"r.words {item.operator} {sql.bind(item.words)}"
            where.append(f"NOT ({contains} AND {_pg_phrase(sql, term)})" if item.phrase else f"NOT {contains}")
    required = [item for item in words if item.term in keywords.required]
    heading = [value for item in required for value in (*item.name, *item.summary)]
    names = [value for item in required for value in item.name]
    return _PgQuery(
        f"{ROWS} AS r", where, " + ".join(relevance) or "0.0", float(len(relevance)), Decimal("0.2") * len(relevance),
        heading, names,
    )


def _pg_filters(sql: _Sql, criteria: Criteria) -> dict[str, str]:
    """One condition per active filter group over `r`, keyed like `_filters`."""
    conditions: dict[str, str] = {}
    if criteria.category:
        conditions["category"] = f"r.category = ANY({sql.bind(list(criteria.category))})"
    if criteria.deployment:
        conditions["deployment"] = f"r.deployment_model = ANY({sql.bind(list(criteria.deployment))})"
    if criteria.certification:
        conditions["certification"] = "(" + " AND ".join(
            f"r.certification_schemes LIKE {sql.bind(f'%|{scheme}|%')}" for scheme in criteria.certification
        ) + ")"
    if criteria.grade:
        conditions["grade"] = f"r.csap_grade = ANY({sql.bind(list(criteria.grade))})"
    if criteria.country:
        conditions["country"] = f"r.data_country = ANY({sql.bind(list(criteria.country))})"
    if criteria.sla_bp is not None:
        conditions["sla"] = f"r.sla_availability_bp >= {sql.bind(criteria.sla_bp)}"
    if criteria.price_max is not None:
        conditions["price_max"] = f"r.min_price <= CAST({sql.bind(criteria.price_max)} AS bigint)"
    if criteria.free_trial:
        conditions["free_trial"] = "r.free_trial"
    if criteria.sme:
        conditions["sme"] = "r.is_sme"
    return conditions


def _where(conditions: Iterable[str]) -> str:
    conditions = list(conditions)
    return " WHERE " + " AND ".join(conditions) if conditions else ""


async def _pg_estimate(session: AsyncSession, sql: _Sql, query: _PgQuery) -> float:
    """The planner's estimate of the services the keywords match (the word index's statistics are good)."""
    statement = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {query.from_}{_where(query.where)}"
    plan = (await session.execute(sa.text(statement), sql.params)).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


async def _pg_scan(
    session: AsyncSession, sql: _Sql, criteria: Criteria, query: _PgQuery, filters: dict[str, str], offset: int,
    size: int, with_facets: bool, sample: int,
) -> tuple[dict[str, dict[str, int]], int, bool, list[tuple[int, float]]]:
    """Facet counts, the number of services passing every filter, whether both are exact, and the page when
    the scan saw every match (empty otherwise: `_pg_page` reads it).

    One statement reads, once, the services failing at most one filter (the only ones any count includes), at
    most `sample` of them: `fail` has a bit for each filter a service fails, so a facet's counts are the groups of
    services failing nothing or only that facet's own filter, and the page is ranked among those failing
    nothing. Three grouping sets instead of one per facet: the groups are summed per facet here."""
    names = list(filters) if with_facets else []
    conditions = [*query.where]
    if names:
        # one bit per filter the service fails; each filter is evaluated once (OFFSET 0 keeps the subquery)
        fail = " | ".join(f"(CASE WHEN {filters[name]} THEN 0 ELSE {1 << index} END)" for index, name in enumerate(names))
        keep = "s.fail & (s.fail - 1) = 0"
    else:
        fail, keep = "0", "true"
        conditions.extend(filters.values())
    thresholds = sorted(SLA_THRESHOLDS_BP, reverse=True)
    sla = "CASE " + " ".join(f"WHEN r.sla_availability_bp >= {bp} THEN {bp}" for bp in thresholds) + " ELSE 0 END"
    price = "CASE " + " ".join(f"WHEN r.min_price <= {value} THEN '{value}'" for value in PRICE_THRESHOLDS) + " ELSE '' END"
    order = _pg_order(criteria, query).replace("r.", "m.")
    # only the sort's own key is carried (each column held costs), and relevance only for services on the page
    key = {"price": "s.min_price, ", "name": "s.name, ", "newest": "s.listed_at, "}.get(criteria.sort, "")
    relevance = query.relevance.replace("r.", "s.") if criteria.sort == "relevance" else "0.0"
    matched = (
        f"WITH m AS MATERIALIZED (SELECT s.fail, s.service_id, s.tiebreak, {key}"
        "s.category, s.deployment_model, s.csap_grade, s.free_trial, s.is_sme, s.certification_schemes, s.data_country, s.sla, "
        f"s.price, CASE WHEN s.fail = 0 THEN {relevance} END AS relevance "
        f"FROM (SELECT {fail} AS fail, r.service_id, r.tiebreak, r.name, r.listed_at, r.min_price, "
        f"r.category, r.deployment_model, r.csap_grade, r.free_trial, r.is_sme, r.certification_schemes, r.data_country, "
        f"{sla} AS sla, {price} AS price, r.heading "
        f"FROM {query.from_}{_where(conditions)} OFFSET 0) AS s WHERE {keep} LIMIT {sample + 1}) "
    )
    if with_facets:
        counting = (
            "SELECT 0 AS part, m.fail, m.category, m.deployment_model, m.csap_grade, m.free_trial, m.is_sme, "
            "m.certification_schemes, m.data_country, m.sla, m.price, count(*) AS n, NULL::integer AS service_id, "
            "NULL::float AS relevance FROM m GROUP BY GROUPING SETS ("
            "(m.fail, m.category, m.deployment_model, m.csap_grade, m.free_trial, m.is_sme), "
            "(m.fail, m.certification_schemes, m.data_country), (m.fail, m.sla, m.price))"
        )
    else:
        counting = (
            "SELECT 0, 0, '', '', '', false, false, NULL, NULL, NULL, NULL, count(*), NULL::integer, NULL::float FROM m"
        )
    page = (
        f"SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, p.service_id, p.relevance::float "
        f"FROM (SELECT m.service_id, m.relevance FROM m WHERE m.fail = 0 ORDER BY {order} LIMIT {size} OFFSET {offset}) AS p "
        f"WHERE (SELECT count(*) FROM m) <= {sample}"  # ranked here only when the scan saw every match
    )
    rows = (await session.execute(sa.text(f"{matched}{counting} UNION ALL {page}"), sql.params)).all()
    own = {name: 1 << index for index, name in enumerate(names)}
    counts: dict[str, dict[str, int]] = {}
    seen = passing = 0
    ranked: list[tuple[int, float]] = []

    def add(facet: str, key: str, failed: int, n: int) -> None:
        wanted = FACET_FILTERS[facet]
        if failed == 0 or (wanted is not None and own.get(wanted) == failed):
            group = counts.setdefault(facet, {})
            group[key] = group.get(key, 0) + n

    for row in rows:
        part, failed, category, deployment, grade, free_trial, is_sme, schemes, country, sla_bp, price_key, n = row[:12]
        service_id, relevance = row[12:]
        if part == 1:
            ranked.append((service_id, relevance))
        elif category is not None:
            seen += n
            passing += n if failed == 0 else 0
            add("category", category, failed, n)
            add("deployment", deployment, failed, n)
            add("grade", grade, failed, n)
            if free_trial:
                add("free_trial", "1", failed, n)
            if is_sme:
                add("sme", "1", failed, n)
        elif schemes is not None:
            add("certification", schemes, failed, n)
            add("country", country, failed, n)
        elif sla_bp is not None:
            add("sla", str(sla_bp), failed, n)
            add("price_max", price_key, failed, n)
    exact = seen <= sample
    return counts, passing, exact, ranked if exact else []


async def _pg_total(session: AsyncSession, sql: _Sql, query: _PgQuery, filters: dict[str, str]) -> int:
    """The number of services passing every filter, counted up to TOTAL_CAP + 1."""
    statement = (
        f"SELECT count(*) FROM (SELECT 1 FROM {query.from_}{_where([*query.where, *filters.values()])} "
        f"LIMIT {TOTAL_CAP + 1}) AS c"
    )
    return int((await session.execute(sa.text(statement), sql.params)).scalar_one())


PG_ORDERS = {
    "relevance": "relevance DESC, r.tiebreak, r.service_id",
    "price": "r.min_price, r.tiebreak, r.service_id",
    "name": "r.name, r.service_id",
    "newest": "r.listed_at DESC, r.service_id DESC",
}


def _pg_order(criteria: Criteria, query: _PgQuery) -> str:
    if criteria.sort == "relevance" and query.relevance == "0.0":
        return "r.tiebreak, r.service_id"  # no keywords: an order an index holds
    return PG_ORDERS[criteria.sort]


async def _pg_page(
    session: AsyncSession, sql: _Sql, criteria: Criteria, query: _PgQuery, filters: dict[str, str], capped: bool,
    offset: int, size: int,
) -> list[tuple[int, float]]:
    """(service id, relevance) of one page, when the scan of `_pg_scan` did not see every match.

    Relevance over more than TOTAL_CAP matches is ranked over a bounded set, giving the page a full ranking
    gives. When at most RANK_FEW matches have a term in their name or summary, those are ranked and the
    rest (all of the lowest relevance) follow in tiebreak order. Otherwise the matches are first taken in
    tiebreak order (an index scan that stops after RANK_PREFIX of them) and ranked among themselves: a match
    outside that prefix has a larger tiebreak than every one in it, so it belongs on the page only if its
    relevance is higher than the page's last. None can be when the last has every term in its name; otherwise
    a count through the name and summary index tells. If one is, every match is ranked."""
    conditions = [*query.where, *filters.values()]
    select = f"SELECT r.service_id, {query.relevance} AS relevance, r.tiebreak FROM {query.from_}"
    if criteria.sort == "relevance" and query.relevance != "0.0" and capped:
        # A service with no term in its name or summary has the lowest relevance there is (0.2 a term), below
        # every service with one: when few have one, they come first, ranked, then the rest in tiebreak order.
        raised = f"(r.heading && {sql.bind(query.heading)} AND {query.relevance} > {sql.bind(query.lowest)})"
        count = f"SELECT count(*) FROM (SELECT 1 FROM {query.from_}{_where([*conditions, raised])} LIMIT {RANK_FEW + 1}) AS c"
        if (few := int((await session.execute(sa.text(count), sql.params)).scalar_one())) <= RANK_FEW:
            first: list[tuple[int, float]] = []
            if offset < few:
                statement = (
                    f"{select}{_where([*conditions, raised])} ORDER BY relevance DESC, r.tiebreak, r.service_id "
                    f"LIMIT {size} OFFSET {offset}"
                )
                first = await _pg_ranked(session, sql, statement)
            if len(first) == size:
                return first
            statement = (
                f"{select}{_where([*conditions, f'NOT {raised}'])} ORDER BY r.tiebreak, r.service_id "
                f"LIMIT {size - len(first)} OFFSET {max(0, offset - few)}"
            )
            return first + await _pg_ranked(session, sql, statement)
        prefix = max(RANK_PREFIX, 4 * (offset + size))
        statement = (
            f"SELECT p.service_id, p.relevance, p.tiebreak FROM ({select}{_where(conditions)} ORDER BY r.tiebreak, r.service_id "
            f"LIMIT {prefix}) AS p ORDER BY p.relevance DESC, p.tiebreak, p.service_id LIMIT {size} OFFSET {offset}"
        )
        rows = (await session.execute(sa.text(statement), sql.params)).all()
        if len(rows) == size:
            last_id, last, tiebreak = rows[-1]
            better = last < query.best - 1e-9
            if better:
                # above every term in the summary, only a term in the name ranks higher
                hashes = query.names if last >= 2 * query.lowest else query.heading
                later = [
                    *conditions, f"r.heading && {sql.bind(hashes)}",
                    f"(r.tiebreak, r.service_id) > ({sql.bind(tiebreak)}, {sql.bind(last_id)})",
                    f"{query.relevance} > {sql.bind(last)}",
                ]
                # counted rather than LIMIT 1: the planner then reads the few services with a term in their name or
                # summary through the index, where "find one" would scan the table in tiebreak order for a row
                # that is usually not there
                found = await session.execute(sa.text(f"SELECT count(*) FROM {query.from_}{_where(later)}"), sql.params)
                better = found.scalar_one() > 0
            if not better:
                return [(service_id, float(relevance)) for service_id, relevance, _tiebreak in rows]
    statement = f"{select}{_where(conditions)} ORDER BY {_pg_order(criteria, query)} LIMIT {size} OFFSET {offset}"
    return await _pg_ranked(session, sql, statement)


async def _pg_ranked(session: AsyncSession, sql: _Sql, statement: str) -> list[tuple[int, float]]:
    rows = (await session.execute(sa.text(statement), sql.params)).all()
    return [(service_id, float(relevance)) for service_id, relevance, *_rest in rows]


async def _pg_search(session: AsyncSession, criteria: Criteria, number: int, size: int, with_facets: bool) -> Results:
    keywords = criteria.keywords
    words = await _pg_prepare(session, keywords)
    sql = _Sql()
    query = _pg_query(sql, keywords, words)
    filters = _pg_filters(sql, criteria)
    offset = (number - 1) * size
    sample = FACET_SAMPLE
    if with_facets and await _pg_estimate(session, sql, query) > FACET_SAMPLE_ABOVE:
        sample = FACET_SAMPLE_COMMON
    counts, total, exact, ranked = await _pg_scan(session, sql, criteria, query, filters, offset, size, with_facets, sample)
    if not exact and total <= TOTAL_CAP:
        total = await _pg_total(session, sql, query, filters)
    capped = total > TOTAL_CAP
    total = min(total, TOTAL_CAP)
    current = check_page(Page(number=number, size=size, total=total))
    if not exact:
        ranked = await _pg_page(session, sql, criteria, query, filters, capped, offset, size)
    positions = [(offset + index, service_id, relevance) for index, (service_id, relevance) in enumerate(ranked, 1)]
    hits = await _hits(session, keywords, positions)
    facets = _facets(criteria, counts) if with_facets else []
    return Results(criteria, hits, total, current, facets, total_capped=capped, facets_exact=exact or not with_facets)


# --- highlighting ---------------------------------------------------------------------------------

ENGLISH_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ies", "ied", "ers", "er", "ed", "es", "ly", "s")


def _root(word: str) -> str:
    """A crude English root so that a stemmed match can be shown: "migrating" marks "migration"."""
    for suffix in ENGLISH_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


class Highlighter:
    """Marks the words a search matched with <mark>; everything else is escaped."""

    def __init__(self, keywords: Keywords) -> None:
        patterns: list[str] = []
        for term in keywords.required:
            if term.fragment:
                patterns.append(r"\s+".join(re.escape(piece) for piece in term.text.split()))
            else:
                patterns.extend(r"(?<!\w)" + re.escape(_root(word)) + r"\w*" for word in WORD.findall(term.text)
                                if word not in STOPWORDS)
        patterns.sort(key=len, reverse=True)
        self.pattern = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None

    def mark(self, text: str) -> Markup:
        if not self.pattern or not text:
            return escape(text or "")
        out: list[str] = []
        at = 0
        for found in self.pattern.finditer(text):
            if found.end() == found.start():
                continue
            out.append(escape(text[at:found.start()]))
            out.append(Markup("<mark>%s</mark>") % text[found.start():found.end()])
            at = found.end()
        out.append(escape(text[at:]))
        return Markup("").join(out)

    def snippet(self, text: str, width: int = 200) -> Markup:
        """A window of the text around its first match (its beginning when nothing matched)."""
        text = " ".join((text or "").split())
        start = 0
        if self.pattern and (found := self.pattern.search(text)):
            start = max(0, found.start() - width // 3)
            if start:
                space = text.find(" ", start)
                start = space + 1 if 0 <= space < found.start() else start
        end = min(len(text), start + width)
        if end < len(text):
            space = text.rfind(" ", start, end)
            end = space if space > start else end
        body = self.mark(text[start:end])
        return (Markup("… ") if start else Markup("")) + body + (Markup(" …") if end < len(text) else Markup(""))
