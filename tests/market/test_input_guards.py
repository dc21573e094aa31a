"""Text that must not reach the database: a control character (NUL among them) in any query parameter or text in a
path answers 422 with a message naming the parameter, on pages and the API alike, never 503 or 500."""

from __future__ import annotations

import pytest

from market.models import User
from tests.helpers import make_organisation

PUBLIC_TEXT_FILTERS = [
    "/services?q=mail%00",
    "/api/search?q=mail%00",
    "/services?q=%01backup",
    "/contracts/register?q=cloud%00",
    "/contracts/register.csv?agency=%00",
    "/api/contracts/register?q=%1b",
    "/contracts/register/CT-2026%00",
    "/api/ocds/records/ocds-kr0000%00",
    "/certificates?q=%00",
]


@pytest.mark.parametrize("address", PUBLIC_TEXT_FILTERS)
async def test_a_control_character_in_a_query_or_path_answers_422(client, address: str) -> None:
    response = await client.get(address)
    assert response.status_code == 422, response.text[:300]
    assert "Remove the control characters from this text." in response.text


async def test_the_api_names_the_parameter_in_problem_json(client) -> None:
    response = await client.get("/api/search", params={"q": "mail\x00", "sla": "99"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"] == {"q": "Remove the control characters from this text."}


async def test_the_catalogue_page_explains_in_a_page(client) -> None:
    response = await client.get("/services?q=%00")
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    assert "Please correct: q." in response.text


async def test_signed_in_text_filters_refuse_control_characters_too(web) -> None:
    await web.login_as("operator")
    for address in (
        "/operator/audit?actor=a%00@b.kr",
        "/operator/audit?action=user.%00",
        "/operator/audit.csv?object_id=%00",
        "/operator/organisations?q=%00",
    ):
        response = await web.client.get(address)
        assert response.status_code == 422, (address, response.status_code)


async def test_ordinary_text_with_tabs_and_line_breaks_still_passes(client) -> None:
    assert (await client.get("/services", params={"q": "mail\tbackup"})).status_code == 200
    assert (await client.get("/api/search", params={"q": "메일 서비스"})).status_code == 200


async def test_a_nul_in_a_form_field_is_refused_without_a_half_written_row(web) -> None:
    user = await web.login_as("agency", organisation=await make_organisation(web.sessions, "agency"))
    response = await web.submit("/account/profile", {"name": "Kim\x00", "language": "en"}, form_page="/account")
    assert response.status_code == 422 and "Remove the control characters" in response.text
    async with web.sessions() as session:
        stored = (await session.get(User, user.id)).name
    assert "\x00" not in stored


async def test_a_nul_in_the_sign_in_form_is_a_wrong_sign_in_not_a_server_error(web) -> None:
    response = await web.login("someone\x00@example.kr", "password\x00")
    assert response.status_code in (401, 422), response.text[:300]
