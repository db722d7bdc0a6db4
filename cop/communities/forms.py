"""Community forms (Flask-WTF)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from cop.auth.models import NAME_MAX
from cop.communities.models import DESCRIPTION_MAX, SLUG_MAX, OrganisationKind, Visibility
from cop.core.formatting import country_choices, is_country_code
from cop.core.labels import ORGANISATION_KIND_LABELS, ROLE_LABELS, VISIBILITY_LABELS

THEMES_MAX = 30
NEW_ORGANISATION = "new"


def _name():
    return StringField(_l("Name"), validators=[DataRequired(), Length(max=NAME_MAX)])


def _description():
    return TextAreaField(_l("Description"), validators=[Length(max=DESCRIPTION_MAX)])


def _visibility():
    return RadioField(
        _l("Visibility"),
        choices=[SelectChoice(value.value, label) for value, label in VISIBILITY_LABELS.items()],
        default=Visibility.PRIVATE.value,
    )


class OrganisationFieldsMixin:
    """Choose one's organisation: an existing one, or a new one described here."""

    organisation = SelectField(_l("Your organisation"), validators=[Optional()], coerce=str)
    organisation_name = StringField(
        _l("Name of the new organisation"), validators=[Length(max=NAME_MAX)]
    )
    organisation_kind = SelectField(
        _l("Kind"),
        choices=[
            SelectChoice(kind.value, label) for kind, label in ORGANISATION_KIND_LABELS.items()
        ],
        default=OrganisationKind.NGO.value,
    )
    organisation_country = SelectField(_l("Country"), validators=[Optional()])

    def fill_organisation_choices(self, organisations, required: bool) -> None:
        """Offer the existing organisations, the "new" choice, and the countries."""
        none = [] if required else [SelectChoice("", _l("None for now"))]
        self.organisation.choices = (
            none
            + [
                SelectChoice(str(organisation.id), organisation.name)
                for organisation in organisations
            ]
            + [
                SelectChoice(
                    NEW_ORGANISATION, _l("Another organisation, not listed: describe it below")
                )
            ]
        )
        self.organisation_country.choices = [SelectChoice("", "—")] + [
            SelectChoice(code, name) for code, name in country_choices()
        ]
        self._organisation_required = required

    def validate_organisation_fields(self) -> bool:
        """Check the organisation choice: a new one needs a name."""
        if self.organisation.data == NEW_ORGANISATION:
            if not (self.organisation_name.data or "").strip():
                self.organisation_name.errors.append(_l("Give the name of your organisation."))
                return False
            country = self.organisation_country.data
            if country and not is_country_code(country):
                self.organisation_country.errors.append(_l("Choose a country from the list."))
                return False
        elif not self.organisation.data and self._organisation_required:
            self.organisation.errors.append(_l("Choose your organisation."))
            return False
        return True


class CreateCommunityForm(OrganisationFieldsMixin, FlaskForm):
    """Create a community."""

    name = _name()
    slug = StringField(_l("Address"), validators=[Optional(), Length(max=SLUG_MAX)])
    description = _description()
    visibility = _visibility()
    themes = TextAreaField(_l("Themes, one per line, in order"))

    def theme_names(self) -> list[str]:
        """Return the themes typed, one per line."""
        return (self.themes.data or "").splitlines()

    def validate_themes(self, field) -> None:
        """Refuse too many or too long theme names."""
        from wtforms.validators import ValidationError

        names = [name.strip() for name in self.theme_names() if name.strip()]
        if len(names) > THEMES_MAX:
            raise ValidationError(_l("At most %(max)d themes.", max=THEMES_MAX))
        if any(len(name) > NAME_MAX for name in names):
            raise ValidationError(_l("A theme name has at most %(max)d characters.", max=NAME_MAX))


class EditCommunityForm(FlaskForm):
    """Change a community's name, description and visibility."""

    name = _name()
    description = _description()
    visibility = _visibility()


class ThemeForm(FlaskForm):
    """Name a theme."""

    name = StringField(_l("Theme name"), validators=[DataRequired(), Length(max=NAME_MAX)])


class MoveThemeForm(FlaskForm):
    """Move a theme to a position."""

    position = IntegerField(
        _l("Position"), validators=[InputRequired(), NumberRange(min=0, max=THEMES_MAX)]
    )


class InvitationForm(FlaskForm):
    """Create an invitation link."""

    role = SelectField(_l("Role"))
    expires_in_days = IntegerField(
        _l("Valid for (days)"),
        default=14,
        validators=[InputRequired(), NumberRange(min=1, max=365)],
    )
    max_uses = IntegerField(
        _l("Maximum number of uses"),
        default=25,
        validators=[InputRequired(), NumberRange(min=1, max=1000)],
    )

    def fill_role_choices(self, roles) -> None:
        """Offer only the roles the inviter may hand out."""
        self.role.choices = [SelectChoice(role.value, ROLE_LABELS[role]) for role in roles]
        if not self.role.data and roles:
            self.role.data = roles[-2].value if len(roles) > 1 else roles[0].value


class RoleForm(FlaskForm):
    """Change a member's role."""

    role = SelectField(
        _l("Role"), choices=[SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()]
    )


class JoinForm(OrganisationFieldsMixin, FlaskForm):
    """Join a community through an invitation."""
