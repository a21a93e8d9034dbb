"""Users, passwords, sessions and the sign-in throttle of the console.

Passwords are argon2id hashes (argon2-cffi's defaults). A session id is 32 random bytes given to the browser
once, as a cookie; the store keeps only its SHA-256, with the session's CSRF token and expiry. Sign-in is
throttled per (user name as typed, client address): after THROTTLE_FAILURES failures within THROTTLE_WINDOW
that pair is refused without even checking the password, so guessing from one address is slow and nobody
elsewhere is locked out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from continuity.errors import InputError
from continuity.store.users import ROLES, UserRecord

if TYPE_CHECKING:
    from continuity.store.protocol import Store

THROTTLE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte of "password" is only a way to burn CPU
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

# What each role may do; reading is everyone's. `oncall` does everything.
PERMISSIONS: dict[str, frozenset[str]] = {
    "oncall": frozenset({"declare", "restore", "settle", "retry", "campaigns", "maintenance"}),
    "marketing": frozenset({"campaigns"}),
    "viewer": frozenset(),
}


def can(role: str, action: str) -> bool:
    return action in PERMISSIONS.get(role, frozenset())


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InputError(f"user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
                         "letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"--role: {role!r} is not a role; choose one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"password: at most {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


# Verified against when the user does not exist, so an unknown name costs as long as a wrong password.
_DUMMY: list[str] = []


def verify_password(user: UserRecord | None, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    hasher = PasswordHasher()
    if user is None:
        if not _DUMMY:
            _DUMMY.append(hasher.hash(secrets.token_urlsafe(16)))
        encoded = _DUMMY[0]
    else:
        encoded = user.password_hash
    try:
        ok = hasher.verify(encoded, password[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and user is not None


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass
class SignIn:
    """The outcome of a sign-in attempt: a session id for the cookie, or why not."""

    session_id: str | None = None
    user: UserRecord | None = None
    throttled: bool = False


def is_throttled(store: Store, name: str, address: str, now: datetime) -> bool:
    """True while `name` from `address` has THROTTLE_FAILURES failures within THROTTLE_WINDOW."""
    return store.login_failures(user_name=name, address=address, since=now - THROTTLE_WINDOW) >= THROTTLE_FAILURES


def record_attempt(store: Store, name: str, address: str, user: UserRecord | None, now: datetime,
                   ttl: timedelta) -> SignIn:
    """After the password check: a failure counted (`user` None), or a new session for `user`."""
    if user is None:
        with store.transaction():
            store.add_login_failure(user_name=name, address=address, at=now)
        return SignIn()
    session_id = secrets.token_urlsafe(32)
    with store.transaction():
        store.clear_login_failures(user_name=name, address=address)
        store.purge_console(now, now - THROTTLE_WINDOW)
        store.insert_session(id_hash=session_hash(session_id), user_name=user.name,
                             csrf=secrets.token_urlsafe(32), created_at=now, expires_at=now + ttl)
    return SignIn(session_id=session_id, user=user)


def sign_in(store: Store, name: str, password: str, address: str, now: datetime, ttl: timedelta) -> SignIn:
    """Check the password (unless the pair is throttled) and open a session; failures are counted. The
    daemon runs the same three parts with the slow argon2 check off its event loop (console/web.py)."""
    name = name.strip()[:64]
    if is_throttled(store, name, address, now):
        return SignIn(throttled=True)
    user = store.get_user(name) if name else None
    return record_attempt(store, name, address, user if verify_password(user, password) else None, now, ttl)
