"""Seeded, reproducible catalogue data for the search benchmark: providers, services, listed versions,
plans and search rows, in Korean and English, with realistic spreads of categories, prices and certifications.

The benchmark's terms are planted at known rates: "quantum" in about 0.1 % of services (rare), "backup" in
about 18 % (common: under a fifth of the catalogue), "cloud" in about 85 % (very common); in Korean,
"보안관제" in about 10 % and "클라우드" in about 60 %.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

CATEGORIES = [
    ("saas", 35),
    ("iaas", 15),
    ("paas", 12),
    ("consulting", 8),
    ("migration", 6),
    ("managed_operations", 8),
    ("cloud_ai", 7),
    ("cloud_big_data", 5),
    ("cloud_iot", 3),
    ("cloud_blockchain", 1),
]
DEPLOYMENTS = [("public", 60), ("private", 15), ("hybrid", 20), ("community", 5)]
COUNTRIES = [("KR", 92), ("US", 3), ("JP", 2), ("SG", 2), ("DE", 1)]
REGIONS = {
    "KR": ["Seoul", "Busan", "Daejeon", "Sejong", "Gyeonggi", "Jeju"],
    "US": ["Virginia"],
    "JP": ["Tokyo"],
    "SG": ["Singapore"],
    "DE": ["Frankfurt"],
}
SLAS = [(0, 10), (9900, 20), (9950, 30), (9990, 25), (9995, 10), (9999, 5)]
UNITS = {
    "saas": ["user_month"],
    "iaas": ["vcpu_hour", "instance_month", "gb_month"],
    "paas": ["instance_month", "vcpu_hour"],
    "consulting": ["person_day", "project"],
    "migration": ["project", "person_day"],
    "managed_operations": ["instance_month", "month"],
    "cloud_ai": ["user_month", "month"],
    "cloud_big_data": ["gb_month", "instance_month"],
    "cloud_iot": ["month"],
    "cloud_blockchain": ["month"],
}
# median price per unit in won, for a log-normal spread
PRICE_MEDIANS = {
    "user_month": 12_000,
    "vcpu_hour": 60,
    "instance_month": 150_000,
    "gb_month": 40,
    "person_day": 600_000,
    "project": 20_000_000,
    "month": 400_000,
}

EN_SUBJECTS = [
    "mail",
    "document",
    "records",
    "payroll",
    "helpdesk",
    "analytics",
    "storage",
    "database",
    "network",
    "identity",
    "learning",
    "survey",
    "archive",
    "scheduling",
    "procurement",
    "asset",
    "monitoring",
    "messaging",
    "portal",
    "accounting",
    "inventory",
    "grants",
    "permits",
    "library",
    "transport",
    "health",
    "tax",
    "election",
]
EN_NOUNS = ["platform", "service", "suite", "system", "manager", "hub", "desk", "engine", "gateway", "studio"]
EN_ADJ = ["secure", "managed", "open", "smart", "unified", "scalable", "agile", "trusted", "simple", "rapid"]
EN_FILLER = [
    "agencies",
    "citizens",
    "teams",
    "workflows",
    "reports",
    "dashboards",
    "integration",
    "compliance",
    "encryption",
    "availability",
    "support",
    "training",
    "migration",
    "automation",
    "audit",
    "governance",
    "privacy",
    "mobile",
    "performance",
    "capacity",
    "redundancy",
    "latency",
    "interoperability",
    "accessibility",
    "standards",
]
KO_SUBJECTS = [
    "전자결재",
    "문서관리",
    "인사급여",
    "민원상담",
    "데이터분석",
    "저장소",
    "데이터베이스",
    "네트워크",
    "인증",
    "교육",
    "설문",
    "기록물",
    "일정관리",
    "조달",
    "자산관리",
    "모니터링",
    "메신저",
    "포털",
    "회계",
    "재고",
    "보조금",
    "인허가",
    "도서관",
    "교통",
    "보건",
    "세무",
    "선거",
]
KO_NOUNS = ["플랫폼", "서비스", "솔루션", "시스템", "관리도구", "허브", "센터"]
KO_ADJ = ["안전한", "관리형", "개방형", "지능형", "통합", "확장형", "신뢰할 수 있는", "간편한"]
KO_FILLER = [
    "공공기관을",
    "시민에게",
    "업무를",
    "보고서를",
    "대시보드로",
    "연계하여",
    "규정을",
    "암호화하고",
    "가용성을",
    "지원합니다",
    "교육을",
    "전환을",
    "자동화로",
    "감사",
    "거버넌스",
    "개인정보를",
    "모바일에서",
    "성능을",
    "용량을",
    "이중화로",
    "표준을",
    "접근성을",
    "제공합니다",
    "운영합니다",
]


@dataclass(frozen=True)
class Listing:
    service_id: int
    provider_id: int
    provider_name: str
    is_sme: bool
    name: str
    summary: str
    description: str
    features: list[str]
    benefits: list[str]
    category: str
    deployment_model: str
    data_country: str
    data_region: str
    certifications: list[dict[str, Any]]
    schemes: str
    csap_grade: str
    sla_bp: int
    unit: str
    unit_price: int
    free_trial_days: int
    listed_at: datetime

    @property
    def body(self) -> str:
        return "\n".join([self.description, *self.features, *self.benefits])

    @property
    def tiebreak(self) -> int:
        return int(hashlib.sha256(str(self.service_id).encode()).hexdigest()[:7], 16)


def _pick(rng: random.Random, weighted: list[tuple[Any, int]]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def providers(rng: random.Random, count: int) -> list[tuple[int, str, bool]]:
    prefixes = [
        "Hanbit",
        "Nuri",
        "Baram",
        "Saebyeok",
        "Gangnam",
        "Jeju",
        "Arum",
        "Bitna",
        "Dasom",
        "Haneul",
        "Mirae",
        "Sol",
        "Taeyang",
        "Yeoul",
        "Gaon",
        "Narae",
    ]
    kinds = ["Cloud", "Soft", "Data", "Systems", "Networks", "IT", "Digital", "Labs"]
    found = []
    for number in range(1, count + 1):
        name = f"{rng.choice(prefixes)} {rng.choice(kinds)} {number} Co., Ltd."
        found.append((number, name, rng.random() < 0.6))
    return found


def _sentence(rng: random.Random, korean: bool, words: int) -> str:
    pool = KO_FILLER if korean else EN_FILLER
    return " ".join(rng.choice(pool) for _ in range(words))


def listings(seed: int, count: int, provider_count: int) -> Iterator[Listing]:
    rng = random.Random(seed)
    organisations = providers(rng, provider_count)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for service_id in range(1, count + 1):
        provider_id, provider_name, is_sme = organisations[rng.randrange(provider_count)]
        korean = rng.random() < 0.5
        category = _pick(rng, CATEGORIES)
        if korean:
            name = f"{rng.choice(KO_ADJ)} {rng.choice(KO_SUBJECTS)} {rng.choice(KO_NOUNS)} {service_id}"
            summary = f"{rng.choice(KO_SUBJECTS)}를 위한 {rng.choice(KO_ADJ)} {rng.choice(KO_NOUNS)}"
        else:
            name = f"{rng.choice(EN_ADJ).title()} {rng.choice(EN_SUBJECTS).title()} {rng.choice(EN_NOUNS).title()} {service_id}"
            summary = f"{rng.choice(EN_ADJ).title()} {rng.choice(EN_SUBJECTS)} {rng.choice(EN_NOUNS)} for {rng.choice(EN_FILLER)}"
        description = ". ".join(_sentence(rng, korean, rng.randint(8, 14)) for _ in range(rng.randint(3, 5))) + "."
        features = [_sentence(rng, korean, rng.randint(2, 4)) for _ in range(rng.randint(3, 5))]
        benefits = [_sentence(rng, korean, rng.randint(2, 4)) for _ in range(rng.randint(2, 3))]
        # planted terms, at known rates, in different fields so that weights matter
        roll = rng.random()
        if roll < 0.85:
            where = rng.random()
            if where < 0.3:
                name = name + " Cloud"
            elif where < 0.6:
                summary = summary + " in the cloud"
            else:
                description = description + " Runs in the cloud."
        if rng.random() < 0.18:
            (features if rng.random() < 0.5 else benefits).append(
                "automatic backup" if rng.random() < 0.5 else "daily backups"
            )
        if rng.random() < 0.001:
            description = description + " Quantum-safe encryption."
        if rng.random() < 0.60:
            summary = summary + (" 클라우드" if korean else "") if rng.random() < 0.5 else summary
            description = description + " 클라우드를 기반으로 운영합니다."
        if rng.random() < 0.10:
            features.append("24시간 보안관제")
        certifications: list[dict[str, Any]] = []
        grade = ""
        if rng.random() < 0.40:
            grade = _pick(rng, [("high", 30), ("medium", 40), ("low", 30)])
            certifications.append(
                {
                    "scheme": "CSAP",
                    "name": "",
                    "csap_type": "iaas" if category == "iaas" else "saas_standard",
                    "grade": grade,
                    "valid_from": "2025-01-01",
                    "valid_to": "2028-01-01",
                }
            )
        for scheme, share in (("ISO27001", 0.5), ("ISO27017", 0.2), ("ISO27018", 0.1)):
            if rng.random() < share:
                certifications.append(
                    {
                        "scheme": scheme,
                        "name": "",
                        "csap_type": "",
                        "grade": "",
                        "valid_from": "2025-01-01",
                        "valid_to": "2028-01-01",
                    }
                )
        schemes = [item["scheme"] for item in certifications]
        unit = rng.choice(UNITS[category])
        price = max(1, int(rng.lognormvariate(0, 0.9) * PRICE_MEDIANS[unit]))
        country = _pick(rng, COUNTRIES)
        yield Listing(
            service_id=service_id,
            provider_id=provider_id,
            provider_name=provider_name,
            is_sme=is_sme,
            name=name[:200],
            summary=summary[:300],
            description=description,
            features=features,
            benefits=benefits,
            category=category,
            deployment_model=_pick(rng, DEPLOYMENTS),
            data_country=country,
            data_region=rng.choice(REGIONS[country]),
            certifications=certifications,
            schemes=("|" + "|".join(schemes) + "|") if schemes else "",
            csap_grade=grade,
            sla_bp=_pick(rng, SLAS),
            unit=unit,
            unit_price=price,
            free_trial_days=30 if rng.random() < 0.25 else 0,
            listed_at=start + timedelta(minutes=rng.randrange(60 * 24 * 300)),
        )


def organisation_row(number: int, name: str, is_sme: bool, created: datetime) -> tuple[Any, ...]:
    """organisation: id, kind, name, registration_number, contact_email, contact_phone, address, website, is_sme, active, created_at"""
    return (
        number,
        "provider",
        name,
        f"B{number:09d}",
        f"sales{number}@provider.example.kr",
        "02-000-0000",
        "",
        "",
        is_sme,
        True,
        created,
    )


ORGANISATION_COLUMNS = [
    "id",
    "kind",
    "name",
    "registration_number",
    "contact_email",
    "contact_phone",
    "address",
    "website",
    "is_sme",
    "active",
    "created_at",
]
SERVICE_COLUMNS = [
    "id",
    "provider_id",
    "status",
    "listed_version_id",
    "open_version_id",
    "status_reason",
    "status_changed_at",
    "status_until",
    "created_at",
]
VERSION_COLUMNS = [
    "id",
    "service_id",
    "number",
    "state",
    "lock_version",
    "name",
    "summary",
    "description",
    "category",
    "deployment_model",
    "features",
    "benefits",
    "data_country",
    "data_region",
    "certifications",
    "sla_availability_bp",
    "support_hours",
    "support_channels",
    "response_time_minutes",
    "service_credits",
    "onboarding_terms",
    "data_export_format",
    "data_return_terms",
    "data_deletion_terms",
    "created_by_id",
    "created_at",
    "updated_at",
    "submitted_at",
    "listed_at",
]
PLAN_COLUMNS = [
    "id",
    "version_id",
    "position",
    "name",
    "unit",
    "unit_price",
    "vat_included",
    "minimum_term_months",
    "free_trial_days",
]
LISTED_COLUMNS = [
    "service_id",
    "version_id",
    "provider_id",
    "provider_name",
    "name",
    "summary",
    "body",
    "category",
    "deployment_model",
    "certification_schemes",
    "csap_grade",
    "data_country",
    "sla_availability_bp",
    "min_price",
    "min_price_unit",
    "free_trial",
    "is_sme",
    "listed_at",
    "tiebreak",
]


def rows(item: Listing, *, json_text: bool) -> dict[str, tuple[Any, ...]]:
    """The row of each table for one listing (JSON columns as text for the drivers that want it)."""

    def js(value: Any) -> Any:
        return json.dumps(value, ensure_ascii=False) if json_text else value

    at = item.listed_at
    return {
        "catalog_service": (item.service_id, item.provider_id, "listed", item.service_id, None, "", at, None, at),
        "catalog_service_version": (
            item.service_id,
            item.service_id,
            1,
            "listed",
            1,
            item.name,
            item.summary,
            item.description,
            item.category,
            item.deployment_model,
            js(item.features),
            js(item.benefits),
            item.data_country,
            item.data_region,
            js(item.certifications),
            item.sla_bp or None,
            "09:00-18:00 KST",
            js(["email", "phone"]),
            60,
            "",
            "",
            "CSV",
            "",
            "",
            None,
            at,
            at,
            at,
            at,
        ),
        "catalog_plan": (
            item.service_id,
            item.service_id,
            0,
            "Standard",
            item.unit,
            item.unit_price,
            False,
            0,
            item.free_trial_days,
        ),
        "catalog_listed_service": (
            item.service_id,
            item.service_id,
            item.provider_id,
            item.provider_name,
            item.name,
            item.summary,
            item.body,
            item.category,
            item.deployment_model,
            item.schemes,
            item.csap_grade,
            item.data_country,
            item.sla_bp,
            item.unit_price,
            item.unit,
            item.free_trial_days > 0,
            item.is_sme,
            at,
            item.tiebreak,
        ),
    }


COLUMNS = {
    "catalog_service": SERVICE_COLUMNS,
    "catalog_service_version": VERSION_COLUMNS,
    "catalog_plan": PLAN_COLUMNS,
    "catalog_listed_service": LISTED_COLUMNS,
}
