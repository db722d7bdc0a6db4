"""Translated names for the values of cop's enums, shown in pages and forms."""

from flask_babel import lazy_gettext as _l

from cop.communities.models import OrganisationKind, Role, Visibility
from cop.drafts.models import DraftStatus, SourceKind

ROLE_LABELS = {
    Role.HOST: _l("Host"),
    Role.FACILITATOR: _l("Facilitator"),
    Role.EDITOR: _l("Editor"),
    Role.PARTICIPANT: _l("Participant"),
    Role.OBSERVER: _l("Observer"),
}
ORGANISATION_KIND_LABELS = {
    OrganisationKind.NGO: _l("NGO"),
    OrganisationKind.NETWORK: _l("Network or platform of NGOs"),
    OrganisationKind.LOCAL_AUTHORITY: _l("Local authority"),
    OrganisationKind.FOUNDATION: _l("Foundation"),
    OrganisationKind.RESEARCH: _l("Research"),
    OrganisationKind.PUBLIC_AGENCY: _l("Public agency"),
    OrganisationKind.COMPANY: _l("Company"),
    OrganisationKind.OTHER: _l("Other"),
}
VISIBILITY_LABELS = {
    Visibility.PRIVATE: _l("Private: only members see it"),
    Visibility.PUBLIC: _l("Public: anyone sees its home and published guides"),
}
DRAFT_STATUS_LABELS = {
    DraftStatus.DRAFT: _l("Draft"),
    DraftStatus.REVIEW: _l("In review"),
    DraftStatus.APPROVED: _l("Approved"),
    DraftStatus.SIGNED_OFF: _l("Signed off"),
}
SOURCE_KIND_LABELS = {
    SourceKind.CARD: _l("Card"),
    SourceKind.CLUSTER: _l("Cluster"),
    SourceKind.TAKEAWAY: _l("Takeaway"),
    SourceKind.NOTE_EXCERPT: _l("Note excerpt"),
}


def role_label(role) -> str:
    """Return the translated name of a role."""
    return str(ROLE_LABELS[Role(role)])


def organisation_kind_label(kind) -> str:
    """Return the translated name of an organisation kind."""
    return str(ORGANISATION_KIND_LABELS[OrganisationKind(kind)])


def draft_status_label(status) -> str:
    """Return the translated name of a draft's status."""
    return str(DRAFT_STATUS_LABELS[DraftStatus(status)])


def source_kind_label(kind) -> str:
    """Return the translated name of a kind of source."""
    return str(SOURCE_KIND_LABELS[SourceKind(kind)])
