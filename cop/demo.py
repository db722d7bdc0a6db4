"""The demo community, loaded by `flask --app wsgi demo` (and by `make run` on an empty database).

Everything here is invented: the organisations, the people and their addresses
(`.example` is reserved for examples and never receives mail).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import click
from flask.cli import with_appcontext
from flask_babel import force_locale
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
from cop.drafts import services as draft_services
from cop.drafts import workflow
from cop.drafts.models import (
    Draft,
    DraftSection,
    DraftStatus,
    MarkVerdict,
    SectionKind,
    SourceKind,
    SourceLink,
)
from cop.drafts.services import Material
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

# An experience sheet of the Collectif Eau Partagée, written and signed off by its member,
# then placed in the guide. Section titles are written here in French: the template's own
# titles are translated only when the catalogue has them.
SHEET_WRITER = "participant@demo.example"
SHEET_TITLE = "Une lettre mensuelle en trois nouvelles"
SHEET_SECTIONS = {
    SectionKind.CONTEXT: (
        "Contexte",
        "Le Collectif Eau Partagée réunit une quarantaine d'associations, de régies publiques et "
        "de comités d'usagers engagés pour l'accès à l'eau, en France et en Afrique de l'Ouest. "
        "Jusqu'en 2023, il diffusait une lettre trimestrielle de douze pages que la plupart de "
        "ses membres disaient ne pas avoir le temps de lire. Les appels à projets et les "
        "formations arrivaient trop tard, ou passaient inaperçus.",
    ),
    SectionKind.ACTORS: (
        "Acteurs",
        "La chargée de communication du collectif, à mi-temps, tient la lettre. Un comité de "
        "trois membres bénévoles, renouvelé chaque année, choisit les nouvelles avec elle. Les "
        "associations membres proposent leurs informations par un formulaire partagé.",
    ),
    SectionKind.ACTIONS: (
        "Ce qui a été fait",
        "Nous avons remplacé la lettre trimestrielle par une lettre mensuelle limitée à trois "
        "nouvelles, chacune résumée en trois lignes avec un lien vers le détail. Elle part "
        "toujours le premier mardi du mois, à la même heure. Une fois par an, un court "
        "questionnaire demande aux membres ce qu'ils en retiennent et ce qui leur manque.",
    ),
    SectionKind.RESULTS: (
        "Résultats",
        "En un an, le taux d'ouverture est passé d'environ 20 % à près de 55 %, et plusieurs "
        "membres relaient la lettre dans leurs propres réseaux. Deux appels à projets diffusés "
        "par la lettre ont reçu des candidatures de petites associations qui n'en avaient "
        "jamais déposé. La lettre demande une journée de travail par mois, contre une semaine "
        "par trimestre auparavant.",
    ),
    SectionKind.LESSONS: (
        "Enseignements",
        "Se limiter à trois nouvelles oblige à choisir, et ce choix est déjà un service rendu "
        "aux membres. La régularité compte autant que le contenu : les membres savent quand la "
        "lettre arrive, et ils l'attendent. Ce qui n'y entre pas trouve sa place dans l'agenda "
        "partagé du site.",
    ),
    SectionKind.REPRODUCE: (
        "Conditions pour la reproduire",
        "Il faut une personne identifiée qui tient le calendrier, même à temps partiel, et un "
        "petit comité pour partager les choix. Il faut aussi renoncer à l'exhaustivité, ce qui "
        "se discute en assemblée générale. Un outil d'envoi simple, qui compte les ouvertures, "
        "suffit.",
    ),
    SectionKind.CONTACT: (
        "Contact",
        "Camille Roux, chargée de communication du Collectif Eau Partagée "
        "(contact@eau-partagee.example). Le modèle de la lettre et le formulaire de proposition "
        "sont disponibles sur demande.",
    ),
}

# The guide built from the first day's record: written by the two editors, reviewed,
# published as v1 by the host, taken up again and back in review.
GUIDE_TITLE = "Repères : comment améliorer le travail en réseau"
EDITOR, EDITOR2 = "editor@demo.example", "editor2@demo.example"
INTRO = (
    "Ce guide rassemble ce que les membres de la communauté « Réseaux, collectifs et "
    "plateformes » ont mis en commun au fil de leurs journées d'ateliers en ligne. Pour chaque "
    "thème, il présente les enjeux clés, les leviers qui ont fait leurs preuves et les "
    "conditions qui les rendent possibles.",
    "Chaque repère renvoie, en note, à la séance d'où il vient, avec le nombre de contributions "
    "et d'organisations qui le portent. Les fiches d'expérience, rédigées et validées par les "
    "organisations elles-mêmes, illustrent ces repères par des cas concrets.",
)
INTRO_SCOPE = (
    "Cette première version porte sur le thème « Échanges et diffusion d'informations », "
    "travaillé lors de la journée 1 par quatorze personnes venues de réseaux, d'ONG, de "
    "collectivités et d'une fondation. Les autres thèmes seront rédigés au fil des prochaines "
    "journées."
)
INTRO_SCOPE_AFTER_REVIEW = (
    "Cette version porte sur le thème « Échanges et diffusion d'informations », travaillé lors "
    "de la journée 1 par quatorze personnes venues de réseaux, d'ONG, de collectivités et d'une "
    "fondation ; elle tient compte des remarques de la première relecture. Les autres thèmes "
    "seront rédigés au fil des prochaines journées."
)
KEY_ISSUES_LEAD = (
    "Premier constat partagé : l'information circule beaucoup, mais elle n'arrive pas jusqu'à "
    "celles et ceux qui pourraient s'en saisir. Le problème tient moins au manque "
    "d'information qu'au temps qu'il faut pour la trier et la relayer."
)
KEY_ISSUES_CLUSTER = (
    "Ces cartes, venues de réseaux comme d'ONG, forment le regroupement « Le temps et la "
    "surcharge d'information »."
)
KEY_ISSUES_NOTE = "La prise de notes de la journée résume ainsi ce qui bloque :"
KEY_ISSUES_AUTHORITIES = (
    "Les collectivités vivent la difficulté inverse : elles reçoivent des sollicitations de "
    "toutes parts, sans savoir à qui répondre."
)
LEVERS_LEAD = (
    "Les leviers retenus sont d'abord des formats simples, réguliers et pensés pour leurs "
    "publics. Aucun ne demande de gros moyens ; tous demandent de choisir ce que l'on diffuse."
)
LEVERS_NOTE = "La prise de notes de la journée en garde les exemples les plus parlants :"
LEVERS_SHEET = (
    "La fiche d'expérience du Collectif Eau Partagée, ci-dessous, raconte comment une lettre "
    "mensuelle de trois nouvelles a remplacé une lettre trimestrielle que personne ne lisait."
)
LEVERS_LANGUAGES = (
    "La langue est un levier à part entière : là où les membres ne lisent pas tous le "
    "français, traduire l'essentiel change qui reçoit l'information."
)
CONDITIONS_LEAD = (
    "Aucun format ne fonctionne sans un minimum de confiance entre les membres : on relaie "
    "plus volontiers l'information de quelqu'un que l'on connaît."
)
CONDITIONS_LEAD_AFTER_REVIEW = (
    "Aucun format ne fonctionne sans un minimum de confiance entre les membres : on relaie "
    "plus volontiers l'information d'un réseau dont on connaît les personnes."
)
CONDITIONS_CLUSTER = (
    "C'est le sens du regroupement « La confiance entre membres », qui réunit des cartes de "
    "réseaux et d'une collectivité."
)
LATER_THEME = (
    "*Ce thème sera travaillé lors de la journée {number} ; ses enjeux, ses leviers et ses "
    "conditions favorables seront rédigés à partir de ses résultats.*"
)
FIRST_DRAFT = "Premier jet à partir des ateliers"
AFTER_REVIEW = "Reprise après la relecture"
# Review comments: (author, section kind of the first theme or INTRO, quoted passage, body).
FIRST_REVIEW_COMMENT = (
    "fatou.ndiaye@demo.example",
    SectionKind.LEVERS,
    "traduits quand les membres ne lisent pas le français",
    "Pouvez-vous préciser les langues ? Au Sénégal oriental, c'est la traduction en wolof et en "
    "pulaar qui nous a permis de toucher les groupements de femmes.",
)
FIRST_REVIEW_REPLY = (
    EDITOR,
    "Merci Fatou : j'ajoute votre carte sur le wolof et le pulaar dans la prochaine version.",
)
SECOND_REVIEW_COMMENTS = (
    (
        "facilitator@demo.example",
        SectionKind.CONDITIONS,
        "On partage plus volontiers une difficulté quand on sait que ça ne sortira pas du groupe.",
        "Attention à ne pas en faire une règle générale : ce qui se dit en atelier reste entre "
        "nous, mais les décisions du réseau, elles, doivent circuler. Peut-on le préciser ?",
    ),
    (
        "antoine.girard@demo.example",
        SectionKind.KEY_ISSUES,
        "elles reçoivent des sollicitations de toutes parts, sans savoir à qui répondre",
        "C'est bien ce que nous avons dit. J'ajouterais que nous ne savons pas toujours qui parle "
        "au nom du réseau : un interlocuteur désigné nous ferait gagner beaucoup de temps.",
    ),
)
SECOND_REVIEW_REPLY = (
    "isabelle.perrin@demo.example",
    "Même constat au Département de la Haute-Vallée. Nous pourrions proposer une fiche "
    "d'expérience sur notre annuaire des réseaux partenaires.",
)
# Validation marks in the current review: (person, section kind, verdict, comment).
RECOGNISE, NOT_WHAT_WE_SAID = MarkVerdict.RECOGNISE, MarkVerdict.NOT_WHAT_WE_SAID
FIRST_REVIEW_MARK = (
    "fatou.ndiaye@demo.example",
    SectionKind.LEVERS,
    NOT_WHAT_WE_SAID,
    "Il manque la traduction dans les langues des membres.",
)
MARKS = (
    ("participant@demo.example", SectionKind.INTRO, RECOGNISE, ""),
    ("lea.fontaine@demo.example", SectionKind.INTRO, RECOGNISE, ""),
    ("karim.benali@demo.example", SectionKind.KEY_ISSUES, RECOGNISE, ""),
    ("antoine.girard@demo.example", SectionKind.KEY_ISSUES, RECOGNISE, ""),
    ("nicolas.dubois@demo.example", SectionKind.KEY_ISSUES, RECOGNISE, ""),
    (
        "lea.fontaine@demo.example",
        SectionKind.KEY_ISSUES,
        NOT_WHAT_WE_SAID,
        "Pour nous, le problème venait surtout des listes de diffusion qui se recoupent, moins "
        "du manque de temps.",
    ),
    ("participant@demo.example", SectionKind.LEVERS, RECOGNISE, ""),
    ("marc.verhaegen@demo.example", SectionKind.LEVERS, RECOGNISE, ""),
    ("fatou.ndiaye@demo.example", SectionKind.LEVERS, RECOGNISE, "Merci pour l'ajout."),
    ("manon.lambert@demo.example", SectionKind.LEVERS, RECOGNISE, ""),
    ("gabriel.roy@demo.example", SectionKind.CONDITIONS, RECOGNISE, ""),
    ("lea.fontaine@demo.example", SectionKind.CONDITIONS, RECOGNISE, ""),
    (
        "karim.benali@demo.example",
        SectionKind.CONDITIONS,
        NOT_WHAT_WE_SAID,
        "La confiance ne vient pas seulement des rencontres en présentiel : nos petits groupes "
        "en ligne y contribuent aussi.",
    ),
)


@dataclass
class Demo:
    """What `load_demo` created: the community, its members, the guide and its sheet.

    Memberships are in the order of PEOPLE; the guide is built from the first day's record
    and the experience sheet is placed in it.
    """

    community: Community
    memberships: list[Membership]
    guide: Draft
    sheet: Draft


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
    guide, sheet = _write_drafts(
        community,
        {user.email: user for user in users},
        {membership.user.email: membership for membership in memberships},
    )
    return Demo(community=community, memberships=memberships, guide=guide, sheet=sheet)


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


def _days_ago(days: int, at: str) -> datetime:
    """Return the naive UTC datetime of a Paris wall-clock time, `days` before today."""
    local = datetime.combine(
        date.today() - timedelta(days=days), time.fromisoformat(at), tzinfo=ZoneInfo(PARIS)
    )
    return _utc(local)


def _write_drafts(
    community: Community, people: dict[str, User], memberships: dict[str, Membership]
) -> tuple[Draft, Draft]:
    """Write the experience sheet and the guide of the first day, as their authors would have.

    Services speak French here whatever the loader's locale: the authors' own language
    already gives the sections their titles, this gives revisions and logs their words.
    """
    with force_locale(LOCALE):
        sheet = _write_sheet(memberships[SHEET_WRITER])
        guide = _write_guide(community, people, sheet)
    return guide, sheet


def _write_sheet(membership: Membership) -> Draft:
    """Write the Collectif Eau Partagée's experience sheet and sign it off (two weeks ago)."""
    writer = membership.user
    sheet = draft_services.create_sheet(writer, membership, SHEET_TITLE)
    sheet.created_at = _days_ago(13, "10:00")
    for section in sheet.sections:
        title, text = SHEET_SECTIONS[section.kind]
        draft_services.rename_section(section, title)
        note_services.append_paragraph(section.note, text, writer)
    # Signed off, its notes take no more writes: their log is folded in first.
    _compact(sheet, _days_ago(13, "11:30"))
    workflow.sign_off(writer, sheet)
    sheet.signed_off_at = _days_ago(11, "16:00")
    _date_status_change(sheet, sheet.signed_off_at)
    return sheet


class _GuideWriter:
    """Write in the guide's sections of one theme with material from one session record."""

    def __init__(self, guide: Draft, items: list[Material], theme_id: int):
        self.guide = guide
        self.items = items
        self.sections = {
            section.kind: section
            for section in guide.sections
            if section.theme_id == theme_id or section.kind is SectionKind.INTRO
        }
        self.moment = guide.created_at

    def material(self, kind: SourceKind, text: str) -> Material:
        """Return the record's item of this kind whose text starts with `text`."""
        return next(item for item in self.items if item.kind is kind and item.text.startswith(text))

    def card(self, index: int) -> Material:
        """Return the record's item for one of CARDS."""
        return self.material(SourceKind.CARD, CARDS[index][1])

    def takeaway(self, index: int) -> Material:
        """Return the record's item for one of TAKEAWAYS."""
        return self.material(SourceKind.TAKEAWAY, TAKEAWAYS[index][1])

    def cluster(self, index: int) -> Material:
        """Return the record's item for one of CLUSTERS."""
        return self.material(SourceKind.CLUSTER, CLUSTERS[index])

    def excerpt(self, start: str) -> Material:
        """Return the paragraph of the session's note that starts with `start`."""
        return self.material(SourceKind.NOTE_EXCERPT, start)

    def write(self, actor: User, kind: SectionKind, paragraph: str) -> None:
        """Add a paragraph of the editor's own at the end of a section."""
        note_services.append_paragraph(self.sections[kind].note, paragraph, actor)

    def insert(
        self, actor: User, kind: SectionKind, item: Material, quote: bool = False
    ) -> SourceLink:
        """Put a record's item at the end of a section, with its source link."""
        section = self.sections[kind]
        link, _change = draft_services.insert_material(
            actor, section, item.session_id, item.kind, item.source_id, item.excerpt, quote
        )
        link.created_at = self.moment
        return link

    def reword(self, actor: User, kind: SectionKind, link: SourceLink, paragraph: str) -> None:
        """Rewrite the paragraph that refers to a source link, keeping its reference."""
        reference = f"[^s{link.id}]"
        blocks = self.text(kind).split("\n\n")
        blocks = [f"{paragraph} {reference}" if reference in block else block for block in blocks]
        self.replace(actor, kind, "\n\n".join(blocks))

    def edit(self, actor: User, kind: SectionKind, old: str, new: str) -> None:
        """Replace a passage of a section."""
        self.replace(actor, kind, self.text(kind).replace(old, new, 1))

    def move_to_end(self, actor: User, kind: SectionKind, paragraph: str) -> None:
        """Move one of a section's paragraphs to its end."""
        text = self.text(kind).replace(paragraph + "\n\n", "", 1)
        self.replace(actor, kind, text.rstrip("\n") + "\n\n" + paragraph + "\n")

    def text(self, kind: SectionKind) -> str:
        """Return a section's current text."""
        return draft_services.section_text(self.sections[kind])

    def replace(self, actor: User, kind: SectionKind, text: str) -> None:
        """Make a section's text `text`, as one change."""
        note_services.replace_text(self.sections[kind].note, text, actor)


def _write_guide(community: Community, people: dict[str, User], sheet: Draft) -> Draft:
    """Write the guide from the first day's record, publish v1, and take it back to review.

    Twelve days ago the editors wrote a first draft; it went through review, the host
    published it, and after the review's remarks it was taken up again: it is in review now,
    with open comments and validation marks.
    """
    editor, editor2, host = people[EDITOR], people[EDITOR2], people[PEOPLE[0][0]]
    guide = draft_services.create_guide(editor, community, GUIDE_TITLE)
    guide.created_at = _days_ago(12, "09:00")
    record = draft_services.records_of(community)[0]
    writer = _GuideWriter(
        guide, draft_services.items_of_record(record.data), record.data["session"]["theme"]["id"]
    )
    intro, key_issues, levers, conditions = (
        SectionKind.INTRO,
        SectionKind.KEY_ISSUES,
        SectionKind.LEVERS,
        SectionKind.CONDITIONS,
    )
    card, takeaway, cluster, excerpt = writer.card, writer.takeaway, writer.cluster, writer.excerpt

    # The first draft, from the takeaways and the most voted cards.
    for paragraph in INTRO:
        writer.write(editor, intro, paragraph)
    writer.write(editor, key_issues, KEY_ISSUES_LEAD)
    writer.insert(editor, key_issues, takeaway(0))
    writer.insert(editor, key_issues, card(5), quote=True)
    writer.insert(editor, key_issues, card(4), quote=True)
    writer.write(editor, levers, LEVERS_LEAD)
    writer.insert(editor, levers, takeaway(1))
    writer.insert(editor, levers, card(0), quote=True)
    writer.insert(editor, levers, card(2), quote=True)
    writer.write(editor2, conditions, CONDITIONS_LEAD)
    writer.insert(editor2, conditions, takeaway(2))
    writer.insert(editor2, conditions, card(8), quote=True)
    writer.insert(editor2, conditions, card(9), quote=True)
    _compact(guide, _days_ago(12, "11:30"))
    workflow.save_revision(editor, guide, FIRST_DRAFT).created_at = _days_ago(10, "17:00")

    # More material: clusters, the shared notes, the authorities' side; the sheet goes in.
    writer.moment = _days_ago(9, "10:00")
    writer.write(editor, intro, INTRO_SCOPE)
    writer.reword(
        editor, key_issues, writer.insert(editor, key_issues, cluster(1)), KEY_ISSUES_CLUSTER
    )
    writer.write(editor, key_issues, KEY_ISSUES_NOTE)
    writer.insert(editor, key_issues, excerpt("- Les listes de diffusion"), quote=True)
    writer.write(editor, key_issues, KEY_ISSUES_AUTHORITIES)
    writer.insert(editor, key_issues, card(7), quote=True)
    writer.write(editor2, levers, LEVERS_NOTE)
    writer.insert(editor2, levers, excerpt("- La **lettre mensuelle courte**"), quote=True)
    writer.write(editor2, levers, LEVERS_SHEET)
    writer.reword(
        editor2, conditions, writer.insert(editor2, conditions, cluster(2)), CONDITIONS_CLUSTER
    )
    for number, theme in enumerate(draft_services.themes_in_order(community), start=1):
        if theme.id != record.data["session"]["theme"]["id"]:
            later = next(
                section
                for section in guide.sections
                if section.theme_id == theme.id and section.kind is key_issues
            )
            note_services.append_paragraph(later.note, LATER_THEME.format(number=number), editor)
    _place_after(editor, guide, sheet, writer.sections[conditions])
    _compact(guide, _days_ago(9, "15:00"))

    # The first review: a remark on the levers, then approval and publication as v1.
    workflow.move(editor, guide, DraftStatus.REVIEW)
    _date_status_change(guide, _days_ago(8, "09:00"))
    author, kind, quoted, body = FIRST_REVIEW_COMMENT
    remark = workflow.add_comment(people[author], guide, writer.sections[kind], body, quoted)
    remark.created_at = _days_ago(8, "14:00")
    author, verdict_kind, verdict, comment = FIRST_REVIEW_MARK
    workflow.mark(
        people[author], guide, writer.sections[verdict_kind], verdict, comment
    ).updated_at = _days_ago(8, "14:05")
    author, body = FIRST_REVIEW_REPLY
    workflow.add_comment(
        people[author], guide, writer.sections[kind], body, parent=remark
    ).created_at = _days_ago(8, "16:30")
    workflow.move(host, guide, DraftStatus.APPROVED)
    _date_status_change(guide, _days_ago(7, "11:00"))
    publication = workflow.publish(host, guide)
    publication.published_at = publication.revision.created_at = _days_ago(6, "10:00")
    _date_status_change(guide, publication.published_at)

    # Taken up after the review: the languages Fatou asked for, smaller rewordings.
    writer.moment = _days_ago(3, "10:00")
    writer.write(editor, levers, LEVERS_LANGUAGES)
    writer.insert(editor, levers, card(3), quote=True)
    writer.move_to_end(editor, levers, LEVERS_SHEET)
    writer.edit(editor, intro, INTRO_SCOPE, INTRO_SCOPE_AFTER_REVIEW)
    writer.edit(editor2, conditions, CONDITIONS_LEAD, CONDITIONS_LEAD_AFTER_REVIEW)
    workflow.set_resolved(editor, remark, resolved=True)
    remark.resolved_at = _days_ago(3, "11:00")
    _compact(guide, _days_ago(3, "12:00"))
    workflow.save_revision(editor, guide, AFTER_REVIEW).created_at = _days_ago(3, "17:00")

    # In review again: new remarks, and participants say whether they recognise their words.
    workflow.move(editor, guide, DraftStatus.REVIEW)
    _date_status_change(guide, _days_ago(2, "09:00"))
    threads = []
    for when, (author, kind, quoted, body) in zip(
        (_days_ago(2, "15:00"), _days_ago(1, "10:00")), SECOND_REVIEW_COMMENTS, strict=True
    ):
        comment = workflow.add_comment(people[author], guide, writer.sections[kind], body, quoted)
        comment.created_at = when
        threads.append(comment)
    author, body = SECOND_REVIEW_REPLY
    workflow.add_comment(
        people[author], guide, threads[1].section, body, parent=threads[1]
    ).created_at = _days_ago(1, "11:30")
    for number, (author, kind, verdict, comment) in enumerate(MARKS):
        workflow.mark(people[author], guide, writer.sections[kind], verdict, comment).updated_at = (
            _days_ago(1, "14:00") + timedelta(minutes=7 * number)
        )
    return guide


def _place_after(actor: User, guide: Draft, sheet: Draft, after: DraftSection) -> None:
    """Place a signed-off sheet in a guide, as a boxed insert right after a section."""
    placed = draft_services.place_sheet(actor, guide, sheet.id)
    while guide.sections.index(placed) > guide.sections.index(after) + 1:
        draft_services.move_section(placed, -1)
        # move_section renumbers positions; the loaded list keeps its order until reloaded.
        db.session.expire(guide, ["sections"])


def _compact(draft: Draft, moment: datetime) -> None:
    """Fold each section's logged changes into its note's text, as the live server does.

    The note's activity, and the automatic version compaction may keep, are dated `moment`.
    """
    for section in draft.sections:
        if section.note is None:
            continue
        compaction = note_services.prepare_compaction(section.note_id)
        if compaction is None:
            continue
        before = note_services.latest_version(section.note)
        note = note_services.store_compaction(compaction)
        note.last_activity_at = moment
        version = note_services.latest_version(note)
        if version is not None and version is not before:
            version.created_at = moment


def _date_status_change(draft: Draft, moment: datetime) -> None:
    """Date the draft's latest change of status."""
    workflow.status_changes_of(draft)[0].at = moment


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
    guide = demo.guide
    click.echo(f"The guide “{guide.title}”, in review: /c/{SLUG}/drafts/{guide.id}")
    click.echo(f"  its published version 1: /p/{SLUG}/{guide.slug}")
    click.echo()
    click.echo(f"Password of every demo account: {password}")
    click.echo(
        "These accounts are for demonstration only: anyone who knows the password can use them."
        " Do not load the demo on a server with real members."
    )
