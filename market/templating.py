"""The Jinja environment: autoescaping, gettext, and filters that show amounts and UTC times in the user's language and zone."""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime as DateTime
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine

from market import formatting, i18n
from market.i18n import N_
from market.settings import Settings

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


# The menu per organisation kind; later packages add their entries here.
NAVIGATION: dict[str | None, list[tuple[str, str]]] = {
    None: [
        ("/", N_("Home")),
        ("/services", N_("Search")),
        ("/certificates", N_("Certificates")),
        ("/contracts/register", N_("Contract register")),
    ],
    "agency": [
        ("/", N_("Home")),
        ("/services", N_("Search")),
        ("/projects", N_("Projects")),
        ("/contracts", N_("Contracts")),
        ("/invoices", N_("Invoices")),
        ("/organisation", N_("Organisation")),
        ("/account", N_("Account")),
    ],
    "provider": [
        ("/", N_("Home")),
        ("/services", N_("Search")),
        ("/provider/services", N_("My services")),
        ("/provider/cases", N_("Reviews")),
        ("/provider/certificates", N_("Certificates")),
        ("/contracts", N_("Contracts")),
        ("/invoices", N_("Invoices")),
        ("/organisation", N_("Organisation")),
        ("/account", N_("Account")),
    ],
    "committee": [
        ("/", N_("Home")),
        ("/services", N_("Search")),
        ("/committee/cases", N_("My cases")),
        ("/committee/queue", N_("Review queue")),
        ("/committee/sessions", N_("Sessions")),
        ("/committee/certificates", N_("Certificates")),
        ("/committee/ties", N_("My ties")),
        ("/account", N_("Account")),
    ],
    "operator": [
        ("/", N_("Home")),
        ("/services", N_("Search")),
        ("/operator/organisations", N_("Organisations")),
        ("/operator/domains", N_("Agency domains")),
        ("/operator/appointments", N_("Committee")),
        ("/committee/queue", N_("Review queue")),
        ("/committee/certificates", N_("Certificates")),
        ("/invoices", N_("Invoices")),
        ("/contracts/register", N_("Contract register")),
        ("/operator/audit", N_("Audit log")),
        ("/account", N_("Account")),
    ],
}


def navigation(user: object | None) -> list[tuple[str, str]]:
    kind = getattr(user, "organisation_kind", None)
    return [(href, i18n.gettext(label)) for href, label in NAVIGATION.get(kind, NAVIGATION[None])]


def install_formatting(environment: Environment, zone: ZoneInfo | None = None) -> None:
    """The filters that show amounts and times to people: `money`, `number`, `date` and `datetime` (in `zone`, or the
    process's configured zone when None)."""

    def date(value: Date | DateTime | str | None, pattern: str = formatting.DATE_PATTERN) -> str:
        return formatting.day(value, pattern, zone)

    def datetime(value: DateTime | None, pattern: str = formatting.DATETIME_PATTERN) -> str:
        return formatting.moment(value, pattern, zone)

    environment.filters.update(money=formatting.money, number=formatting.number, date=date, datetime=datetime)


def build_engine(settings: Settings) -> JinjaTemplateEngine:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # the i18n extension adds this method to the environment at runtime; jinja2's types do not declare it
    environment.install_gettext_callables(i18n.template_gettext, i18n.template_ngettext, newstyle=True)  # type: ignore[attr-defined]
    install_formatting(environment, ZoneInfo(settings.timezone))
    environment.globals.update(
        current_language=i18n.current_language.get,
        navigation=navigation,
        languages=i18n.LANGUAGE_NAMES,
        time_zone=settings.timezone,
    )
    return JinjaTemplateEngine.from_environment(environment)
