"""Search over the listed services, through GET /services and GET /api/search, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog import listings, search
from catalog.models import ListedService, Service, ServiceStatus, ServiceVersion
from catalog.search import postgres, results
from market.auth import SystemActor
from market.models import Organisation
from market.schemas import MONEY_MAX
from tests.catalog.listed import CSAP_HIGH, ISO27001, list_service, plan
from tests.helpers import count, make_organisation

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def provider(sessions: Sessions) -> Organisation:
    return await make_organisation(sessions, "provider", "Hanbit Cloud Co., Ltd.", is_sme=True)


@pytest.fixture
async def big_provider(sessions: Sessions) -> Organisation:
    return await make_organisation(sessions, "provider", "Daehan Systems", is_sme=False)


async def found(client: Client, **params: Any) -> list[str]:
    response = await client.get("/api/search", params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["results"]]


def facet(body: dict[str, Any], name: str) -> dict[str, int]:
    group = next(item for item in body["facets"] if item["name"] == name)
    return {value["value"]: value["count"] for value in group["values"]}


# --- Korean -----------------------------------------------------------------------------------------


async def test_a_word_written_with_a_particle_is_found_by_the_bare_word(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    await list_service(sessions, provider, "행정 업무 지원", summary="클라우드를 이용한 문서 관리")
    await list_service(sessions, provider, "Mail hosting", summary="E-mail for agencies")
    assert await found(client, q="클라우드") == ["행정 업무 지원"]


async def test_a_word_typed_with_a_particle_finds_the_bare_word(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    await list_service(sessions, provider, "클라우드 서버", summary="가상 서버")
    assert await found(client, q="클라우드를") == ["클라우드 서버"]
    assert await found(client, q="서버는") == ["클라우드 서버"]


async def test_part_of_a_korean_word_matches_inside_longer_words(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    await list_service(sessions, provider, "공공클라우드 플랫폼", description="정보보안 관제를 포함합니다")
    await list_service(sessions, provider, "Backup service", description="Nightly backups")
    assert await found(client, q="클라우드") == ["공공클라우드 플랫폼"]
    assert await found(client, q="보안") == ["공공클라우드 플랫폼"]  # two letters: shorter than a trigram
    assert await found(client, q="라우") == ["공공클라우드 플랫폼"]


async def test_korean_and_english_words_are_both_required(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    await list_service(sessions, provider, "Kubernetes 관리형 서비스", summary="컨테이너 운영")
    await list_service(sessions, provider, "Kubernetes hosting", summary="Containers")
    assert await found(client, q="kubernetes 관리형") == ["Kubernetes 관리형 서비스"]


# --- English and operators --------------------------------------------------------------------------


async def test_english_words_are_stemmed(client: Client, sessions: Sessions, provider: Organisation) -> None:
    await list_service(sessions, provider, "Workload mover", summary="Migration of legacy systems")
    assert await found(client, q="migrating") == ["Workload mover"]
    assert await found(client, q="systems") == ["Workload mover"]
    assert await found(client, q="system") == ["Workload mover"]


async def test_every_word_is_required(client: Client, sessions: Sessions, provider: Organisation) -> None:
    await list_service(sessions, provider, "Kubernetes backup", summary="Backups of clusters")
    await list_service(sessions, provider, "Kubernetes hosting", summary="Managed clusters")
    assert await found(client, q="kubernetes backup") == ["Kubernetes backup"]
    assert sorted(await found(client, q="kubernetes clusters")) == ["Kubernetes backup", "Kubernetes hosting"]


async def test_a_quoted_phrase_matches_only_the_phrase(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    await list_service(sessions, provider, "Alpha", summary="Managed Kubernetes for agencies")
    await list_service(sessions, provider, "Beta", summary="Kubernetes that is fully managed")
    await list_service(sessions, provider, "감마", summary="공공 클라우드 전환")
    await list_service(sessions, provider, "델타", summary="공공기관 클라우드 전환")
    assert await found(client, q='"managed kubernetes"') == ["Alpha"]
    assert sorted(await found(client, q="managed kubernetes")) == ["Alpha", "Beta"]
    assert await found(client, q='"공공 클라우드"') == ["감마"]


async def test_a_word_after_a_minus_sign_excludes(client: Client, sessions: Sessions, provider: Organisation) -> None:
    await list_service(sessions, provider, "Kubernetes backup", summary="Backups")
    await list_service(sessions, provider, "Kubernetes hosting", summary="Hosting", description="정보보안 포함")
    assert await found(client, q="kubernetes -backup") == ["Kubernetes hosting"]
    assert await found(client, q="kubernetes -보안") == ["Kubernetes backup"]
    assert await found(client, q='kubernetes -"backup"') == ["Kubernetes hosting"]


async def test_the_provider_name_is_searched(
    client: Client, sessions: Sessions, provider: Organisation, big_provider: Organisation
) -> None:
    await list_service(sessions, provider, "Mail", summary="E-mail")
    await list_service(sessions, big_provider, "Chat", summary="Messaging")
    assert await found(client, q="hanbit") == ["Mail"]


async def test_the_name_ranks_above_the_summary_above_the_description(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    await list_service(
        sessions, provider, "Records keeping", description="Uses an archive of records for kubernetes too"
    )
    await list_service(sessions, provider, "Document vault", summary="Secure kubernetes documents")
    await list_service(sessions, provider, "Kubernetes engine", summary="Clusters")
    for number in range(4):
        await list_service(sessions, provider, f"Unrelated {number}", summary="Something else")
    assert await found(client, q="kubernetes") == ["Kubernetes engine", "Document vault", "Records keeping"]


async def test_equal_relevance_is_ordered_by_the_stable_tiebreak(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    ids = []
    for _number in range(6):
        service = await list_service(sessions, provider, "Identical archive", summary="Same words")
        ids.append(service.id)
    expected = sorted(ids, key=lambda service_id: (listings.tiebreak(service_id), service_id))
    response = await client.get("/api/search", params={"q": "archive"})
    first = [item["id"] for item in response.json()["results"]]
    assert first == expected
    again = await client.get("/api/search", params={"q": "archive"})
    assert [item["id"] for item in again.json()["results"]] == first


async def test_matched_words_are_highlighted_and_text_is_escaped(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    await list_service(sessions, provider, "<b>Cloud</b> 클라우드를 desk", summary="Migration made simple")
    body = (await client.get("/api/search", params={"q": "클라우드 migrating"})).json()
    highlight = body["results"][0]["highlight"]
    assert "<mark>클라우드</mark>" in highlight["name"]
    assert "&lt;b&gt;" in highlight["name"]
    assert "<mark>Migration</mark>" in highlight["summary"]
    page = await client.get("/services", params={"q": "클라우드"})
    assert "<mark>클라우드</mark>" in page.text
    assert "<b>Cloud</b>" not in page.text


# --- filters and facets ------------------------------------------------------------------------------


@pytest.fixture
async def spread(sessions: Sessions, provider: Organisation, big_provider: Organisation) -> None:
    """Five services with different categories, models, certifications, SLAs, prices, trials and providers."""
    await list_service(
        sessions,
        provider,
        "A saas public",
        category="saas",
        deployment_model="public",
        certifications=[CSAP_HIGH, ISO27001],
        sla_availability_bp=9995,
        plans=[plan(unit_price=5_000, free_trial_days=30)],
    )
    await list_service(
        sessions,
        provider,
        "B saas private",
        category="saas",
        deployment_model="private",
        certifications=[ISO27001],
        sla_availability_bp=9990,
        plans=[plan(unit_price=50_000)],
    )
    await list_service(
        sessions,
        big_provider,
        "C iaas public",
        category="iaas",
        deployment_model="public",
        certifications=[{**CSAP_HIGH, "grade": "medium"}],
        sla_availability_bp=9950,
        plans=[plan(unit_price=80_000)],
    )
    await list_service(
        sessions,
        big_provider,
        "D paas public",
        category="paas",
        deployment_model="public",
        certifications=[],
        sla_availability_bp=9900,
        data_country="US",
        plans=[plan(unit_price=300_000, free_trial_days=14)],
    )
    await list_service(
        sessions,
        big_provider,
        "E iaas hybrid",
        category="iaas",
        deployment_model="hybrid",
        certifications=[CSAP_HIGH],
        sla_availability_bp=9999,
        plans=[plan(unit_price=1_000)],
    )


@pytest.mark.usefixtures("spread")
async def test_facet_counts_apply_every_other_active_filter(client: Client) -> None:
    body = (await client.get("/api/search", params={"deployment": "public"})).json()
    assert body["total"] == 3
    assert facet(body, "category") == {**dict.fromkeys(facet(body, "category"), 0), "saas": 1, "iaas": 1, "paas": 1}
    assert facet(body, "deployment")["public"] == 3 and facet(body, "deployment")["private"] == 1
    assert facet(body, "deployment")["hybrid"] == 1

    body = (await client.get("/api/search", params={"deployment": "public", "category": "iaas"})).json()
    assert body["total"] == 1
    assert facet(body, "category")["saas"] == 1  # its own filter left out: public services by category
    assert facet(body, "deployment") == {
        "public": 1,
        "private": 0,
        "hybrid": 1,
        "community": 0,
    }  # iaas services by model
    assert facet(body, "sme")["1"] == 0
    assert facet(body, "free_trial")["1"] == 0


@pytest.mark.usefixtures("spread")
async def test_facet_counts_follow_the_keywords(client: Client) -> None:
    body = (await client.get("/api/search", params={"q": "saas"})).json()
    assert body["total"] == 2
    assert facet(body, "deployment") == {"public": 1, "private": 1, "hybrid": 0, "community": 0}
    assert facet(body, "sme")["1"] == 2


@pytest.mark.usefixtures("spread")
async def test_certifications_require_every_ticked_scheme_and_grade_filters(client: Client) -> None:
    assert sorted(await found(client, certification="CSAP")) == ["A saas public", "C iaas public", "E iaas hybrid"]
    assert await found(client, certification=["CSAP", "ISO27001"]) == ["A saas public"]
    assert await found(client, grade="medium") == ["C iaas public"]
    body = (await client.get("/api/search", params={"certification": "CSAP"})).json()
    assert facet(body, "certification")["ISO27001"] == 1  # adding ISO 27001 to CSAP would leave one
    assert facet(body, "grade") == {"high": 2, "medium": 1, "low": 0}


@pytest.mark.usefixtures("spread")
async def test_sla_at_least_and_price_at_most(client: Client) -> None:
    assert sorted(await found(client, sla="99.95")) == ["A saas public", "E iaas hybrid"]
    assert sorted(await found(client, price_max="50000")) == ["A saas public", "B saas private", "E iaas hybrid"]
    body = (await client.get("/api/search", params={"price_max": "50000"})).json()
    assert facet(body, "sla")["99.95"] == 2
    assert facet(body, "price_max")["100000"] == 4  # its own filter left out


@pytest.mark.usefixtures("spread")
async def test_free_trial_sme_and_data_location(client: Client) -> None:
    assert sorted(await found(client, free_trial="1")) == ["A saas public", "D paas public"]
    assert sorted(await found(client, sme="1")) == ["A saas public", "B saas private"]
    assert await found(client, country="US") == ["D paas public"]
    body = (await client.get("/api/search", params={"free_trial": "1"})).json()
    assert facet(body, "country") == {"KR": 1, "US": 1}
    assert facet(body, "sme")["1"] == 1


@pytest.mark.usefixtures("spread")
async def test_sorting_by_price_name_and_newest(client: Client) -> None:
    assert await found(client, sort="price") == [
        "E iaas hybrid",
        "A saas public",
        "B saas private",
        "C iaas public",
        "D paas public",
    ]
    assert await found(client, sort="name") == [
        "A saas public",
        "B saas private",
        "C iaas public",
        "D paas public",
        "E iaas hybrid",
    ]
    assert await found(client, sort="newest") == [
        "E iaas hybrid",
        "D paas public",
        "C iaas public",
        "B saas private",
        "A saas public",
    ]


async def test_prices_beyond_32_bits_are_listed_filtered_and_sorted_exactly(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    """Plan and listed prices are BIGINT (on PostgreSQL the narrow search table's too): ₩3,000,000,000 is kept whole."""
    await list_service(sessions, provider, "Sovereign region", plans=[plan(unit="project", unit_price=3_000_000_000)])
    await list_service(sessions, provider, "Mail hosting", plans=[plan(unit_price=5_000)])
    assert await found(client, sort="price") == ["Mail hosting", "Sovereign region"]
    assert await found(client, price_max="2999999999") == ["Mail hosting"]
    assert sorted(await found(client, price_max="3,000,000,000")) == ["Mail hosting", "Sovereign region"]
    assert sorted(await found(client, price_max=str(MONEY_MAX))) == ["Mail hosting", "Sovereign region"]
    assert (await client.get("/api/search", params={"price_max": str(MONEY_MAX + 1)})).status_code == 422
    results = (await client.get("/api/search", params={"q": "Sovereign"})).json()["results"]
    assert [item["min_price"] for item in results] == [3_000_000_000]


async def test_bad_filter_values_are_named_and_answer_422(client: Client) -> None:
    response = await client.get("/api/search", params={"price_max": "12.5", "category": "spaceships", "sla": "101"})
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"price_max", "category", "sla"}
    page = await client.get("/services", params={"price_max": "abc"})
    assert page.status_code == 422
    assert "Enter a whole number of won." in page.text


# --- results and paging -----------------------------------------------------------------------------


async def test_twenty_a_page_and_a_page_beyond_the_end_answers_404(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    for number in range(23):
        await list_service(sessions, provider, f"Archive {number:02d}", summary="Records")
    first = (await client.get("/api/search", params={"q": "archive"})).json()
    assert (first["total"], first["page_count"], len(first["results"])) == (23, 2, 20)
    second = (await client.get("/api/search", params={"q": "archive", "page": "2"})).json()
    assert len(second["results"]) == 3
    assert not {item["id"] for item in first["results"]} & {item["id"] for item in second["results"]}
    assert (await client.get("/api/search", params={"q": "archive", "page": "3"})).status_code == 404
    assert (await client.get("/api/search", params={"q": "archive", "page": "0"})).status_code == 404
    assert (await client.get("/services", params={"q": "archive", "page": "3"})).status_code == 404
    page = await client.get("/services", params={"q": "archive", "page": "2"})
    assert "Page 2 of 2" in page.text


async def test_a_total_beyond_the_cap_is_shown_as_at_least_and_paging_stops_there(
    client: Client, sessions: Sessions, provider: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(5):
        await list_service(sessions, provider, f"Archive {number}", summary="Records")
    monkeypatch.setattr(results, "TOTAL_CAP", 3)
    monkeypatch.setattr(postgres, "FACET_SAMPLE", 4)
    body = (await client.get("/api/search", params={"q": "archive"})).json()
    assert (body["total"], body["total_capped"], body["page_count"]) == (3, True, 1)
    page = await client.get("/services", params={"q": "archive"})
    assert "3+ services found" in page.text
    assert "Only the first 3 are counted" in page.text
    if not body["facets_exact"]:  # PostgreSQL counts facets over the first FACET_SAMPLE (and one) services only
        assert facet(body, "sme")["1"] <= 5
        assert f"({facet(body, 'sme')['1']}+)" in page.text and "means at least that many" in page.text
    assert (await client.get("/api/search", params={"q": "archive", "page": "2"})).status_code == 404
    monkeypatch.setattr(results, "TOTAL_CAP", 5)
    monkeypatch.setattr(postgres, "FACET_SAMPLE", 10)
    body = (await client.get("/api/search", params={"q": "archive"})).json()
    assert (body["total"], body["total_capped"], body["facets_exact"]) == (5, False, True)
    assert facet(body, "sme")["1"] == 5


async def test_capping_the_total_never_changes_the_pages(
    sessions: Sessions, provider: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the total capped, relevance is ranked within a prefix of the matches when that provably gives the
    same page (PostgreSQL): every page, for terms in names, summaries and descriptions, is the full ranking's."""
    for number in range(4):
        await list_service(sessions, provider, f"Kubernetes engine {number}", summary="Clusters")
        await list_service(sessions, provider, f"Cluster host {number}", summary="Managed kubernetes")
        await list_service(sessions, provider, f"Container desk {number}", description="Runs kubernetes backups daily")

    async def pages(q: str, **criteria: Any) -> list[list[str]]:
        found = []
        for number in (1, 2):  # a capped total of 3 leaves two pages of two
            async with sessions() as session, session.begin():
                results = await search.search(session, search.Criteria(q=q, **criteria), number, size=2)
            found.append([hit.name for hit in results.hits])
        return found

    queries = [
        ("kubernetes", {}),
        ("kubernetes backups", {}),
        ("kubernetes", {"sort": "name"}),
        ('"managed kubernetes"', {}),
    ]
    expected = [await pages(q, **criteria) for q, criteria in queries]
    monkeypatch.setattr(results, "TOTAL_CAP", 3)
    monkeypatch.setattr(postgres, "FACET_SAMPLE", 1)
    monkeypatch.setattr(postgres, "RANK_PREFIX", 1)  # 4 x (offset + size): 8 and 16 services ranked first
    monkeypatch.setattr(postgres, "RANK_FEW", 1)
    for (q, criteria), pages_before in zip(queries, expected, strict=True):
        assert await pages(q, **criteria) == pages_before, q


async def test_no_result_shows_the_empty_state_on_page_one(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    await list_service(sessions, provider, "Archive", summary="Records")
    page = await client.get("/services", params={"q": "nonexistentword"})
    assert page.status_code == 200
    assert "0 services found" in page.text
    assert "No listed service matches this search." in page.text
    assert (await client.get("/services", params={"q": "nonexistentword", "page": "2"})).status_code == 404


async def test_only_listed_services_are_found(client: Client, sessions: Sessions, provider: Organisation) -> None:
    listed = await list_service(sessions, provider, "Archive listed", summary="Records")
    suspended = await list_service(sessions, provider, "Archive suspended", summary="Records")
    async with sessions() as session, session.begin():
        draft = Service(provider_id=provider.id, status=ServiceStatus.draft)
        session.add(draft)
        await session.flush()
        session.add(ServiceVersion(service_id=draft.id, number=1, name="Archive draft", summary="Records"))
        await listings.change_status(
            session, SystemActor(email="test"), suspended.id, ServiceStatus.suspended, "Certificate lapsed"
        )  # type: ignore[arg-type]
    assert await found(client, q="archive") == ["Archive listed"]
    assert await count(sessions, ListedService) == 1
    assert listed.id


async def test_results_show_the_total_and_link_to_the_service_page(
    client: Client, sessions: Sessions, provider: Organisation
) -> None:
    service = await list_service(
        sessions, provider, "Archive", summary="Records", plans=[plan(unit_price=12_000, unit="gb_month")]
    )
    page = await client.get("/services", params={"q": "archive"})
    assert "1 service found" in page.text
    assert f'href="/services/{service.id}"' in page.text
    assert "₩12,000" in page.text
    body = (await client.get("/api/search", params={"q": "archive"})).json()
    assert body["results"][0]["url"] == f"/services/{service.id}"
    assert (body["results"][0]["min_price"], body["results"][0]["min_price_unit"]) == (12_000, "gb_month")
    assert body["query"]["q"] == "archive"


async def test_the_search_page_is_open_to_the_public_and_named_in_the_menu(client: Client) -> None:
    page = await client.get("/services")
    assert page.status_code == 200
    assert 'href="/services"' in page.text
    assert "Search the catalogue" in page.text
