"""The demo community, loaded by `flask --app wsgi demo` (and by `make run` on an empty database).

Everything here is invented: the organisations, the people and their addresses
(`.example` is reserved for examples and never receives mail).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import click
from flask.cli import with_appcontext
from pycrdt import Doc, Text
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
from cop.notes import services as note_services
from cop.workshops import services as workshop_services
from cop.workshops.models import (
    Attendance,
    Card,
    Cluster,
    Phase,
    Takeaway,
    TakeawayKind,
    Vote,
    WorkshopDay,
    WorkshopSession,
    WorkshopStatus,
)
from cop.workshops.record import freeze

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


# The first day is over: its session on the theme ("Ce qui marche, ce qui bloque") was run
# and closed, so that its record can be explored. Who was there, by email:
PRESENT = (
    "host@demo.example",
    "facilitator@demo.example",
    "editor@demo.example",
    "participant@demo.example",
    "nicolas.dubois@demo.example",
    "lea.fontaine@demo.example",
    "marc.verhaegen@demo.example",
    "gabriel.roy@demo.example",
    "manon.lambert@demo.example",
    "karim.benali@demo.example",
    "fatou.ndiaye@demo.example",
    "antoine.girard@demo.example",
    "isabelle.perrin@demo.example",
    "observer@demo.example",
)
CLUSTERS = (
    "Des formats adaptés à chaque public",
    "Le temps et la surcharge d'information",
    "La confiance entre membres",
)
# (author's email, text, cluster index or None, anonymous?)
CARDS = (
    (
        "participant@demo.example",
        "Une lettre d'information mensuelle courte, trois nouvelles au plus : nos membres la "
        "lisent vraiment.",
        0,
        False,
    ),
    (
        "nicolas.dubois@demo.example",
        "Les groupes de messagerie marchent pour l'urgence, mais l'information s'y perd en deux "
        "jours.",
        0,
        False,
    ),
    (
        "marc.verhaegen@demo.example",
        "Un agenda partagé des événements des membres évite les doublons et crée des occasions "
        "de se croiser.",
        0,
        False,
    ),
    (
        "fatou.ndiaye@demo.example",
        "Traduire l'essentiel en wolof et en pulaar pour toucher les groupements de femmes.",
        0,
        False,
    ),
    (
        "lea.fontaine@demo.example",
        "Trop de listes de diffusion qui se recoupent : on ne sait plus laquelle lire.",
        1,
        False,
    ),
    (
        "karim.benali@demo.example",
        "Les petites associations n'ont pas de salarié·e pour lire et relayer : l'information "
        "s'arrête chez nous.",
        1,
        True,
    ),
    (
        "host@demo.example",
        "Un quart d'heure de veille partagée au début de chaque réunion mensuelle : chacun "
        "apporte une information.",
        1,
        False,
    ),
    (
        "antoine.girard@demo.example",
        "Côté collectivité, nous recevons trop de sollicitations : un interlocuteur unique par "
        "réseau nous aiderait.",
        2,
        False,
    ),
    (
        "gabriel.roy@demo.example",
        "Les rencontres en présentiel, même une fois par an, font circuler l'information toute "
        "l'année ensuite.",
        2,
        False,
    ),
    (
        "lea.fontaine@demo.example",
        "On partage plus volontiers une difficulté quand on sait que ça ne sortira pas du groupe.",
        2,
        True,
    ),
    (
        "editor@demo.example",
        "Valoriser ce que les membres publient eux-mêmes plutôt que tout rédiger à leur place.",
        2,
        False,
    ),
    (
        "manon.lambert@demo.example",
        "Former les membres aux outils collaboratifs avant de les leur proposer.",
        None,
        False,
    ),
)
# A card the facilitator hid (moderation): the record leaves it out.
HIDDEN_CARD = (
    "nicolas.dubois@demo.example",
    "Pour la liste des contacts presse, appelez-moi directement au 06 12 34 56 78.",
    "Contient un numéro de téléphone personnel : à partager en privé.",
)
# Each voter's dots, by index in CARDS: three dots each, at most two on one card.
DOTS = {
    "host@demo.example": (5, 5, 0),
    "editor@demo.example": (0, 0, 11),
    "participant@demo.example": (5, 8, 4),
    "nicolas.dubois@demo.example": (0, 2, 2),
    "lea.fontaine@demo.example": (5, 8, 3),
    "marc.verhaegen@demo.example": (8, 8, 3),
    "gabriel.roy@demo.example": (9, 9, 0),
    "manon.lambert@demo.example": (4, 4, 1),
    "karim.benali@demo.example": (4, 9, 6),
    "fatou.ndiaye@demo.example": (0, 5, 7),
    "antoine.girard@demo.example": (9, 9, 8),
    "isabelle.perrin@demo.example": (2, 10, 7),
}
# (kind, text, indexes in CLUSTERS it comes from)
TAKEAWAYS = (
    (
        TakeawayKind.KEY_ISSUE,
        "L'information se perd faute de temps pour la lire et la relayer, surtout dans les "
        "petites associations sans salarié·e.",
        (1,),
    ),
    (
        TakeawayKind.LEVER,
        "Des formats courts et réguliers (lettre mensuelle de trois nouvelles, agenda partagé), "
        "traduits quand les membres ne lisent pas le français.",
        (0,),
    ),
    (
        TakeawayKind.CONDITION,
        "Un climat de confiance, entretenu par des rencontres régulières, où l'on peut partager "
        "une difficulté sans qu'elle sorte du groupe.",
        (2,),
    ),
)
SESSION_NOTE = """Prise de notes partagée de la journée 1, relue par l'équipe d'animation.

## Ce qui marche

- La **lettre mensuelle courte** du Collectif Eau Partagée est citée en exemple : trois \
nouvelles, un lien pour chacune, envoyée toujours le même jour.
- L'agenda partagé des réseaux wallons évite que deux formations tombent le même jour.
- Les rencontres annuelles en présentiel créent des liens qui font ensuite circuler \
l'information.

## Ce qui bloque

- Les listes de diffusion se recoupent ; plusieurs participants ne les lisent plus.
- Dans les petites associations, personne n'a le temps de relayer : « l'information \
s'arrête à la porte ».
- Les collectivités reçoivent des sollicitations de toutes parts et ne savent pas à qui \
répondre.

## À creuser

1. Faire l'inventaire des lettres régionales existantes (parqué pour la journée 2).
2. Tester un agenda partagé entre deux réseaux volontaires d'ici la prochaine journée.
3. Demander aux collectivités présentes ce qu'elles attendent d'un interlocuteur unique.
"""
NOTE_WRITERS = ("facilitator@demo.example", "editor@demo.example")


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
    """Plan the five workshop days, four weeks apart, and run the first one's main session.

    The first day was two weeks ago: its session on the theme is closed, with a record, and
    two items were parked in it; the next day is in two weeks.
    """
    facilitators = (users[1], users[2])
    first_date = date.today() - timedelta(days=14)
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
            _run_and_close(day, day.sessions[1], {user.email: user for user in users})


def _utc(moment: datetime) -> datetime:
    """Return an aware datetime as the naive UTC datetime the database stores."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _run_and_close(day: WorkshopDay, session: WorkshopSession, people: dict[str, User]) -> None:
    """Fill a session as its live room would have, close it and freeze its record."""
    start, end = _utc(session.starts_at), _utc(session.ends_at)
    clusters = [
        Cluster(session_id=session.id, label=label, position=position, created_at=start)
        for position, label in enumerate(CLUSTERS, start=1)
    ]
    db.session.add_all(clusters)
    db.session.flush()
    cards = [
        Card(
            session_id=session.id,
            author_id=people[email].id,
            body=body,
            is_anonymous=anonymous,
            cluster_id=clusters[cluster].id if cluster is not None else None,
            created_at=start + timedelta(minutes=10, seconds=40 * number),
        )
        for number, (email, body, cluster, anonymous) in enumerate(CARDS)
    ]
    email, body, reason = HIDDEN_CARD
    hidden = Card(
        session_id=session.id,
        author_id=people[email].id,
        body=body,
        hidden_reason=reason,
        hidden_by_id=session.facilitator_id,
        created_at=start + timedelta(minutes=14),
    )
    db.session.add_all([*cards, hidden])
    db.session.flush()
    for email, chosen in DOTS.items():
        on_card: dict[int, int] = {}
        for slot, index in enumerate(chosen, start=1):
            on_card[index] = on_card.get(index, 0) + 1
            db.session.add(
                Vote(
                    session_id=session.id,
                    user_id=people[email].id,
                    card_id=cards[index].id,
                    slot=slot,
                    card_slot=on_card[index],
                    created_at=start + timedelta(minutes=35),
                )
            )
    for position, (kind, text, from_clusters) in enumerate(TAKEAWAYS, start=1):
        db.session.add(
            Takeaway(
                session_id=session.id,
                kind=kind,
                theme_id=session.theme_id,
                text=text,
                position=position,
                created_by_id=session.facilitator_id,
                clusters=[clusters[index] for index in from_clusters],
                created_at=end - timedelta(minutes=10),
            )
        )
    for number, email in enumerate(PRESENT):
        db.session.add(
            Attendance(
                workshop_day_id=day.id,
                session_id=session.id,
                user_id=people[email].id,
                sid=f"demo-{number}",
                joined_at=start - timedelta(minutes=2),
                left_at=end,
            )
        )
    _write_note(session.note_id, SESSION_NOTE, {people[email].id for email in NOTE_WRITERS})
    session.phase = Phase.CLOSED
    day.status = WorkshopStatus.CLOSED
    db.session.flush()
    freeze(session, session.facilitator, closed_at=end)


def _write_note(note_id: int, text: str, writers: set[int]) -> None:
    """Give a note its text as the live editor would: one logged update, then compacted."""
    doc = Doc()
    doc.get(note_services.TEXT_NAME, type=Text).insert(0, text)
    note_services.append_update(note_id, doc.get_update(), writers)
    note_services.compact_note(note_id)


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
