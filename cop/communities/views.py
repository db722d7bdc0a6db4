"""Community pages: create, home, edit, themes, members, invitations, join."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from cop.auth.models import NAME_MAX
from cop.communities import services
from cop.communities.forms import (
    NEW_ORGANISATION,
    CreateCommunityForm,
    EditCommunityForm,
    InvitationForm,
    JoinForm,
    MoveThemeForm,
    RoleForm,
    ThemeForm,
)
from cop.communities.models import Organisation, OrganisationKind, Role, Visibility
from cop.core.errors import ServiceError
from cop.core.labels import role_label
from cop.core.permissions import (
    Action,
    can,
    can_invite_role,
    community_or_abort,
    invitation_or_abort,
    invitations_managed_by,
    membership_of,
    roles_invitable_by,
)
from cop.core.time import utcnow
from cop.drafts.workflow import published_guides
from cop.extensions import db
from cop.notes.services import notes_of
from cop.workshops.services import days_of

bp = Blueprint("communities", __name__)


def _form_status(form) -> int:
    return 400 if form.errors or getattr(form, "form_errors", None) else 200


def _chosen_organisation(form):
    """Return the organisation picked or described in the form (creating a new one)."""
    choice = form.organisation.data
    if choice == NEW_ORGANISATION:
        name = form.organisation_name.data.strip()
        existing = services.find_organisation_by_name(name)
        if existing is not None:
            return existing
        return services.create_organisation(
            name, OrganisationKind(form.organisation_kind.data), form.organisation_country.data
        )
    if choice:
        organisation = db.session.get(Organisation, int(choice))
        if organisation is None:
            raise ServiceError(_("Choose your organisation."))
        return organisation
    return None


@bp.route("/communities/new", methods=["GET", "POST"])
@login_required
def create():
    """Create a community and become its host."""
    form = CreateCommunityForm()
    form.fill_organisation_choices(services.all_organisations(), required=False)
    if form.validate_on_submit() and form.validate_organisation_fields():
        slug = (
            form.slug.data.strip().lower() if form.slug.data else services.slugify(form.name.data)
        )
        try:
            community = services.create_community(
                current_user,
                form.name.data,
                slug,
                form.description.data or "",
                Visibility(form.visibility.data),
                form.theme_names(),
                _chosen_organisation(form),
            )
        except ServiceError as error:
            db.session.rollback()
            for field, messages in error.fields.items():
                getattr(form, field).errors = list(getattr(form, field).errors) + messages
            if not error.fields:
                form.form_errors.append(error.message)
        else:
            db.session.commit()
            flash(_("The community is created. Invite its members next."), "success")
            return redirect(url_for("communities.home", slug=community.slug))
    return render_template("communities/create.html", form=form), _form_status(form)


@bp.get("/c/<slug>")
def home(slug: str):
    """Show a community's home: description, themes, members, programme, drafts."""
    community, membership = community_or_abort(slug, Action.VIEW_HOME)
    show_members_area = can(current_user, community, Action.VIEW_MEMBERS_AREA)
    members = services.members_of(community) if show_members_area else []
    return render_template(
        "communities/home.html",
        community=community,
        membership=membership,
        members=members,
        notes=notes_of(community) if show_members_area else [],
        guides=published_guides(community),
        workshop_days=days_of(community) if show_members_area else [],
        can_write_notes=can(current_user, community, Action.WRITE_NOTES),
        show_members_area=show_members_area,
        can_manage=can(current_user, community, Action.MANAGE_COMMUNITY),
        can_invite=can(current_user, community, Action.INVITE),
    )


@bp.route("/c/<slug>/edit", methods=["GET", "POST"])
def edit(slug: str):
    """Edit the community and its themes (hosts)."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    form = EditCommunityForm(obj=None if request.method == "POST" else community)
    if request.method == "GET":
        form.visibility.data = community.visibility.value
    if form.validate_on_submit():
        services.update_community(
            community,
            form.name.data,
            form.description.data or "",
            Visibility(form.visibility.data),
        )
        db.session.commit()
        flash(_("The community is updated."), "success")
        return redirect(url_for("communities.edit", slug=slug))
    return _edit_page(community, form=form)


def _edit_page(community, form=None, theme_form=None, status=None):
    form = form or EditCommunityForm(formdata=None, obj=community)
    if form.visibility.data is None or not request.form:
        form.visibility.data = community.visibility.value
    theme_form = theme_form or ThemeForm(formdata=None)
    return render_template(
        "communities/edit.html",
        community=community,
        form=form,
        theme_form=theme_form,
        rename_form=ThemeForm(formdata=None),
    ), status or max(_form_status(form), _form_status(theme_form))


@bp.post("/c/<slug>/themes")
def add_theme(slug: str):
    """Add a theme (hosts)."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    form = ThemeForm()
    if form.validate_on_submit():
        try:
            services.add_theme(community, form.name.data)
        except ServiceError as error:
            db.session.rollback()
            form.name.errors = list(form.name.errors) + [error.message]
        else:
            db.session.commit()
            flash(_("The theme is added."), "success")
            return redirect(url_for("communities.edit", slug=slug) + "#themes")
    return _edit_page(community, theme_form=form)


def _theme_or_404(community, theme_id):
    theme = services.theme_of(community, theme_id)
    if theme is None:
        abort(404)
    return theme


@bp.post("/c/<slug>/themes/<int:theme_id>/rename")
def rename_theme(slug: str, theme_id: int):
    """Rename a theme (hosts)."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    theme = _theme_or_404(community, theme_id)
    form = ThemeForm()
    if form.validate_on_submit():
        try:
            services.rename_theme(theme, form.name.data)
        except ServiceError as error:
            db.session.rollback()
            flash(error.message, "error")
            return _edit_page(community, status=error.status)
        db.session.commit()
        flash(_("The theme is renamed."), "success")
        return redirect(url_for("communities.edit", slug=slug) + "#themes")
    flash(_("A theme needs a name of at most %(max)d characters.", max=NAME_MAX), "error")
    return _edit_page(community, status=400)


@bp.post("/c/<slug>/themes/<int:theme_id>/move")
def move_theme(slug: str, theme_id: int):
    """Move a theme up or down the list (hosts)."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    theme = _theme_or_404(community, theme_id)
    form = MoveThemeForm()
    if not form.validate_on_submit():
        flash(_("Choose a valid position."), "error")
        return _edit_page(community, status=400)
    services.move_theme(theme, form.position.data)
    db.session.commit()
    return redirect(url_for("communities.edit", slug=slug) + f"#theme-{theme.id}")


@bp.post("/c/<slug>/themes/<int:theme_id>/archive")
def archive_theme(slug: str, theme_id: int):
    """Archive a theme, or restore it with `restore=1` (hosts)."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    theme = _theme_or_404(community, theme_id)
    restore = request.form.get("restore") == "1"
    services.set_theme_archived(theme, archived=not restore)
    db.session.commit()
    flash(_("The theme is restored.") if restore else _("The theme is archived."), "success")
    return redirect(url_for("communities.edit", slug=slug) + "#themes")


@bp.get("/c/<slug>/members")
def members(slug: str):
    """List the members with their organisation, and counts by organisation kind."""
    community, membership = community_or_abort(slug, Action.VIEW_MEMBERS_AREA)
    memberships = services.members_of(community)
    return render_template(
        "communities/members.html",
        community=community,
        memberships=memberships,
        counts=services.count_by_organisation_kind(memberships),
        can_manage=can(current_user, community, Action.MANAGE_COMMUNITY),
        role_form=RoleForm(formdata=None),
        roles=list(Role),
    )


@bp.post("/c/<slug>/members/<int:membership_id>/role")
def change_role(slug: str, membership_id: int):
    """Change a member's role (hosts); the last host keeps theirs."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    target = services.membership_in(community, membership_id) or abort(404)
    form = RoleForm()
    if not form.validate_on_submit():
        flash(_("Choose a role from the list."), "error")
        return redirect(url_for("communities.members", slug=slug)), 303
    try:
        services.change_role(target, Role(form.role.data))
    except ServiceError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("communities.members", slug=slug)), 303
    db.session.commit()
    flash(
        _(
            "%(name)s now has the role %(role)s.",
            name=target.user.display_name,
            role=role_label(target.role),
        ),
        "success",
    )
    return redirect(url_for("communities.members", slug=slug))


@bp.post("/c/<slug>/members/<int:membership_id>/remove")
def remove_member(slug: str, membership_id: int):
    """Remove a member (hosts); the last host stays."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    target = services.membership_in(community, membership_id) or abort(404)
    name = target.user.display_name
    try:
        services.remove_member(target)
    except ServiceError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("communities.members", slug=slug)), 303
    db.session.commit()
    flash(_("%(name)s is no longer a member.", name=name), "success")
    return redirect(url_for("communities.members", slug=slug))


@bp.route("/c/<slug>/invitations", methods=["GET", "POST"])
def invitations(slug: str):
    """List invitations and create one (hosts; facilitators for participants and observers)."""
    community, membership = community_or_abort(slug, Action.INVITE)
    roles = roles_invitable_by(membership)
    form = InvitationForm()
    form.fill_role_choices(roles)
    if form.validate_on_submit():
        role = Role(form.role.data)
        if not can_invite_role(membership, role):
            abort(403)
        invitation = services.create_invitation(
            current_user, community, role, form.expires_in_days.data, form.max_uses.data
        )
        db.session.commit()
        flash(_("The invitation link is ready: share it with the people you invite."), "success")
        return redirect(
            url_for("communities.invitations", slug=slug) + f"#invitation-{invitation.id}"
        )
    return render_template(
        "communities/invitations.html",
        community=community,
        form=form,
        invitations=invitations_managed_by(membership),
        now=utcnow(),
    ), _form_status(form)


@bp.post("/c/<slug>/invitations/<int:invitation_id>/revoke")
def revoke_invitation(slug: str, invitation_id: int):
    """Revoke an invitation link."""
    _community, membership = community_or_abort(slug, Action.INVITE)
    invitation = invitation_or_abort(membership, invitation_id)
    services.revoke_invitation(invitation)
    db.session.commit()
    flash(_("The invitation is revoked."), "success")
    return redirect(url_for("communities.invitations", slug=slug))


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str):
    """Join a community through an invitation link (log in or register first)."""
    try:
        invitation = services.check_invitation(token)
    except services.InvitationError as error:
        return render_template("communities/join_invalid.html", message=error.message), 404
    community = invitation.community
    if not current_user.is_authenticated:
        return render_template("communities/join_anonymous.html", invitation=invitation)
    if membership_of(current_user, community) is not None:
        flash(_("You are already a member of this community."), "success")
        return redirect(url_for("communities.home", slug=community.slug))
    form = JoinForm()
    form.fill_organisation_choices(services.all_organisations(), required=True)
    if form.validate_on_submit() and form.validate_organisation_fields():
        try:
            services.accept_invitation(current_user, token, _chosen_organisation(form))
        except services.InvitationError as error:
            db.session.rollback()
            return render_template("communities/join_invalid.html", message=error.message), 404
        except ServiceError as error:
            db.session.rollback()
            form.form_errors.append(error.message)
        else:
            db.session.commit()
            flash(_("Welcome to %(name)s.", name=community.name), "success")
            return redirect(url_for("communities.home", slug=community.slug))
    return render_template("communities/join.html", invitation=invitation, form=form), _form_status(
        form
    )
