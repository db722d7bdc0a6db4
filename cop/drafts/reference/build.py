"""Build reference.docx and reference.odt: pandoc's own defaults, with block quotes boxed.

Draft exports (cop/drafts/exports.py) hand these files to pandoc as `--reference-doc`, so
DOCX and ODT take their styles from them. They are pandoc's default reference documents
(`pandoc --print-default-data-file reference.docx`, and the same for `.odt`) with one change:
the block quote style — "Block Text" in Word, "Quotations" in OpenDocument — gets a thin grey
border and a light grey background, which is how experience sheets (block quotes in the
draft's markdown) appear as boxed inserts. Adjacent paragraphs of the same bordered style
join into one box in both Word and LibreOffice.

Run it again after upgrading pypandoc-binary, from the repository root, and commit the
result: `.venv/bin/python cop/drafts/reference/build.py`. Zip entries get a fixed date, so
rebuilding with the same pandoc gives the same files.
"""

import re
import subprocess
import zipfile
from io import BytesIO
from pathlib import Path

import pypandoc

HERE = Path(__file__).parent
FIXED_DATE = (2026, 1, 1, 0, 0, 0)
BORDER_COLOUR = "7F7F7F"
SHADE_COLOUR = "F2F2F2"

DOCX_BOX = (
    "<w:pBdr>"
    + "".join(
        f'<w:{side} w:val="single" w:sz="6" w:space="4" w:color="{BORDER_COLOUR}" />'
        for side in ("top", "left", "bottom", "right")
    )
    + "</w:pBdr>"
    + f'<w:shd w:val="clear" w:color="auto" w:fill="{SHADE_COLOUR}" />'
)
ODT_BOX = (
    f'fo:border="0.5pt solid #{BORDER_COLOUR.lower()}" fo:padding="0.06in" '
    f'fo:background-color="#{SHADE_COLOUR.lower()}" style:join-border="true"'
)


def default_data_file(name: str) -> bytes:
    """Return one of pandoc's default data files, as the pandoc of pypandoc-binary has it."""
    return subprocess.run(
        [pypandoc.get_pandoc_path(), "--print-default-data-file", name],
        capture_output=True,
        check=True,
    ).stdout


def box_docx_styles(styles: str) -> str:
    """Give the "Block Text" paragraph style a border and a shade (first in its pPr)."""
    pattern = re.compile(r'(<w:style w:type="paragraph" w:styleId="BlockText">.*?<w:pPr>)', re.S)
    boxed, count = pattern.subn(lambda match: match.group(1) + DOCX_BOX, styles, count=1)
    if count != 1:
        raise SystemExit('pandoc\'s reference.docx has no "Block Text" style with a pPr')
    return boxed


def box_odt_styles(styles: str) -> str:
    """Give the "Quotations" paragraph style a border, padding and a background."""
    pattern = re.compile(
        r'(<style:style style:name="Quotations"[^>]*>\s*<style:paragraph-properties)', re.S
    )
    boxed, count = pattern.subn(lambda match: f"{match.group(1)} {ODT_BOX}", styles, count=1)
    if count != 1:
        raise SystemExit('pandoc\'s reference.odt has no "Quotations" paragraph style')
    return boxed


def rewrite(archive: bytes, member: str, change) -> bytes:
    """Return a copy of a zip archive with `member` changed, entries in the same order.

    The order and each entry's compression are kept: ODT needs `mimetype` first, stored.
    """
    output = BytesIO()
    with zipfile.ZipFile(BytesIO(archive)) as source, zipfile.ZipFile(output, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == member:
                data = change(data.decode("utf-8")).encode("utf-8")
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE)
            entry.compress_type = info.compress_type
            entry.external_attr = 0o644 << 16
            target.writestr(entry, data)
    return output.getvalue()


def main() -> None:
    """Write reference.docx and reference.odt beside this script."""
    docx = rewrite(default_data_file("reference.docx"), "word/styles.xml", box_docx_styles)
    (HERE / "reference.docx").write_bytes(docx)
    odt = rewrite(default_data_file("reference.odt"), "styles.xml", box_odt_styles)
    (HERE / "reference.odt").write_bytes(odt)
    print(f"wrote {HERE / 'reference.docx'} and {HERE / 'reference.odt'}")


if __name__ == "__main__":
    main()
