"""Note forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional

from cop.auth.models import NAME_MAX


class NoteForm(FlaskForm):
    """Name a new note."""

    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=NAME_MAX)])


class VersionForm(FlaskForm):
    """Label a version saved on demand."""

    label = StringField(_l("Label"), validators=[Optional(), Length(max=NAME_MAX)])
