"""Account pages: register, log in and out, preferences, password, tokens, data, deletion."""

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from cop.auth import services
from cop.auth.forms import (
    ApiTokenForm,
    ChangePasswordForm,
    DeleteAccountForm,
    LoginForm,
    PreferencesForm,
    RegisterForm,
    ResetPasswordForm,
    ResetRequestForm,
)
from cop.auth.models import ApiToken
from cop.core.errors import ServiceError
from cop.core.mail import send_mail
from cop.core.safety import safe_next_url
from cop.extensions import db, limiter

bp = Blueprint("auth", __name__)


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _submitted_email() -> str:
    """Key the per-account login limit on the email typed in the form."""
    return "account:" + services.normalise_email(request.form.get("email", ""))[:254]


def _start_session(user) -> None:
    """Log the user in on a fresh session (no fixation), keeping the chosen language."""
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale
    session["login_id"] = services.new_login_id()
    login_user(user)


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Create an account and log in."""
    if current_user.is_authenticated:
        return redirect(url_for("core.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = services.register_user(
                form.email.data, form.display_name.data, form.password.data, session.get("locale")
            )
        except ServiceError as error:
            form.email.errors.append(error.message)
        else:
            db.session.commit()
            _start_session(user)
            flash(_("Welcome to cop, %(name)s.", name=user.display_name), "success")
            return redirect(safe_next_url(request.args.get("next")) or url_for("core.index"))
    return render_template("auth/register.html", form=form), 400 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"])
@limiter.limit(_login_rate_limit, methods=["POST"], key_func=_submitted_email)
def login():
    """Log in with email and password."""
    if current_user.is_authenticated:
        return redirect(safe_next_url(request.args.get("next")) or url_for("core.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None:
            db.session.commit()  # a rehashed password, if argon2 parameters changed
            _start_session(user)
            return redirect(safe_next_url(request.args.get("next")) or url_for("core.index"))
        form.form_errors.append(_("Unknown email or wrong password."))
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


@bp.post("/logout")
def logout():
    """Log out, end this session for good (its live sockets close too), and clear it."""
    services.end_login(session.get("login_id"))
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are logged out."), "success")
    return redirect(url_for("core.index"))


def _account_page(preferences=None, password_form=None, token_form=None, new_token=None):
    """Render the account page; forms passed in keep what was typed and their errors."""
    user = current_user._get_current_object()
    preferences = preferences or PreferencesForm(
        formdata=None,
        display_name=user.display_name,
        locale=user.locale or str(get_locale()),
        time_zone=user.time_zone or current_app.config["BABEL_DEFAULT_TIMEZONE"],
    )
    password_form = password_form or ChangePasswordForm(formdata=None)
    token_form = token_form or ApiTokenForm(formdata=None)
    tokens = db.session.scalars(
        select(ApiToken).filter_by(user_id=user.id).order_by(ApiToken.created_at)
    ).all()
    has_errors = any(form.errors for form in (preferences, password_form, token_form))
    g.no_store = True  # the page may show a new API token once
    return render_template(
        "auth/account.html",
        preferences=preferences,
        password_form=password_form,
        token_form=token_form,
        tokens=tokens,
        new_token=new_token,
    ), 400 if has_errors else 200


@bp.get("/account")
@login_required
def account():
    """Show the account page."""
    return _account_page()


@bp.post("/account/preferences")
@login_required
def update_preferences():
    """Save display name, language and time zone."""
    form = PreferencesForm()
    if not form.validate_on_submit():
        return _account_page(preferences=form)
    current_user.display_name = form.display_name.data.strip()
    current_user.locale = form.locale.data
    current_user.time_zone = form.time_zone.data
    session["locale"] = form.locale.data
    db.session.commit()
    flash(_("Your preferences are saved."), "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/password")
@login_required
def change_password():
    """Change the password; other sessions end."""
    form = ChangePasswordForm()
    if form.validate_on_submit() and not services.check_password(
        current_user, form.current_password.data
    ):
        form.current_password.errors.append(_("This is not your current password."))
    if form.errors or not form.is_submitted():
        return _account_page(password_form=form)
    services.set_password(current_user, form.password.data)
    db.session.commit()
    _start_session(current_user._get_current_object())
    flash(_("Your password is changed."), "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/tokens")
@login_required
def create_token():
    """Create a personal API token and show it once."""
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _account_page(token_form=form)
    _token, secret = services.create_api_token(current_user, form.name.data)
    db.session.commit()
    return _account_page(new_token=secret)


@bp.post("/account/tokens/<int:token_id>/delete")
@login_required
def delete_token(token_id: int):
    """Revoke one of one's API tokens."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        return render_template("errors/error.html", status=404, message=_("No such token.")), 404
    db.session.delete(token)
    db.session.commit()
    flash(_("The token is revoked."), "success")
    return redirect(url_for("auth.account"))


@bp.get("/account/export.json")
@login_required
def export_data():
    """Download everything cop holds about oneself."""
    response = jsonify(services.export_personal_data(current_user))
    response.headers["Content-Disposition"] = 'attachment; filename="cop-my-data.json"'
    g.no_store = True
    return response


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
def delete_account():
    """Delete one's account after confirming the password."""
    form = DeleteAccountForm()
    if form.validate_on_submit():
        if not services.check_password(current_user, form.password.data):
            form.password.errors.append(_("This is not your current password."))
        else:
            try:
                services.delete_account(current_user._get_current_object())
            except ServiceError as error:
                db.session.rollback()
                form.form_errors.append(error.message)
            else:
                db.session.commit()
                logout_user()
                session.clear()
                flash(_("Your account is deleted."), "success")
                return redirect(url_for("core.index"))
    return render_template("auth/delete.html", form=form), 400 if form.errors else 200


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"])
def request_password_reset():
    """Send a password reset link (the same answer whether the account exists or not)."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        user = services.find_user_by_email(form.email.data)
        if user is not None and not user.is_deleted:
            link = url_for(
                "auth.reset_password",
                token=services.make_password_reset_token(user),
                _external=True,
            )
            send_mail(
                user.email,
                _("Reset your cop password"),
                _(
                    "To choose a new password, open this link within an hour:\n\n%(link)s\n\n"
                    "If you did not ask for it, ignore this message.",
                    link=link,
                ),
            )
        flash(
            _("If an account uses this address, a reset link is on its way."),
            "success",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_request.html", form=form), 400 if form.errors else 200


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Choose a new password from a reset link."""
    user = services.user_for_password_reset(token)
    if user is None:
        return render_template(
            "errors/error.html",
            status=400,
            message=_("This reset link is invalid, expired or already used."),
        ), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        services.set_password(user, form.password.data)
        db.session.commit()
        flash(_("Your password is changed. You can log in."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form), 400 if form.errors else 200
