"""What a search answers: one page of hits, highlighted where the keywords matched, the total, and the facets
with their counts. Both engines hand their counts and their ranked page to `facets_from` and `load_hits`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.facets import (
    CATEGORIES,
    CERTIFICATIONS,
    CSAP_GRADES,
    DEPLOYMENT_MODELS,
    PRICE_THRESHOLDS,
    SLA_THRESHOLDS_BP,
    category_label,
    certification_label,
    country_labels,
    deployment_label,
    grade_label,
    percent,
    unit_label,
)
from catalog.models import ListedService
from catalog.search.criteria import STOPWORDS, WORD, Criteria, Keywords
from market.formatting import number
from market.i18n import _
from market.web import Page

LISTED = sa.inspect(ListedService).local_table  # the listed projection, which the hits are read from
# The total is counted exactly up to this many services; beyond, the page says "at least" (`Results.total_capped`).
# Both engines read it here (`results.TOTAL_CAP`) each time they search, so one setting holds for both.
TOTAL_CAP = 10_000


# --- facets ---------------------------------------------------------------------------------------


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
        (
            "sla",
            _("SLA availability"),
            "at_least",
            [(percent(bp).removesuffix(" %"), _("at least %(v)s", v=percent(bp))) for bp in SLA_THRESHOLDS_BP],
        ),
        (
            "price_max",
            _("Lowest unit price"),
            "at_most",
            [(str(price), _("at most ₩%(v)s", v=number(price))) for price in PRICE_THRESHOLDS],
        ),
        ("free_trial", _("Free trial"), "flag", [("1", _("Offers a free trial"))]),
        ("sme", _("Provider"), "flag", [("1", _("Provider is an SME"))]),
    ]


def _selected(criteria: Criteria, name: str, value: str) -> bool:
    current = {
        "category": criteria.category,
        "deployment": criteria.deployment,
        "certification": criteria.certification,
        "grade": criteria.grade,
        "country": criteria.country,
        "sla": (percent(criteria.sla_bp).removesuffix(" %"),) if criteria.sla_bp is not None else (),
        "price_max": (str(criteria.price_max),) if criteria.price_max is not None else (),
        "free_trial": ("1",) if criteria.free_trial else (),
        "sme": ("1",) if criteria.sme else (),
    }[name]
    return value in current


def facets_from(criteria: Criteria, counts: dict[str, dict[str, int]]) -> list[Facet]:
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
    facets.insert(
        4,
        Facet(
            "country",
            _("Data location"),
            "any",
            [
                FacetValue(code, labels.get(code, code), counted[code], code in criteria.country)
                for code in sorted(counted, key=lambda code: (code != "KR", labels.get(code, code)))
            ],
        ),
    )
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
    name_html: Markup = field(default_factory=Markup)
    summary_html: Markup = field(default_factory=Markup)
    snippet_html: Markup = field(default_factory=Markup)

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
            "highlight": {
                "name": str(self.name_html),
                "summary": str(self.summary_html),
                "snippet": str(self.snippet_html),
            },
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
                {
                    "name": facet.name,
                    "label": facet.label,
                    "kind": facet.kind,
                    "values": [
                        {"value": value.value, "label": value.label, "count": value.count, "selected": value.selected}
                        for value in facet.values
                    ],
                }
                for facet in self.facets
            ],
        }


async def load_hits(session: AsyncSession, keywords: Keywords, ranked: list[tuple[int, int, float]]) -> list[Hit]:
    """The services of a page, in the order of `ranked` ((position, service id, relevance)), highlighted."""
    found: dict[int, Any] = {}
    if ranked:
        ids = [service_id for _position, service_id, _relevance in ranked]
        found = {
            row["service_id"]: row
            for row in (await session.execute(sa.select(LISTED).where(LISTED.c.service_id.in_(ids)))).mappings().all()
        }
    marker = Highlighter(keywords)
    return [
        _hit(found[service_id], relevance, marker) for _position, service_id, relevance in ranked if service_id in found
    ]


def _hit(row: Mapping[str, Any], relevance: float, marker: Highlighter) -> Hit:
    return Hit(
        service_id=row["service_id"],
        version_id=row["version_id"],
        provider_id=row["provider_id"],
        provider_name=row["provider_name"],
        name=row["name"],
        summary=row["summary"],
        category=row["category"],
        deployment_model=row["deployment_model"],
        certifications=[scheme for scheme in row["certification_schemes"].split("|") if scheme],
        csap_grade=row["csap_grade"],
        data_country=row["data_country"],
        sla_availability_bp=row["sla_availability_bp"],
        min_price=row["min_price"],
        min_price_unit=row["min_price_unit"],
        free_trial=bool(row["free_trial"]),
        is_sme=bool(row["is_sme"]),
        listed_at=row["listed_at"],
        relevance=float(relevance),
        name_html=marker.mark(row["name"]),
        summary_html=marker.mark(row["summary"]),
        snippet_html=marker.snippet(row["body"]),
    )


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
                patterns.extend(
                    r"(?<!\w)" + re.escape(_root(word)) + r"\w*"
                    for word in WORD.findall(term.text)
                    if word not in STOPWORDS
                )
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
            out.append(escape(text[at : found.start()]))
            out.append(Markup("<mark>%s</mark>") % text[found.start() : found.end()])
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
