"""The authorization server's HTML pages: sign in, consent, errors.

Plain strings rather than a template engine: every interpolated value goes through `_e`
(html.escape, quotes included), so a client name, a scope description or a value echoed from
the request cannot become markup. No JavaScript and nothing loaded from elsewhere.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

PAGE_HEADERS: dict[str, str] = {
    "Content-Type": "text/html; charset=utf-8",
    # The pages carry a signed-in user's name and the authorization request: keep them out of
    # every cache, the browser's back-forward one included.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    # Nothing but the inline <style>. No form-action: Chrome applies it to the redirect that
    # follows the consent POST too, and that goes to the partner's redirect_uri.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
    # For browsers without frame-ancestors: a framed consent page invites clickjacking.
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The URL carries the authorization request (client, redirect_uri, state).
    "Referrer-Policy": "no-referrer",
}

# Fields the pages' forms define themselves; a hidden field of the same name would shadow one.
_FORM_FIELDS = frozenset({"action", "username", "password"})

_STYLE = """
:root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--text:#111827;--muted:#6b7280;
--line:#e5e7eb;--accent:#1d4ed8;--accent-text:#fff;--error:#b91c1c;--error-bg:#fef2f2}
@media (prefers-color-scheme:dark){:root{--bg:#111827;--card:#1f2937;--text:#f9fafb;
--muted:#9ca3af;--line:#374151;--accent:#3b82f6;--error:#fca5a5;--error-bg:#450a0a}}
*{box-sizing:border-box}
body{margin:0;padding:1rem;background:var(--bg);color:var(--text);
font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:28rem;margin:2rem auto;padding:1.5rem;background:var(--card);
border:1px solid var(--line);border-radius:.75rem}
h1{margin:0 0 1rem;font-size:1.375rem;line-height:1.3}
p{margin:0 0 1rem}
ul{margin:0 0 1rem;padding-left:1.25rem}
li{margin:.25rem 0}
code{font-size:.8125rem;color:var(--muted)}
label{display:block;margin:0 0 .25rem;font-weight:600}
input{display:block;width:100%;margin:0 0 1rem;padding:.625rem .75rem;font:inherit;
color:inherit;background:transparent;border:1px solid var(--line);border-radius:.5rem}
.actions{display:flex;gap:.75rem;flex-wrap:wrap}
button{flex:1 1 8rem;padding:.625rem 1rem;font:inherit;font-weight:600;cursor:pointer;
color:var(--text);background:transparent;border:1px solid var(--line);border-radius:.5rem}
button.primary{color:var(--accent-text);background:var(--accent);border-color:var(--accent)}
.error{padding:.625rem .75rem;color:var(--error);background:var(--error-bg);border-radius:.5rem}
.muted{color:var(--muted);font-size:.875rem}
main>:last-child{margin-bottom:0}
"""


def login_page(
    *,
    client_name: str,
    action: str,
    hidden: Mapping[str, str],
    username: str = "",
    error: str | None = None,
) -> str:
    # Focus goes where the user has to type next: the password after a failed attempt.
    focus_user, focus_password = ("", " autofocus") if username else (" autofocus", "")
    body = (
        "<h1>Sign in to payplat</h1>"
        f"<p><strong>{_e(client_name)}</strong> wants to connect to your payplat account.</p>"
        + (f'<p class="error" role="alert">{_e(error)}</p>' if error else "")
        + f'<form method="post" action="{_e(action)}">'
        + _hidden_inputs(hidden)
        + '<label for="username">Username</label>'
        '<input id="username" name="username" type="text" autocomplete="username"'
        ' autocapitalize="none" spellcheck="false" maxlength="32" required'
        f' value="{_e(username)}"{focus_user}>'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password"'
        f' maxlength="1024" required{focus_password}>'
        # Sign in comes first: it is the button Enter presses. Cancel skips the required
        # fields (formnovalidate) so an empty form can still be declined.
        '<div class="actions">'
        '<button type="submit" name="action" value="login" class="primary">Sign in</button>'
        '<button type="submit" name="action" value="deny" formnovalidate>Cancel</button>'
        "</div></form>"
    )
    return _page("Sign in to payplat", body)


def consent_page(
    *,
    client_name: str,
    user_name: str,
    scopes: Sequence[tuple[str, str]],
    accounts: Sequence[tuple[str, str]],
    action: str,
    hidden: Mapping[str, str],
) -> str:
    """`scopes` are (scope, plain words) pairs; `accounts` are (account_id, currency) pairs."""
    client = _e(client_name)
    scope_items = "".join(
        f"<li>{_e(words)} <code>{_e(scope)}</code></li>" for scope, words in scopes
    )
    account_list = (
        "<ul>"
        + "".join(
            f"<li><code>{_e(account_id)}</code> {_e(currency)}</li>"
            for account_id, currency in accounts
        )
        + "</ul>"
        if accounts
        else "<p>You have no accounts yet.</p>"
    )
    body = (
        f"<h1>Allow {client} access?</h1>"
        f"<p><strong>{client}</strong> wants to:</p>"
        f"<ul>{scope_items}</ul>"
        f"<p>for the accounts of <strong>{_e(user_name)}</strong>:</p>"
        f"{account_list}"
        f'<form method="post" action="{_e(action)}">'
        + _hidden_inputs(hidden)
        + '<div class="actions">'
        '<button type="submit" name="action" value="approve" class="primary">Allow</button>'
        '<button type="submit" name="action" value="deny">Deny</button>'
        "</div></form>"
        f'<p class="muted">You can withdraw this access at any time by revoking {client}\'s'
        " tokens.</p>"
    )
    return _page(f"Allow {client_name} access? · payplat", body)


def error_page(*, title: str, message: str) -> str:
    """For errors that must not be redirected: unknown client, bad redirect_uri, expired request."""
    body = (
        f"<h1>{_e(title)}</h1>"
        f"<p>{_e(message)}</p>"
        '<p class="muted">You can close this page and go back to the app.</p>'
    )
    return _page(f"{title} · payplat", body)


def throttled_message(*, retry_after_s: int) -> str:
    """The login form's error while sign-ins are throttled (the form stays, to retry)."""
    seconds = max(1, retry_after_s)
    unit = "second" if seconds == 1 else "seconds"
    return f"Too many sign-in attempts. Try again in {seconds} {unit}."


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{_e(title)}</title>"
        f"<style>{_STYLE}</style>"
        f"</head><body><main>{body}</main></body></html>"
    )


def _hidden_inputs(hidden: Mapping[str, str]) -> str:
    clashes = _FORM_FIELDS & hidden.keys()
    if clashes:
        raise ValueError(f"hidden fields clash with the form's own: {sorted(clashes)}")
    return "".join(
        f'<input type="hidden" name="{_e(name)}" value="{_e(value)}">'
        for name, value in hidden.items()
    )


def _e(value: str) -> str:
    return html.escape(value, quote=True)
