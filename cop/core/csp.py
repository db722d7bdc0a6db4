"""Widen the Content-Security-Policy for one response, only as far as its page asks.

Every page gets `cop.CONTENT_SECURITY_POLICY`: scripts and styles from this site only.
The live editor needs two exceptions, and only its pages ask for them:

- CodeMirror writes its styles into a `<style>` element. A page that calls `csp_nonce()`
  (the template hands the nonce to the script) lets in the `<style>` elements carrying
  this response's nonce, and no others.
- y-codemirror.next colours each remote cursor with a `style` attribute. A view that calls
  `allow_style_attributes()` allows inline style attributes (`style-src-attr`), never
  `<style>` elements nor scripts: CSS in an attribute cannot run code, and the page's
  only user-written HTML, the markdown preview, is sanitised without `style` attributes.
"""

import secrets

from flask import g


def csp_nonce() -> str:
    """Return this response's nonce for `<style>` elements, made on first use."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def allow_style_attributes() -> None:
    """Let this response's page carry inline `style` attributes (live cursors)."""
    g.csp_allows_style_attributes = True


def widen(policy: str) -> str:
    """Return `policy` with the exceptions this response's page asked for."""
    nonce = g.get("csp_nonce")
    if nonce:
        policy = policy.replace("style-src 'self'", f"style-src 'self' 'nonce-{nonce}'", 1)
    if g.get("csp_allows_style_attributes"):
        policy += "; style-src-attr 'unsafe-inline'"
    return policy
