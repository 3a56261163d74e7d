"""The web page's routes (Flask): unknown visitors, the gallery, the events, and the login that guards them.

Every name and id in a URL or form goes through DoorFiles, which validates it as the CLI does; templates
escape every value (Jinja2's autoescape), so a person named `<script>` is shown as text.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, abort, flash, redirect, render_template, request, send_file, session, url_for

from ..config import Config
from .auth import LoginLimiter, PasswordHash, csrf_ok, is_loopback, new_csrf_token, session_secret
from .live import LiveFeed
from .service import DoorFiles

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a request's body; each photo is then held to the gallery reader's limits
IMAGE_MAX_AGE_S = 300  # face images: cached by this browser only (private), briefly
MAX_FLASHED = 20  # lines of an outcome shown (the session cookie holds them)


def create_app(
    cfg: Config,
    password: PasswordHash | None = None,
    state_folder: Path | None = None,
    tls: bool = False,
    limiter: LoginLimiter | None = None,
    live: LiveFeed | None = None,
) -> Flask:
    """The app for `cfg`'s gallery, unknown visitors and events.

    With `password` every page but the login asks for a session; without one, only requests addressed to a
    loopback name are served (cli.web refuses to listen elsewhere without a password, and this turns away DNS
    rebinding). `tls`: served behind a reverse proxy that terminates TLS (cookies Secure; the client's address,
    for the login limit, from X-Forwarded-For). `live`: a running loop's frames (`run --web`), shown at /live."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=session_secret(state_folder),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=tls,
        SESSION_COOKIE_NAME="livecam_session",
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
    )
    if tls:  # behind a reverse proxy that speaks TLS: the client's address and scheme come from its headers
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    files = DoorFiles(cfg)
    limiter = limiter or LoginLimiter()
    app.extensions["livecam"] = files

    @app.before_request
    def guard():
        if password is None and not is_loopback(urlsplit(f"//{request.host}").hostname or ""):
            abort(403)  # no password: only this machine, by its loopback name
        if "csrf" not in session:
            session["csrf"] = new_csrf_token()
        if request.method == "POST" and not csrf_ok(session.get("csrf"), request.form.get("csrf")):
            abort(400, "the form's CSRF token is missing or wrong: reload the page")
        if password is not None and not session.get("in") and request.endpoint not in ("login", "static"):
            if request.method == "POST":
                abort(403)
            return redirect(url_for("login"))
        return None

    @app.after_request
    def headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; img-src 'self'; frame-ancestors 'none'"
        )
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.context_processor
    def common():
        return {
            "csrf": session.get("csrf", ""),
            "logged_in": bool(session.get("in")),
            "password": password,
            "live": live is not None,
        }

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if password is None:
            return redirect(url_for("unknown"))
        if request.method == "POST":
            address = request.remote_addr or "-"
            if not limiter.allowed(address):
                abort(429, "too many failed logins from this address: wait a few minutes")
            if password.matches(request.form.get("password", "")):
                session.clear()  # a new session (and CSRF token) once logged in
                session["in"] = True
                session["csrf"] = new_csrf_token()
                return redirect(url_for("unknown"))
            limiter.failed(address)
            log.warning("web: failed login from %s", address)
            flash("wrong password", "refused")
        return render_template("login.html")

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("login" if password is not None else "unknown"))

    @app.get("/")
    def home():
        return redirect(url_for("live_view" if live is not None else "unknown"))

    if live is not None:

        @app.get("/live")
        def live_view():
            return render_template("live.html", status=live.status())

        @app.get("/live.json")
        def live_status():
            return asdict(live.status())

        @app.get("/live.jpg")
        def live_frame():
            got = live.jpeg(timeout=2.0)
            if got is None:
                abort(503, "no frame yet")
            return Response(got[1], mimetype="image/jpeg", headers={"Cache-Control": "no-store"})

        @app.get("/live.mjpg")
        def live_stream():
            stream = live.open_stream()
            if stream is None:
                abort(503, "too many viewers")
            return Response(
                stream,
                mimetype="multipart/x-mixed-replace; boundary=frame",
                headers={"Cache-Control": "no-store"},
            )

    @app.get("/unknown")
    def unknown():
        return render_template("unknown.html", visitors=files.visitors(), people=[p.name for p in files.people()])

    @app.get("/unknown/<visitor_id>.jpg")
    def visitor_photo(visitor_id: str):
        return _image(files.visitor_photo, visitor_id)

    @app.post("/unknown/assign")
    def assign():
        ids = request.form.getlist("visitor")
        name = (request.form.get("new_name") or request.form.get("name") or "").strip()
        if not ids or not name:
            _report([], ["choose one or more photos, and a person or a new name"])
        else:
            outcome = files.assign(ids, name, force=request.form.get("force") == "on")
            _report(outcome.done, outcome.refused)
        return redirect(url_for("unknown"))

    @app.post("/unknown/delete")
    def delete():
        outcome = files.delete_visitors(request.form.getlist("visitor"))
        _report(outcome.done, outcome.refused)
        return redirect(url_for("unknown"))

    @app.post("/unknown/purge")
    def purge():
        try:
            days = float(request.form.get("days", ""))
            if not days >= 0:
                raise ValueError
        except ValueError:
            _report([], ["purge takes a number of days, 0 or more"])
            return redirect(url_for("unknown"))
        outcome = files.purge(days)
        _report(outcome.done, outcome.refused)
        return redirect(url_for("unknown"))

    @app.get("/gallery")
    def gallery():
        return render_template("gallery.html", people=files.people(), folder=files.root)

    @app.get("/gallery/<name>/<file_name>")
    def person_photo(name: str, file_name: str):
        return _image(lambda _: files.person_photo(name, file_name), file_name)

    @app.post("/gallery/add")
    def add_photos():
        name = (request.form.get("name") or "").strip()
        uploads = [(f.filename or "", f.read()) for f in request.files.getlist("photos") if f]
        outcome = files.add_photos(name, uploads, force=request.form.get("force") == "on")
        _report(outcome.done, outcome.refused)
        return redirect(url_for("gallery"))

    @app.post("/gallery/<name>/rename")
    def rename(name: str):
        outcome = files.rename(name, (request.form.get("new_name") or "").strip(), request.form.get("force") == "on")
        _report(outcome.done, outcome.refused)
        return redirect(url_for("gallery"))

    @app.post("/gallery/<name>/<file_name>/remove")
    def remove_photo(name: str, file_name: str):
        outcome = files.remove_photo(name, file_name)
        _report(outcome.done, outcome.refused)
        return redirect(url_for("gallery"))

    @app.post("/gallery/<name>/remove")
    def remove(name: str):
        outcome = files.remove(name)
        _report(outcome.done, outcome.refused)
        return redirect(url_for("gallery"))

    @app.get("/calibration")
    def calibration():
        try:
            cal, lines, advice = files.calibration()
        except ValueError as exc:
            return render_template("calibration.html", error=str(exc))
        return render_template("calibration.html", lines=lines, advice=advice, lookalikes=cal.lookalikes)

    @app.get("/calibration.png")
    def calibration_png():
        from ..door import histogram_png

        try:
            cal, _, _ = files.calibration()
        except ValueError:
            abort(404)
        png = histogram_png(cal, cfg.matching.threshold)
        return Response(png, mimetype="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/events")
    def events():
        person, camera = request.args.get("person", ""), request.args.get("camera", "")
        return render_template("events.html", events=files.events(person, camera), person=person, camera=camera)

    return app


def _image(find, key: str):
    """A face image from the door's folders, or 404 for anything DoorFiles does not name (a path, a link)."""
    try:
        path = find(key)
    except (FileNotFoundError, ValueError):
        abort(404)
    response = send_file(path, mimetype="image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else None,
                         conditional=True, max_age=IMAGE_MAX_AGE_S)  # fmt: skip
    response.headers["Cache-Control"] = f"private, max-age={IMAGE_MAX_AGE_S}"  # biometric: never a shared cache
    return response


def _report(done: list[str], refused: list[str]) -> None:
    for line in done[:MAX_FLASHED]:
        flash(line, "done")
    for line in refused[:MAX_FLASHED]:
        flash(line, "refused")
