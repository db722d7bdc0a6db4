"""The foundation's whole story over HTTP, as two people live it."""

from cop.auth.models import User
from cop.communities.models import Invitation, Membership, Role
from cop.extensions import db


def test_register_create_invite_join_and_change_role(client, app):
    response = client.post(
        "/register",
        data={
            "email": "Ana@Example.org",
            "display_name": "Ana",
            "password": "a long enough password",
            "confirm": "a long enough password",
        },
    )
    assert response.status_code == 302

    response = client.post(
        "/communities/new",
        data={
            "name": "Réseaux et plateformes",
            "slug": "",
            "description": "We share what works.",
            "visibility": "private",
            "themes": "Information sharing\nAdvocacy\n\nAdvocacy",
            "organisation": "new",
            "organisation_name": "Plateforme des ONG",
            "organisation_kind": "network",
            "organisation_country": "FR",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/c/reseaux-et-plateformes")
    home = client.get("/c/reseaux-et-plateformes").get_data(as_text=True)
    assert "Information sharing" in home and "Advocacy" in home

    response = client.post(
        "/c/reseaux-et-plateformes/invitations",
        data={"role": "editor", "expires_in_days": "7", "max_uses": "3"},
    )
    assert response.status_code == 302
    with app.app_context():
        token = db.session.scalar(db.select(Invitation.token))
    client.post("/logout")

    # The invited person opens the link, registers, comes back and joins.
    page = client.get(f"/join/{token}").get_data(as_text=True)
    assert "Log in" in page and "Editor" in page
    response = client.post(
        f"/register?next=/join/{token}",
        data={
            "email": "ben@example.org",
            "display_name": "Ben",
            "password": "another long password",
            "confirm": "another long password",
        },
    )
    assert response.headers["Location"] == f"/join/{token}"
    response = client.post(
        f"/join/{token}",
        data={
            "organisation": "new",
            "organisation_name": "Collectif Ouest",
            "organisation_kind": "ngo",
            "organisation_country": "BE",
        },
    )
    assert response.status_code == 302

    directory = client.get("/c/reseaux-et-plateformes/members").get_data(as_text=True)
    assert "Ben" in directory and "Collectif Ouest" in directory and "Editor" in directory
    client.post("/logout")

    client.post("/login", data={"email": "ana@example.org", "password": "a long enough password"})
    with app.app_context():
        ben = db.session.scalar(db.select(User).filter_by(email="ben@example.org"))
        membership_id = db.session.scalar(db.select(Membership.id).filter_by(user_id=ben.id))
    response = client.post(
        f"/c/reseaux-et-plateformes/members/{membership_id}/role", data={"role": "facilitator"}
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Membership, membership_id).role is Role.FACILITATOR
        assert db.session.scalar(db.select(Invitation.uses)) == 1
