"""PDF exports, laid out by WeasyPrint in a process of their own.

WeasyPrint lays out a big guide in seconds of pure Python. Done in the server process, that
would hold the event loop (eventlet or gevent) for as long, and every live note and room
served by that process would stall. So each PDF is made by a child process running this
file: it reads the standalone page (`exports.standalone_html(..., for_print=True)`) on
stdin and writes the PDF on stdout. The child imports only WeasyPrint, refuses every URL
the page names, caps its memory, and exits after one PDF, so a hostile document keeps
nothing; one that takes longer than `PDF_TIMEOUT` is killed.

Starting Python and importing WeasyPrint takes about a second, so one child is kept started
and waiting: `render` takes it and starts the next one. Only the first PDF after the server
starts (or two made at the same moment) pays that second.
"""

import atexit
import subprocess
import sys
import threading

PDF_TIMEOUT = 60
PDF_MEMORY = 2 * 1024**3  # bytes of address space for one child

# -P: the script's folder (cop/drafts) is not put first on the child's import path.
_COMMAND = [sys.executable, "-P", __file__]


class PdfError(Exception):
    """The child failed, was killed, or took longer than `PDF_TIMEOUT`."""


_lock = threading.Lock()
_waiting: subprocess.Popen | None = None


def render(page: str) -> bytes:
    """Return the PDF of `page` (a standalone HTML page), made by a child process."""
    global _waiting
    with _lock:
        child, _waiting = _waiting, None
    if child is None or child.poll() is not None:
        child = _start()
    with _lock:
        if _waiting is None:
            _waiting = _start()
    try:
        pdf, errors = child.communicate(page.encode("utf-8"), timeout=PDF_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        child.kill()
        child.communicate()
        raise PdfError(f"WeasyPrint took more than {PDF_TIMEOUT} s") from error
    if child.returncode != 0 or not pdf.startswith(b"%PDF-"):
        message = errors.decode("utf-8", "replace").strip()[-500:]
        raise PdfError(f"WeasyPrint failed ({child.returncode}): {message}")
    return pdf


def _start() -> subprocess.Popen:
    return subprocess.Popen(
        _COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


@atexit.register
def _stop_waiting_child() -> None:
    if _waiting is not None:
        _waiting.kill()
        _waiting.communicate()  # reaps it and closes its pipes


# --- The child ------------------------------------------------------------------------------


def _main() -> None:
    import logging
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (PDF_MEMORY, PDF_MEMORY))
    # Ready before the page arrives: this import is most of a child's start-up.
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    class RefusingFetcher(URLFetcher):
        """Fetch nothing: the page carries its styles, and content may name any URL."""

        def fetch(self, url, headers=None):
            """Refuse the URL (WeasyPrint then leaves the image out and logs a warning)."""
            raise ValueError(f"cop's exports fetch no URL ({url[:80]})")

    page = sys.stdin.buffer.read()
    if not page:  # the server stopped before it needed this child
        return
    # WeasyPrint's warnings (a refused URL, an unknown CSS property) are not failures.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    document = HTML(string=page.decode("utf-8"), url_fetcher=RefusingFetcher())
    sys.stdout.buffer.write(document.write_pdf())


if __name__ == "__main__":
    _main()
