"""Workshop planning forms (Flask-WTF)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import URL, DataRequired, InputRequired, Length, NumberRange, Optional

from cop.auth.models import NAME_MAX
from cop.communities.models import DESCRIPTION_MAX
from cop.workshops.models import DEFAULT_TIME_ZONE, PARKED_ITEM_MAX, QUESTION_MAX, URL_MAX
from cop.workshops.services import LONGEST, MAX_DOTS, MIN_DURATION, DayPlan, SessionPlan

NONE = ""  # the value of "no theme" / "no facilitator"


class DayForm(FlaskForm):
    """Plan a workshop day."""

    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=NAME_MAX)])
    date = DateField(_l("Date"), validators=[InputRequired()])
    starts_at_local = TimeField(_l("Starts at"), validators=[InputRequired()])
    ends_at_local = TimeField(_l("Ends at"), validators=[InputRequired()])
    time_zone = SelectField(_l("Time zone"), default=DEFAULT_TIME_ZONE)
    description = TextAreaField(_l("Description"), validators=[Length(max=DESCRIPTION_MAX)])
    video_call_url = StringField(
        _l("Video call link"),
        validators=[Optional(), Length(max=URL_MAX), URL(require_tld=False)],
    )

    def plan(self) -> DayPlan:
        """Return what the form says, for the services."""
        return DayPlan(
            title=self.title.data,
            date=self.date.data,
            starts_at_local=self.starts_at_local.data,
            ends_at_local=self.ends_at_local.data,
            time_zone=self.time_zone.data,
            description=self.description.data or "",
            video_call_url=self.video_call_url.data or None,
        )


class DuplicateDayForm(FlaskForm):
    """Copy a day and its agenda to a new date."""

    date = DateField(_l("Date of the new day"), validators=[InputRequired()])


class SessionForm(FlaskForm):
    """Plan a session of a day's agenda."""

    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=NAME_MAX)])
    starts_at_local = TimeField(_l("Starts at"), validators=[InputRequired()])
    duration_min = IntegerField(
        _l("Duration (minutes)"),
        default=60,
        validators=[InputRequired(), NumberRange(min=MIN_DURATION, max=LONGEST)],
    )
    theme_id = SelectField(_l("Theme"), default=NONE)
    facilitator_id = SelectField(_l("Facilitator"), default=NONE)
    question = TextAreaField(_l("Question put to the group"), validators=[Length(max=QUESTION_MAX)])
    dots_per_person = IntegerField(
        _l("Dots per person"),
        default=3,
        validators=[InputRequired(), NumberRange(min=1, max=MAX_DOTS)],
    )
    max_dots_per_card = IntegerField(
        _l("At most per card"),
        default=2,
        validators=[InputRequired(), NumberRange(min=1, max=MAX_DOTS)],
    )
    allows_anonymous_cards = BooleanField(_l("Cards may be anonymous"))

    def fill_choices(self, themes, facilitators) -> None:
        """Offer the community's active themes and the people who may facilitate."""
        self.theme_id.choices = [(NONE, _l("No theme"))] + [
            (str(theme.id), theme.name) for theme in themes
        ]
        self.facilitator_id.choices = [(NONE, _l("Nobody yet"))] + [
            (str(membership.user_id), membership.user.display_name) for membership in facilitators
        ]

    def plan(self) -> SessionPlan:
        """Return what the form says, for the services."""
        return SessionPlan(
            title=self.title.data,
            starts_at_local=self.starts_at_local.data,
            duration_min=self.duration_min.data,
            theme_id=int(self.theme_id.data) if self.theme_id.data else None,
            facilitator_id=int(self.facilitator_id.data) if self.facilitator_id.data else None,
            question=self.question.data or "",
            dots_per_person=self.dots_per_person.data,
            max_dots_per_card=self.max_dots_per_card.data,
            allows_anonymous_cards=self.allows_anonymous_cards.data,
        )


class MoveSessionForm(FlaskForm):
    """Move a session to a place in the agenda."""

    position = IntegerField(_l("Position"), validators=[InputRequired(), NumberRange(min=0)])


class ParkItemForm(FlaskForm):
    """Park something to take up on the next day."""

    text = StringField(
        _l("Park for the next day"), validators=[DataRequired(), Length(max=PARKED_ITEM_MAX)]
    )
