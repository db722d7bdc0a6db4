"""Account forms (Flask-WTF: every one carries a CSRF token)."""

from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length

from cop.auth.models import EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN

TIME_ZONES = sorted(available_timezones() - {"localtime", "Factory"})


def _password_field(label):
    return PasswordField(
        label,
        description=_l("At least %(min)d characters.", min=PASSWORD_MIN),
        validators=[
            InputRequired(),
            Length(
                min=PASSWORD_MIN,
                max=PASSWORD_MAX,
                message=_l(
                    "The password must have between %(min)d and %(max)d characters.",
                    min=PASSWORD_MIN,
                    max=PASSWORD_MAX,
                ),
            ),
        ],
    )


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _email_field():
    return EmailField(
        _l("Email"),
        filters=[_strip],
        validators=[
            DataRequired(),
            Length(max=EMAIL_MAX),
            Email(message=_l("Enter a valid email address."), check_deliverability=False),
        ],
    )


def _name_field():
    return StringField(_l("Display name"), validators=[DataRequired(), Length(max=NAME_MAX)])


class RegisterForm(FlaskForm):
    """Create an account."""

    email = _email_field()
    display_name = _name_field()
    password = _password_field(_l("Password"))
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[EqualTo("password", message=_l("The two passwords differ."))],
    )


class LoginForm(FlaskForm):
    """Log in with email and password."""

    email = EmailField(
        _l("Email"), filters=[_strip], validators=[DataRequired(), Length(max=EMAIL_MAX)]
    )
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=PASSWORD_MAX)])


class PreferencesForm(FlaskForm):
    """Change display name, interface language and time zone."""

    display_name = _name_field()
    locale = SelectField(
        _l("Interface language"),
        choices=[SelectChoice("en", "English"), SelectChoice("fr", "Français")],
    )
    time_zone = SelectField(_l("Time zone"), choices=[SelectChoice(zone) for zone in TIME_ZONES])


class ChangePasswordForm(FlaskForm):
    """Change one's password, proving the current one."""

    current_password = PasswordField(_l("Current password"), validators=[InputRequired()])
    password = _password_field(_l("New password"))
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[EqualTo("password", message=_l("The two passwords differ."))],
    )


class ResetRequestForm(FlaskForm):
    """Ask for a password reset link."""

    email = _email_field()


class ResetPasswordForm(FlaskForm):
    """Choose a new password from a reset link."""

    password = _password_field(_l("New password"))
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[EqualTo("password", message=_l("The two passwords differ."))],
    )


class ApiTokenForm(FlaskForm):
    """Create a personal API token."""

    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=NAME_MAX)])


class DeleteAccountForm(FlaskForm):
    """Delete one's account, confirmed with the password."""

    password = PasswordField(_l("Your password"), validators=[InputRequired()])
