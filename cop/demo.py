"""The demo community, loaded by `flask --app wsgi demo` (and by `make run` on an empty database).

Everything here is invented: the organisations, the people and their addresses
(`.example` is reserved for examples and never receives mail).
"""

from dataclasses import dataclass
from datetime import date, time, timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from cop.auth import services as auth_services
from cop.auth.models import PASSWORD_MAX, PASSWORD_MIN, User
from cop.communities import services as community_services
from cop.communities.models import (
    Community,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
    Visibility,
)
from cop.core.errors import ConflictError, ServiceError
from cop.extensions import db
from cop.workshops import services as workshop_services

DEFAULT_PASSWORD = "cop-demo-2026"

SLUG = "reseaux-collectifs-plateformes"
NAME = "Réseaux, collectifs et plateformes"
DESCRIPTION = (
    "Une communauté de pratique où les animatrices et animateurs de réseaux et de plateformes "
    "d'ONG, d'associations, de collectivités territoriales et d'une fondation partagent leurs "
    "façons de faire vivre un réseau. Au fil de journées d'ateliers en ligne, ils croisent "
    "leurs expériences sur quatre thèmes et en tirent un guide de repères : enjeux clés, "
    "leviers et conditions favorables, illustrés par des fiches d'expérience de leurs membres."
)
THEMES = (
    "Échanges et diffusion d'informations",
    "Renforcement de capacités et innovation",
    "Mobilisation des membres et du grand public",
    "Représentation et plaidoyer",
)

GRAND_OUEST = "Plateforme des ONG de solidarité du Grand Ouest"
MIGRATIONS = "Réseau Migrations et Territoires"
VAL_DE_GARONNE = "Réseau des Acteurs Solidaires du Val de Garonne"
CENTRE_LOIRE = "Plateforme Éducation Citoyenne Centre-Loire"
ALIMENTATION = "Réseau Alimentation Durable des Territoires"
WALLONIE = "Coordination Wallonne pour la Coopération Citoyenne"
TERANGA = "Plateforme Teranga des ONG du Sénégal oriental"
LEMAN = "Réseau Lémanique des Solidarités"
SAINT_LAURENT = "Réseau Solidarité Saint-Laurent"
EAU = "Collectif Eau Partagée"
NUMERIQUE = "Association Clés du Numérique Solidaire"
EXIL = "Accueil Exil Solidarité"
UNIVERSITE = "Université Populaire des Solidarités"
LIEGE = "Ateliers Citoyens de Liège"
FEMMES = "Femmes Actrices du Développement Local"
VILLE = "Ville de Montfleury-sur-Loire"
DEPARTEMENT = "Département de la Haute-Vallée"
FONDATION = "Fondation Terre Commune"

# (name, kind, ISO 3166 country code)
ORGANISATIONS = (
    (GRAND_OUEST, OrganisationKind.NETWORK, "FR"),
    (MIGRATIONS, OrganisationKind.NETWORK, "FR"),
    (VAL_DE_GARONNE, OrganisationKind.NETWORK, "FR"),
    (CENTRE_LOIRE, OrganisationKind.NETWORK, "FR"),
    (ALIMENTATION, OrganisationKind.NETWORK, "FR"),
    (WALLONIE, OrganisationKind.NETWORK, "BE"),
    (TERANGA, OrganisationKind.NETWORK, "SN"),
    (LEMAN, OrganisationKind.NETWORK, "CH"),
    (SAINT_LAURENT, OrganisationKind.NETWORK, "CA"),
    (EAU, OrganisationKind.NGO, "FR"),
    (NUMERIQUE, OrganisationKind.NGO, "FR"),
    (EXIL, OrganisationKind.NGO, "FR"),
    (UNIVERSITE, OrganisationKind.NGO, "FR"),
    (LIEGE, OrganisationKind.NGO, "BE"),
    (FEMMES, OrganisationKind.NGO, "SN"),
    (VILLE, OrganisationKind.LOCAL_AUTHORITY, "FR"),
    (DEPARTEMENT, OrganisationKind.LOCAL_AUTHORITY, "FR"),
    (FONDATION, OrganisationKind.FOUNDATION, "FR"),
)

PARIS, BRUSSELS, ZURICH, DAKAR = "Europe/Paris", "Europe/Brussels", "Europe/Zurich", "Africa/Dakar"
MONTREAL = "America/Toronto"  # the IANA zone of Montréal; America/Montreal is only its alias

# (email, display name, role, organisation, time zone); the host comes first.
PEOPLE = (
    ("host@demo.example", "Claire Morel", Role.HOST, GRAND_OUEST, PARIS),
    ("facilitator@demo.example", "Julien Lefèvre", Role.FACILITATOR, MIGRATIONS, PARIS),
    ("facilitator2@demo.example", "Aminata Diallo", Role.FACILITATOR, TERANGA, DAKAR),
    ("editor@demo.example", "Sophie Garnier", Role.EDITOR, GRAND_OUEST, PARIS),
    ("editor2@demo.example", "Thomas Renaud", Role.EDITOR, VAL_DE_GARONNE, PARIS),
    ("participant@demo.example", "Camille Roux", Role.PARTICIPANT, EAU, PARIS),
    ("nicolas.dubois@demo.example", "Nicolas Dubois", Role.PARTICIPANT, CENTRE_LOIRE, PARIS),
    ("lea.fontaine@demo.example", "Léa Fontaine", Role.PARTICIPANT, ALIMENTATION, PARIS),
    ("marc.verhaegen@demo.example", "Marc Verhaegen", Role.PARTICIPANT, WALLONIE, BRUSSELS),
    ("elise.jacquet@demo.example", "Élise Jacquet", Role.PARTICIPANT, LEMAN, ZURICH),
    ("gabriel.roy@demo.example", "Gabriel Roy", Role.PARTICIPANT, SAINT_LAURENT, MONTREAL),
    ("yasmine.haddad@demo.example", "Yasmine Haddad", Role.PARTICIPANT, MIGRATIONS, PARIS),
    ("manon.lambert@demo.example", "Manon Lambert", Role.PARTICIPANT, NUMERIQUE, PARIS),
    ("karim.benali@demo.example", "Karim Benali", Role.PARTICIPANT, EXIL, PARIS),
    ("pauline.lemaire@demo.example", "Pauline Lemaire", Role.PARTICIPANT, UNIVERSITE, PARIS),
    ("olivier.masson@demo.example", "Olivier Masson", Role.PARTICIPANT, LIEGE, BRUSSELS),
    ("fatou.ndiaye@demo.example", "Fatou Ndiaye", Role.PARTICIPANT, FEMMES, DAKAR),
    ("antoine.girard@demo.example", "Antoine Girard", Role.PARTICIPANT, VILLE, PARIS),
    ("isabelle.perrin@demo.example", "Isabelle Perrin", Role.PARTICIPANT, DEPARTEMENT, PARIS),
    ("observer@demo.example", "Hélène Martin", Role.OBSERVER, FONDATION, PARIS),
)
LOCALE = "fr"

VIDEO_CALL = "https://visio.demo.example/reseaux-collectifs"
# The five workshop days: (title, theme index or None, description), four weeks apart.
DAYS = (
    (
        "Journée 1 — Échanges et diffusion d'informations",
        0,
        "Comment l'information circule-t-elle entre nos membres, et jusqu'au grand public ?",
    ),
    (
        "Journée 2 — Renforcement de capacités et innovation",
        1,
        "Formations, accompagnements, expérimentations : ce que nos réseaux apportent à leurs "
        "membres.",
    ),
    (
        "Journée 3 — Mobilisation des membres et du grand public",
        2,
        "Donner envie de s'engager et de rester engagé.",
    ),
    (
        "Journée 4 — Représentation et plaidoyer",
        3,
        "Porter la voix des membres auprès des pouvoirs publics.",
    ),
    (
        "Journée 5 — Relecture collective du guide",
        None,
        "Relire ensemble le projet de guide de repères et valider les fiches d'expérience.",
    ),
)
# Each day's agenda: (start, minutes, title, on the day's theme?, question).
AGENDA = (
    ("09:30", 30, "Accueil et tour de table", False, ""),
    (
        "10:00",
        75,
        "Ce qui marche, ce qui bloque",
        True,
        "Dans vos réseaux, qu'est-ce qui aide, et qu'est-ce qui freine ? Une idée par carte.",
    ),
    ("11:15", 15, "Pause", False, ""),
    (
        "11:30",
        60,
        "Leviers et conditions favorables",
        True,
        "Quels leviers retenir pour le guide, et à quelles conditions fonctionnent-ils ?",
    ),
)
PARKED = (
    "Recenser les lettres d'information régionales existantes avant la prochaine journée",
    "Revenir sur les outils de veille partagés : qui les anime, qui les lit ?",
)


@dataclass
class Demo:
    """What `load_demo` created: the community, and its memberships in the order of PEOPLE."""

    community: Community
    memberships: list[Membership]


def demo_conflicts() -> list[str]:
    """Say what already exists in the way of the demo: its community, accounts, organisations."""
    if community_services.slug_is_taken(SLUG):
        return [f"the demo community /c/{SLUG} already exists"]
    conflicts = []
    emails = [email for email, *_rest in PEOPLE]
    taken = sorted(db.session.scalars(select(User.email).where(func.lower(User.email).in_(emails))))
    if taken:
        conflicts.append("accounts already use " + ", ".join(taken))
    names = [name.lower() for name, _kind, _country in ORGANISATIONS]
    taken = sorted(
        db.session.scalars(
            select(Organisation.name).where(func.lower(Organisation.name).in_(names))
        )
    )
    if taken:
        conflicts.append("organisations already exist: " + ", ".join(taken))
    return conflicts


def load_demo(password: str = DEFAULT_PASSWORD) -> Demo:
    """Create the demo community, its organisations and members (flushed, not committed)."""
    conflicts = demo_conflicts()
    if conflicts:
        raise ConflictError(f"Cannot load the demo: {'; '.join(conflicts)}. Nothing was changed.")
    organisations = {
        name: community_services.create_organisation(name, kind, country)
        for name, kind, country in ORGANISATIONS
    }
    users = []
    for email, display_name, _role, _organisation, time_zone in PEOPLE:
        user = auth_services.register_user(email, display_name, password, locale=LOCALE)
        user.time_zone = time_zone
        users.append(user)
    host_organisation = organisations[PEOPLE[0][3]]
    community = community_services.create_community(
        users[0], NAME, SLUG, DESCRIPTION, Visibility.PUBLIC, list(THEMES), host_organisation
    )
    memberships = list(community.memberships)  # the host's, made by create_community
    for user, (_email, _name, role, organisation, _zone) in zip(users[1:], PEOPLE[1:], strict=True):
        # No invitations: demo members are placed directly in the community.
        membership = Membership(
            user=user, community=community, role=role, organisation=organisations[organisation]
        )
        db.session.add(membership)
        memberships.append(membership)
    db.session.flush()
    _plan_workshop_days(community, users)
    return Demo(community=community, memberships=memberships)


def _plan_workshop_days(community: Community, users: list[User]) -> None:
    """Plan the five workshop days, the first in two weeks, and park two items in the first."""
    facilitators = (users[1], users[2])
    first_date = date.today() + timedelta(days=14)
    themes = community.active_themes
    for number, (title, theme_index, description) in enumerate(DAYS):
        day = workshop_services.create_day(
            users[0],
            community,
            workshop_services.DayPlan(
                title=title,
                date=first_date + timedelta(weeks=4 * number),
                starts_at_local=time(9, 30),
                ends_at_local=time(12, 30),
                time_zone=PARIS,
                description=description,
                video_call_url=VIDEO_CALL,
            ),
        )
        for start, minutes, session_title, on_theme, question in AGENDA:
            workshop_services.add_session(
                users[0],
                day,
                workshop_services.SessionPlan(
                    title=session_title,
                    starts_at_local=time.fromisoformat(start),
                    duration_min=minutes,
                    theme_id=themes[theme_index].id
                    if on_theme and theme_index is not None
                    else None,
                    facilitator_id=facilitators[number % 2].id,
                    question=question,
                    allows_anonymous_cards=on_theme,
                ),
            )
        if number == 0:
            for text in PARKED:
                workshop_services.park_item(facilitators[0], day.sessions[1], text)


def _has_users() -> bool:
    return db.session.scalar(select(User.id).limit(1)) is not None


def _check_password(_ctx, _param, value: str) -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise click.BadParameter(f"use {PASSWORD_MIN} to {PASSWORD_MAX} characters.")
    return value


@click.command("demo")
@click.option(
    "--password",
    default=DEFAULT_PASSWORD,
    show_default=True,
    callback=_check_password,
    help="Password of every demo account.",
)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has users.")
@with_appcontext  # `flask` pushes one for app.cli commands, the test runner does not
def demo_command(password: str, if_empty: bool) -> None:
    """Load the demo community and print its accounts."""
    if if_empty and _has_users():
        click.echo("The database already has accounts: the demo community is not loaded.")
        return
    try:
        demo = load_demo(password)
    except ServiceError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from error
    db.session.commit()

    click.echo(f"Loaded the demo community “{demo.community.name}”: /c/{demo.community.slug}")
    click.echo()
    width = max(len(membership.user.email) for membership in demo.memberships)
    for membership in demo.memberships:
        click.echo(
            f"  {membership.user.email:<{width}}  {membership.role.value:<11}  "
            f"{membership.organisation.name}"
        )
    click.echo()
    click.echo(f"Password of every demo account: {password}")
    click.echo(
        "These accounts are for demonstration only: anyone who knows the password can use them."
        " Do not load the demo on a server with real members."
    )
