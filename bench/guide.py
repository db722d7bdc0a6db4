"""Guide benchmark (docs/performance.md, "Guides"): render and export a big guide.

    .venv/bin/python bench/guide.py                 # 5 repeats of every measure
    .venv/bin/python bench/guide.py --repeat 9

The guide: 4 themes × 3 sections (plus the introduction), 300 source links spread over
them, each passage with a sentence of editorial text, and 3 signed-off experience sheets
placed as boxed inserts; two revisions that differ in every section. It is built once in a
fresh SQLite database migrated with `flask db upgrade`, from 4 closed sessions of 80 cards
each (by 24 people from 12 organisations), through the same services the pages use.

Measured in this process, each `--repeat` times, reported as medians (and the spread):
- the public page of the published version (`GET /p/<slug>/<guide>`, through the app's test
  client, compression included) and its compressed size; the page serves the body rendered
  when the version was published, so rendering that body (`html_of`: markdown, footnotes,
  sanitising) is measured too, as `render_body`;
- each export of that version: html, md, docx, odt, pdf (the same code as the download);
- comparing the two revisions (`GET .../compare?from=1&to=2`, the diff and its page).

Targets on the 2-core machine (the issue): HTML ≤ 0.3 s, DOCX/ODT ≤ 1 s, PDF ≤ 3 s, diff of
two revisions ≤ 0.5 s. Results are printed and appended as a JSON line (`"kind": "guide"`) to
bench/results/results.jsonl.
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from datetime import time as clock_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import BENCH, migrated_database  # noqa: E402

RESULTS = BENCH / "results" / "results.jsonl"
THEMES = ["Échanges", "Capacités", "Mobilisation", "Plaidoyer"]
KINDS = ["ngo", "network", "local_authority", "foundation"]
LINKS = 300


class GuideWorld:
    """A community with four closed sessions and a published guide built from them."""

    def __init__(self, workdir: Path):
        from cop import create_app

        self.app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": migrated_database(workdir / "guide.sqlite"),
                "SECRET_KEY": "bench",
                "WTF_CSRF_ENABLED": False,
                "ARGON2_TIME_COST": 1,
                "ARGON2_MEMORY_COST": 64,
                "ARGON2_PARALLELISM": 1,
            }
        )
        with self.app.app_context(), self.app.test_request_context():
            self._build()

    def _build(self) -> None:
        from cop.auth import services as auth_services
        from cop.communities import services as community_services
        from cop.communities.models import (
            Membership,
            Organisation,
            OrganisationKind,
            Role,
            Visibility,
        )
        from cop.drafts import services, workflow
        from cop.drafts.models import DraftStatus, SectionKind, SourceKind
        from cop.extensions import db
        from cop.notes.services import append_paragraph, compact_note
        from cop.workshops.models import Card, Cluster, WorkshopDay, WorkshopSession
        from cop.workshops.record import freeze

        host = auth_services.register_user("host@bench.test", "Host", "bench password 1")
        host.locale = "fr"
        community = community_services.create_community(
            host, "Bench", "bench", "Guide benchmark.", theme_names=THEMES
        )
        community.visibility = Visibility.PUBLIC  # its guide is read without logging in
        organisations = [
            Organisation(name=f"Organisation {i}", kind=OrganisationKind(KINDS[i % len(KINDS)]))
            for i in range(12)
        ]
        db.session.add_all(organisations)
        people = []
        for i in range(24):
            user = auth_services.register_user(f"p{i}@bench.test", f"P{i}", "bench password 1")
            user.locale = "fr"
            db.session.add(
                Membership(
                    user=user,
                    community=community,
                    role=Role.EDITOR if i < 3 else Role.PARTICIPANT,
                    organisation=organisations[i % 12],
                )
            )
            people.append(user)
        host_membership = db.session.scalar(
            db.select(Membership).filter_by(user_id=host.id, community_id=community.id)
        )
        host_membership.organisation = organisations[0]
        day = WorkshopDay(
            community=community,
            title="Journée 1",
            date=date(2027, 1, 14),
            starts_at_local=clock_time(9, 0),
            ends_at_local=clock_time(17, 0),
        )
        db.session.add(day)
        for index, theme in enumerate(community.active_themes):
            session = WorkshopSession(
                workshop_day=day,
                title=f"Atelier {theme.name}",
                theme=theme,
                starts_at_local=clock_time(9 + index, 0),
                duration_min=60,
                position=index,
            )
            db.session.add(session)
            db.session.flush()
            clusters = [
                Cluster(session_id=session.id, label=f"Regroupement {c}", position=c)
                for c in range(8)
            ]
            db.session.add_all(clusters)
            db.session.flush()
            for c in range(80):
                db.session.add(
                    Card(
                        session=session,
                        author=people[(c + index) % len(people)],
                        body=f"Idée {c} sur {theme.name} : des échanges réguliers, courts et "
                        f"traduits aident les membres à relayer l'information.",
                        cluster_id=clusters[c % 8].id,
                    )
                )
            db.session.flush()
            freeze(session, host)
        db.session.commit()

        editor = people[0]
        guide = services.create_guide(editor, community, "Repères : le guide du banc d'essai")
        db.session.flush()
        items = [
            (record.session_id, item)
            for record in services.records_of(community)
            for item in services.items_of_record(record.data)
            if item.kind is SourceKind.CARD
        ]
        theme_sections = [s for s in guide.sections if s.kind is not SectionKind.INTRO]
        for n in range(LINKS):
            section = theme_sections[n % len(theme_sections)]
            session_id, item = items[n % len(items)]
            services.insert_material(
                editor, section, session_id, item.kind, item.source_id, None, quote=n % 2 == 0
            )
            append_paragraph(section.note, f"Commentaire éditorial {n}, à reformuler.", editor)
        for s in range(3):
            author = people[3 + s]
            membership = db.session.scalar(
                db.select(Membership).filter_by(user_id=author.id, community_id=community.id)
            )
            sheet = services.create_sheet(author, membership, f"Fiche d'expérience {s}")
            db.session.flush()
            for part in sheet.sections:
                append_paragraph(part.note, f"{part.title} : ce que nous avons fait. " * 6, author)
            workflow.sign_off(author, sheet)
            services.place_sheet(editor, guide, sheet.id)
        for section in guide.sections:
            if section.note is not None:
                compact_note(section.note.id)
        workflow.save_revision(editor, guide, "Premier jet")
        for section in theme_sections:
            append_paragraph(section.note, "Une phrase ajoutée à la relecture.", editor)
        workflow.save_revision(editor, guide, "Après relecture")
        workflow.move(editor, guide, DraftStatus.REVIEW)
        workflow.move(editor, guide, DraftStatus.APPROVED)
        self.publication = workflow.publish(host, guide)
        db.session.commit()
        self.slug, self.guide_slug, self.guide_id = community.slug, guide.slug, guide.id
        self.snapshot = self.publication.revision.snapshot
        self.host_email = host.email


def timed(action, repeat: int) -> list[float]:
    """Run `action` `repeat` times (after one warm-up run) and return each run's seconds."""
    action()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    """Build the guide, measure, print and keep the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        world = GuideWorld(Path(workdir))
        print(f"guide built in {time.perf_counter() - started:.1f} s", flush=True)
        from cop.drafts import exports

        app = world.app
        client = app.test_client()
        public_path = f"/p/{world.slug}/{world.guide_slug}"
        sizes = {}

        def public_page():
            response = client.get(public_path, headers={"Accept-Encoding": "br, gzip"})
            assert response.status_code == 200, response.status_code
            sizes["public_page_compressed_bytes"] = len(response.get_data())
            sizes["public_page_encoding"] = response.headers.get("Content-Encoding")

        measures = {"public_page": timed(public_page, arguments.repeat)}
        with app.test_request_context():
            from cop.drafts.document import html_of

            # What publishing does once (the page then serves the stored result).
            measures["render_body"] = timed(lambda: html_of(world.snapshot), arguments.repeat)
            for fmt in ("html", "md", "docx", "odt", "pdf"):

                def export(fmt=fmt):
                    content, _mimetype = exports.export(world.snapshot, fmt)
                    sizes[f"{fmt}_bytes"] = len(content)

                measures[f"export_{fmt}"] = timed(export, arguments.repeat)
        assert client.post(
            "/login", data={"email": world.host_email, "password": "bench password 1"}
        ).status_code in (302, 303)
        compare_path = f"/c/{world.slug}/drafts/{world.guide_id}/compare?from=1&to=2"

        def compare():
            response = client.get(compare_path)
            assert response.status_code == 200, response.status_code

        measures["compare_revisions"] = timed(compare, arguments.repeat)

    result = {
        "kind": "guide",
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "sections": 13,
        "links": LINKS,
        "sheets": 3,
        "repeat": arguments.repeat,
        "median_s": {name: round(statistics.median(v), 4) for name, v in measures.items()},
        "min_s": {name: round(min(v), 4) for name, v in measures.items()},
        "max_s": {name: round(max(v), 4) for name, v in measures.items()},
        **sizes,
    }
    for name, values in measures.items():
        print(
            f"{name:20} median {statistics.median(values) * 1000:8.1f} ms"
            f"  (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
        )
    print(json.dumps(sizes))
    with open(RESULTS, "a") as out:
        out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
