"""Demo catalogue: a few dozen listed services, in Korean and English, from six providers. Idempotent:
a service is added only when its provider has none of that name yet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from catalog.listings import refresh_listing
from catalog.models import Plan, Service, ServiceStatus, ServiceVersion, VersionState
from market import accounts, audit
from market.auth import SystemActor
from market.database import row_id, utcnow
from market.models import Organisation
from market.settings import Settings

HANBIT = "Hanbit Cloud Co., Ltd."
NURI = "Nuri Soft Inc."
BARAM = "Baram Data Co., Ltd."
SAEBYEOK = "Saebyeok AI Inc."
GANGNAM = "Gangnam Infra Co., Ltd."
JEJU = "Jeju Green IT"

# The providers market/demo.py does not create: name, business number, contact, SME.
PROVIDERS = [
    (SAEBYEOK, "3148123459", "hello@saebyeok-ai.example.kr", "02-555-0101", True),
    (GANGNAM, "2208712343", "sales@gangnam-infra.example.kr", "02-555-0202", False),
    (JEJU, "1058765430", "contact@jeju-green.example.kr", "064-555-0303", True),
]


def _cert(spec: str) -> dict[str, Any]:
    """ "csap:high:iaas", "ISO27001", ... as a certification record valid for three years."""
    if spec.startswith("csap:"):
        _scheme, grade, kind = spec.split(":")
        return {
            "scheme": "CSAP",
            "name": "",
            "csap_type": kind,
            "grade": grade,
            "valid_from": "2025-03-01",
            "valid_to": "2028-02-29",
        }
    return {
        "scheme": spec,
        "name": "",
        "csap_type": "",
        "grade": "",
        "valid_from": "2024-09-01",
        "valid_to": "2027-08-31",
    }


def _plan(name: str, unit: str, price: int, *, vat: bool = False, term: int = 0, trial: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "unit": unit,
        "unit_price": price,
        "vat_included": vat,
        "minimum_term_months": term,
        "free_trial_days": trial,
    }


# provider, name, summary, category, deployment model, (country, region), certifications, SLA (basis points),
# plans, description, features, benefits, days since listing
SERVICES: list[tuple[Any, ...]] = [
    (
        HANBIT,
        "한빛 공공 클라우드 서버",
        "공공기관을 위한 가상 서버(IaaS), 국내 리전에서 운영",
        "iaas",
        "public",
        ("KR", "서울"),
        ["csap:high:iaas", "ISO27001"],
        9995,
        [_plan("표준 vCPU", "vcpu_hour", 45), _plan("예약 인스턴스", "instance_month", 98_000, term=12)],
        "공공기관 전용 리전에서 가상 서버를 제공합니다. 클라우드를 처음 도입하는 기관도 쉽게 시작할 수 있도록 전환 컨설팅을 포함합니다.",
        ["자동 백업", "이중화된 데이터센터", "24시간 보안관제"],
        ["초기 구축비 없음", "사용한 만큼 지불"],
        420,
    ),
    (
        HANBIT,
        "Hanbit Object Storage",
        "S3-compatible object storage hosted in Korea",
        "iaas",
        "public",
        ("KR", "Seoul"),
        ["csap:high:iaas", "ISO27001", "ISO27017"],
        9990,
        [_plan("Standard", "gb_month", 28), _plan("Archive", "gb_month", 9)],
        "Durable object storage with versioning, lifecycle rules and server-side encryption. Data never leaves Korea.",
        ["S3-compatible API", "Versioning", "Encryption at rest"],
        ["Cheaper than on-premises storage", "No egress fees inside Korea"],
        380,
    ),
    (
        HANBIT,
        "한빛 관리형 쿠버네티스",
        "Kubernetes 클러스터를 대신 운영해 드립니다",
        "paas",
        "public",
        ("KR", "서울"),
        ["csap:high:iaas"],
        9995,
        [_plan("클러스터", "month", 150_000), _plan("워커 노드 vCPU", "vcpu_hour", 52)],
        "관리형 Kubernetes 서비스입니다. 컨트롤 플레인 운영, 보안 패치, 모니터링을 제공합니다.",
        ["자동 확장", "무중단 업그레이드", "감사 로그"],
        ["운영 인력 절감"],
        300,
    ),
    (
        HANBIT,
        "Hanbit Disaster Recovery",
        "Replicate servers to a second region and fail over in minutes",
        "iaas",
        "hybrid",
        ("KR", "Busan"),
        ["ISO27001"],
        9990,
        [_plan("Protected server", "instance_month", 35_000, trial=30)],
        "Continuous replication of on-premises or cloud servers to our Busan region, with tested failover runbooks.",
        ["15-minute recovery point", "Quarterly failover drills"],
        ["Meets business continuity requirements"],
        200,
    ),
    (
        HANBIT,
        "한빛 클라우드 전환 컨설팅",
        "기존 시스템의 클라우드 전환 계획 수립과 이행 지원",
        "consulting",
        "hybrid",
        ("KR", "서울"),
        [],
        0,
        [_plan("전환 진단", "project", 12_000_000, vat=True), _plan("전문가 투입", "person_day", 650_000)],
        "현행 시스템을 분석하여 클라우드 전환 우선순위와 비용을 산정하고, 이행 계획을 함께 수립합니다.",
        ["현황 진단", "전환 로드맵", "비용 산정"],
        ["전환 위험 감소"],
        150,
    ),
    (
        HANBIT,
        "Hanbit Managed Database",
        "Managed PostgreSQL and MySQL with automatic backups",
        "paas",
        "public",
        ("KR", "Seoul"),
        ["csap:high:iaas", "ISO27001"],
        9995,
        [_plan("db.small", "instance_month", 120_000), _plan("db.large", "instance_month", 480_000)],
        "Fully managed relational databases: point-in-time recovery, read replicas and encrypted storage.",
        ["Point-in-time recovery", "Read replicas"],
        ["No database administrator on call"],
        90,
    ),
    (
        NURI,
        "누리 전자결재",
        "공공기관 표준 전자결재와 문서 관리(SaaS)",
        "saas",
        "public",
        ("KR", "대전"),
        ["csap:medium:saas_standard"],
        9950,
        [_plan("사용자", "user_month", 6_500, trial=30)],
        "기관 결재선, 공문서 양식, 기록물 이관을 지원하는 전자결재 서비스입니다. 모바일에서도 결재할 수 있습니다.",
        ["모바일 결재", "기록물 이관", "전자서명"],
        ["종이 문서 감소", "결재 시간 단축"],
        500,
    ),
    (
        NURI,
        "Nuri Mail",
        "Secure e-mail and calendars for public agencies",
        "saas",
        "public",
        ("KR", "Daejeon"),
        ["csap:medium:saas_standard", "ISO27001"],
        9990,
        [_plan("Basic", "user_month", 3_000, trial=30), _plan("Pro", "user_month", 5_500, trial=30)],
        "E-mail, calendars and contacts with spam filtering, data loss prevention and 50 GB mailboxes.",
        ["Spam and malware filtering", "Data loss prevention", "Shared calendars"],
        ["Replaces on-premises mail servers"],
        460,
    ),
    (
        NURI,
        "누리 협업 메신저",
        "기관 내부 업무용 메신저와 화상회의",
        "saas",
        "public",
        ("KR", "대전"),
        ["csap:low:saas_simplified"],
        9950,
        [_plan("사용자", "user_month", 4_000, vat=True, trial=14)],
        "업무 메신저, 화상회의, 파일 공유를 하나로 제공합니다. 외부 기관과의 협업방도 만들 수 있습니다.",
        ["화상회의", "파일 공유", "조직도 연동"],
        ["재택근무 지원"],
        330,
    ),
    (
        NURI,
        "Nuri Helpdesk",
        "Citizen service desk with chatbot and ticketing",
        "cloud_ai",
        "public",
        ("KR", "Daejeon"),
        ["csap:low:saas_simplified"],
        9900,
        [_plan("Agent seat", "user_month", 39_000), _plan("Chatbot", "month", 450_000, term=6)],
        "Tickets, knowledge base and an AI chatbot that answers common citizen questions in Korean and English.",
        ["AI chatbot", "Knowledge base", "Satisfaction surveys"],
        ["Shorter waiting times"],
        120,
    ),
    (
        NURI,
        "누리 민원 접수 포털",
        "온라인 민원 접수와 처리 현황 안내",
        "saas",
        "community",
        ("KR", "대전"),
        ["csap:medium:saas_standard"],
        9950,
        [_plan("기관", "year", 18_000_000, vat=True)],
        "지방자치단체가 함께 쓰는 커뮤니티 클라우드 기반 민원 포털입니다. 접수부터 처리 결과 안내까지 지원합니다.",
        ["본인 확인", "처리 현황 알림"],
        ["민원 처리 기간 단축"],
        60,
    ),
    (
        NURI,
        "Nuri Forms",
        "Online forms and surveys for agencies",
        "saas",
        "public",
        ("KR", "Daejeon"),
        [],
        9900,
        [_plan("Team", "month", 90_000, trial=30)],
        "Drag-and-drop forms, surveys and simple workflows with accessibility built in.",
        ["Accessible forms", "Exports to spreadsheets"],
        ["No development needed"],
        25,
    ),
    (
        BARAM,
        "바람 빅데이터 분석 플랫폼",
        "공공 데이터를 모아 분석하고 시각화하는 플랫폼",
        "cloud_big_data",
        "private",
        ("KR", "세종"),
        ["csap:high:iaas", "ISO27001"],
        9950,
        [_plan("분석 노드", "instance_month", 850_000, term=12), _plan("저장 공간", "gb_month", 60)],
        "데이터 수집, 정제, 분석, 시각화를 하나의 플랫폼에서 제공합니다. 데이터는 기관 전용 환경에 보관됩니다.",
        ["데이터 카탈로그", "대시보드", "SQL 분석"],
        ["데이터 기반 정책 수립"],
        410,
    ),
    (
        BARAM,
        "Baram IoT Hub",
        "Collect and monitor sensor data from city infrastructure",
        "cloud_iot",
        "public",
        ("KR", "Sejong"),
        ["ISO27001", "ISO27017"],
        9950,
        [_plan("Device", "month", 1_200), _plan("Gateway", "instance_month", 75_000)],
        "Connect air-quality, traffic and water sensors; store time series; alert operators when thresholds are crossed.",
        ["MQTT and LoRaWAN", "Time-series storage", "Alerting"],
        ["Smart city projects start faster"],
        260,
    ),
    (
        BARAM,
        "바람 데이터 이관 서비스",
        "기존 데이터베이스를 클라우드로 안전하게 옮깁니다",
        "migration",
        "hybrid",
        ("KR", "세종"),
        ["ISO27001"],
        0,
        [_plan("이관 프로젝트", "project", 25_000_000, vat=True)],
        "온프레미스 데이터베이스를 클라우드로 이관합니다. 무중단 이관과 정합성 검증을 포함합니다.",
        ["무중단 이관", "정합성 검증", "이관 후 안정화"],
        ["이관 위험 최소화"],
        180,
    ),
    (
        BARAM,
        "Baram Data Lake",
        "Big data lake with open formats and fine-grained access control",
        "cloud_big_data",
        "public",
        ("KR", "Sejong"),
        ["csap:high:iaas"],
        9990,
        [_plan("Storage", "gb_month", 35), _plan("Query compute", "vcpu_hour", 70)],
        "Store raw data in open formats and query it with SQL; column-level access control and audit trails.",
        ["Open table formats", "Column-level access control"],
        ["One copy of the data for every team"],
        95,
    ),
    (
        BARAM,
        "바람 블록체인 문서 증명",
        "블록체인으로 문서의 위변조 여부를 증명합니다",
        "cloud_blockchain",
        "private",
        ("KR", "세종"),
        ["ISO27001"],
        9900,
        [_plan("증명 건수", "month", 300_000)],
        "증명서와 계약서의 해시를 블록체인에 기록하여 위변조 여부를 누구나 확인할 수 있게 합니다.",
        ["해시 기록", "검증 포털"],
        ["증명서 위조 방지"],
        40,
    ),
    (
        BARAM,
        "Baram Backup",
        "Backup of servers and Microsoft 365 to Korean data centres",
        "saas",
        "public",
        ("KR", "Sejong"),
        ["ISO27001"],
        9950,
        [_plan("Protected user", "user_month", 2_500, trial=30)],
        "Daily backups with 90-day retention, self-service restore and immutable copies against ransomware.",
        ["Immutable backups", "Self-service restore"],
        ["Recover from ransomware"],
        12,
    ),
    (
        SAEBYEOK,
        "새벽 AI 문서 요약",
        "인공지능으로 보고서와 회의록을 요약합니다",
        "cloud_ai",
        "public",
        ("KR", "서울"),
        ["csap:low:saas_simplified"],
        9900,
        [_plan("사용자", "user_month", 15_000, trial=14)],
        "긴 보고서와 회의록을 인공지능이 요약하고 핵심 내용을 뽑아 줍니다. 개인정보는 자동으로 가립니다.",
        ["개인정보 자동 가림", "한국어 특화 모델"],
        ["문서 검토 시간 절약"],
        220,
    ),
    (
        SAEBYEOK,
        "Saebyeok Speech to Text",
        "Korean speech recognition for meetings and call centres",
        "cloud_ai",
        "public",
        ("KR", "Seoul"),
        ["ISO27001", "ISO27018"],
        9950,
        [_plan("Audio hour", "month", 250_000), _plan("Per user", "user_month", 9_900, trial=14)],
        "Transcribe meetings and calls in Korean and English, with speaker separation and custom vocabularies.",
        ["Speaker separation", "Custom vocabulary"],
        ["Accurate minutes without typing"],
        140,
    ),
    (
        SAEBYEOK,
        "새벽 AI 챗봇 빌더",
        "민원 상담 챗봇을 코딩 없이 만듭니다",
        "cloud_ai",
        "public",
        ("KR", "서울"),
        ["csap:low:saas_simplified"],
        9900,
        [_plan("챗봇", "month", 550_000, vat=True, term=3)],
        "기관의 FAQ와 규정을 학습시켜 민원 상담 챗봇을 만듭니다. 답변 근거 문서를 함께 보여 줍니다.",
        ["답변 근거 표시", "상담원 연결"],
        ["야간 민원 응대"],
        70,
    ),
    (
        SAEBYEOK,
        "Saebyeok GPU Cloud",
        "GPU servers for training and serving AI models",
        "iaas",
        "public",
        ("KR", "Seoul"),
        ["ISO27001"],
        9950,
        [_plan("GPU server", "instance_month", 2_900_000, term=1)],
        "Dedicated GPU servers with fast storage for model training, fine-tuning and inference.",
        ["Dedicated GPUs", "Fast NVMe storage"],
        ["Train models without buying hardware"],
        30,
    ),
    (
        SAEBYEOK,
        "AI 영상 분석",
        "CCTV 영상에서 안전 위험을 찾아 알립니다",
        "cloud_ai",
        "private",
        ("KR", "서울"),
        ["csap:medium:saas_standard"],
        9950,
        [_plan("카메라", "month", 18_000)],
        "CCTV 영상을 분석해 쓰러짐, 화재, 침입 같은 위험 상황을 관제 요원에게 알립니다.",
        ["실시간 알림", "개인정보 비식별화"],
        ["관제 인력 부담 감소"],
        8,
    ),
    (
        GANGNAM,
        "강남 프라이빗 클라우드",
        "기관 전용 프라이빗 클라우드 구축과 운영",
        "iaas",
        "private",
        ("KR", "경기"),
        ["csap:high:iaas", "ISO27001", "ISO27017"],
        9999,
        [_plan("전용 랙", "month", 9_500_000, term=36), _plan("구축", "project", 150_000_000, vat=True)],
        "기관 전용 하드웨어 위에 프라이빗 클라우드를 구축하고 운영합니다. 망 분리 환경을 지원합니다.",
        ["망 분리 지원", "전용 하드웨어", "24시간 운영"],
        ["보안 등급 높은 시스템 수용"],
        600,
    ),
    (
        GANGNAM,
        "Gangnam Managed Operations",
        "24x7 operation of your cloud systems by certified engineers",
        "managed_operations",
        "hybrid",
        ("KR", "Gyeonggi"),
        ["ISO27001"],
        9990,
        [_plan("Server under management", "instance_month", 150_000), _plan("Engineer day", "person_day", 800_000)],
        "Monitoring, patching, backup checks and incident response for cloud and on-premises servers, around the clock.",
        ["24x7 monitoring", "Monthly reports", "Incident response"],
        ["Fewer outages"],
        350,
    ),
    (
        GANGNAM,
        "강남 보안관제 서비스",
        "클라우드 환경의 보안 이벤트를 24시간 관제합니다",
        "managed_operations",
        "hybrid",
        ("KR", "경기"),
        ["ISO27001", "ISO27017"],
        9990,
        [_plan("관제 대상 서버", "instance_month", 90_000, term=12)],
        "보안관제 전문 인력이 침입 탐지, 로그 분석, 사고 대응을 수행합니다. 월간 보안 보고서를 제공합니다.",
        ["침입 탐지", "로그 분석", "사고 대응"],
        ["보안 인력 확보 부담 해소"],
        240,
    ),
    (
        GANGNAM,
        "Gangnam Network Connect",
        "Dedicated links between agency networks and cloud regions",
        "iaas",
        "private",
        ("KR", "Gyeonggi"),
        ["csap:high:iaas"],
        9999,
        [_plan("1 Gbps link", "month", 1_100_000, term=12)],
        "Private, redundant network connections from agency sites to cloud regions, separated from the internet.",
        ["Redundant paths", "Separated from the internet"],
        ["Stable performance"],
        110,
    ),
    (
        GANGNAM,
        "Cloud Migration Factory",
        "Move hundreds of servers to the cloud in waves",
        "migration",
        "hybrid",
        ("KR", "Gyeonggi"),
        ["ISO27001"],
        0,
        [_plan("Migrated server", "project", 1_800_000, vat=True)],
        "A repeatable process to migrate servers in waves: discovery, planning, migration and hypercare.",
        ["Discovery tooling", "Wave planning", "Hypercare"],
        ["Predictable migration cost"],
        45,
    ),
    (
        JEJU,
        "제주 그린 호스팅",
        "재생에너지로 운영하는 웹 호스팅",
        "iaas",
        "public",
        ("KR", "제주"),
        ["ISO27001"],
        9950,
        [_plan("웹 호스팅", "month", 33_000, vat=True, trial=30)],
        "재생에너지로 운영하는 제주 데이터센터에서 기관 홈페이지를 호스팅합니다.",
        ["무료 인증서", "일일 백업"],
        ["탄소 배출 감소"],
        390,
    ),
    (
        JEJU,
        "Jeju Green Virtual Desktop",
        "Virtual desktops (DaaS) for remote and field workers",
        "saas",
        "public",
        ("KR", "Jeju"),
        ["csap:medium:daas"],
        9950,
        [_plan("Desktop", "user_month", 32_000, trial=14)],
        "Secure virtual desktops reachable from any device, with data kept in the data centre, not on laptops.",
        ["Works on any device", "No data on endpoints"],
        ["Safe remote work"],
        270,
    ),
    (
        JEJU,
        "제주 관광 데이터 서비스",
        "관광객 이동과 소비 데이터를 분석해 제공합니다",
        "cloud_big_data",
        "community",
        ("KR", "제주"),
        [],
        9900,
        [_plan("기관 구독", "year", 6_000_000, vat=True)],
        "지방자치단체와 관광 관련 기관이 함께 쓰는 관광 데이터 분석 서비스입니다.",
        ["관광 통계", "지역별 대시보드"],
        ["관광 정책 수립 지원"],
        160,
    ),
    (
        JEJU,
        "Jeju Green Website Builder",
        "Accessible websites for small agencies, no coding",
        "saas",
        "public",
        ("KR", "Jeju"),
        [],
        9900,
        [_plan("Site", "month", 55_000, vat=True, trial=30)],
        "Build accessible, bilingual websites from templates that meet public-sector web standards.",
        ["Accessibility checks", "Korean and English pages"],
        ["Launch a site in days"],
        20,
    ),
    (
        JEJU,
        "Jeju Smart Farm IoT",
        "Sensors and dashboards for agricultural research stations",
        "cloud_iot",
        "public",
        ("JP", "Tokyo"),
        ["ISO27001"],
        9900,
        [_plan("Sensor", "month", 2_000)],
        "Soil, climate and water sensors with dashboards and alerts for research farms.",
        ["Solar-powered sensors", "Mobile alerts"],
        ["Less water used"],
        5,
    ),
]


async def _providers(session: AsyncSession, echo: Callable[[str], None]) -> tuple[dict[str, Organisation], int]:
    actor = SystemActor(email="demo")
    created = 0
    for name, number, email, phone, sme in PROVIDERS:
        if await session.scalar(sa.select(col(Organisation.id)).where(col(Organisation.name) == name)) is None:
            await accounts.create_organisation(
                session,
                actor,
                kind="provider",
                name=name,
                registration_number=number,
                contact_email=email,
                contact_phone=phone,
                is_sme=sme,
            )
            created += 1
    names = {row[0] for row in SERVICES}
    found = (await session.scalars(sa.select(Organisation).where(col(Organisation.name).in_(names)))).all()
    return {organisation.name: organisation for organisation in found}, created


async def load(session: AsyncSession, settings: Settings, echo: Callable[[str], None] = print) -> int:
    actor = SystemActor(email="demo")
    providers, created = await _providers(session, echo)
    now = utcnow()
    added = 0
    for provider_name, name, summary, category, deployment, (
        country,
        region,
    ), certifications, sla, plans, description, features, benefits, days_ago in SERVICES:
        provider = providers.get(provider_name)
        if provider is None:
            continue
        exists = await session.scalar(
            sa.select(col(ServiceVersion.id))
            .join(Service, col(Service.id) == col(ServiceVersion.service_id))
            .where(col(Service.provider_id) == provider.id, col(ServiceVersion.name) == name)
        )
        if exists is not None:
            continue
        listed_at = now - timedelta(days=days_ago)
        service = Service(
            provider_id=row_id(provider), status=ServiceStatus.listed, status_changed_at=listed_at, created_at=listed_at
        )
        session.add(service)
        await session.flush()
        version = ServiceVersion(
            service_id=row_id(service),
            number=1,
            state=VersionState.listed,
            name=name,
            summary=summary,
            description=description,
            category=category,
            deployment_model=deployment,
            features=features,
            benefits=benefits,
            data_country=country,
            data_region=region,
            certifications=[_cert(spec) for spec in certifications],
            sla_availability_bp=sla or None,
            support_hours="09:00-18:00 KST" if sla < 9990 else "24x7",
            support_channels=["phone", "email", "web"],
            response_time_minutes=60 if sla < 9990 else 15,
            service_credits="10 % of the monthly fee for each 0.1 % below the SLA" if sla else "",
            onboarding_terms="Onboarding workshop and data import within 10 working days.",
            data_export_format="CSV, JSON and the original files",
            data_return_terms="All data returned within 30 days of the end of the contract.",
            data_deletion_terms="Deleted within 30 days after return, with a deletion certificate.",
            created_at=listed_at,
            updated_at=listed_at,
            submitted_at=listed_at,
            listed_at=listed_at,
        )
        session.add(version)
        await session.flush()
        for position, plan in enumerate(plans):
            session.add(Plan(version_id=row_id(version), position=position, **plan))
        service.listed_version_id = version.id
        await session.flush()
        await refresh_listing(session, service)
        await audit.record(
            session, actor, "service.list", "service", service.id, {"version": 1, "name": name, "demo": True}
        )
        added += 1
    echo(f"catalogue: {len(SERVICES)} listed services from {len(providers)} providers ({added} new)")
    return created + added
