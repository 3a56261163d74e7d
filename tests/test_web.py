"""The door's web page: the real app (Flask) on real files and real faces, and in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from livecam.cli import main
from livecam.config import load_config, resolved
from livecam.web import LoginLimiter, WebServer, create_app, load_password, set_password

PASSWORD = "open sesame 42"
SCRIPT_NAME = "<img src=x onerror=alert(1)>"  # a valid name (no path separator): must show as text


@pytest.fixture
def door(tmp_path, make_gallery, data):
    """A gallery of two people, two unknown visitors (Hugo Chavez's photos as crops) and their events."""
    root = make_gallery({"George_W_Bush": [1, 2], "Colin_Powell": [1, 2]})
    unknown = tmp_path / "unknown"
    unknown.mkdir(mode=0o700)
    events = []
    for i, n in enumerate((1, 2)):
        stem = f"20261205-10000{i}-000000-door-t{i + 1}-abc12{i}"
        shutil.copy(data / "identities" / "Hugo_Chavez" / f"{n}.jpg", unknown / f"{stem}.jpg")
        events.append(
            {"kind": "unknown", "time": f"2026-12-05T10:00:0{i}+00:00", "camera": "door", "track": i + 1,
             "name": None, "distance": 1.2, "nearest": "Colin_Powell", "snapshot": str(unknown / f"{stem}.jpg")}
        )  # fmt: skip
    events.append({"kind": "recognized", "time": "2026-12-05T10:01:00+00:00", "camera": "door", "track": 9,
                   "name": "George_W_Bush", "distance": 0.5, "nearest": None, "snapshot": None})  # fmt: skip
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    config = tmp_path / "config.yaml"
    config.write_text(
        f"known_faces: {root}\nstate_dir: {tmp_path / 'state'}\n"
        f"door:\n  unknown_dir: {unknown}\n  events_log: {tmp_path / 'events.jsonl'}\n"
    )
    return resolved(load_config(config))


def _client(cfg, password=None, limiter=None):
    app = create_app(cfg, password, cfg.state_dir, limiter=limiter)
    app.config["TESTING"] = True
    return app.test_client()


def _csrf(page: bytes) -> str:
    m = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert m, page[:500]
    return m.group(1).decode()


def _visitors(cfg) -> list[str]:
    return sorted(p.stem for p in Path(cfg.door.unknown_dir).glob("*.jpg"))


def test_a_password_guards_every_page_and_face(door):
    set_password(PASSWORD, door.state_dir)
    client = _client(door, load_password(door.state_dir))
    visitor = _visitors(door)[0]
    for url in ("/unknown", "/gallery", "/events", f"/unknown/{visitor}.jpg", "/gallery/George_W_Bush/1.jpg"):
        response = client.get(url)
        assert response.status_code == 302 and response.location.endswith("/login"), url
    login = client.get("/login")
    token = _csrf(login.data)
    assert client.post("/unknown/delete", data={"csrf": token, "visitor": visitor}).status_code == 403
    assert visitor in _visitors(door)
    assert client.post("/login", data={"csrf": token, "password": "wrong"}).status_code == 200
    client.post("/login", data={"csrf": token, "password": PASSWORD})
    page = client.get("/unknown")
    assert page.status_code == 200 and b"nearest Colin_Powell" in page.data
    photo = client.get(f"/unknown/{visitor}.jpg")
    assert photo.status_code == 200 and photo.data[:2] == b"\xff\xd8"
    assert photo.headers["Cache-Control"].startswith("private")  # a face: never kept by a shared cache
    cookie = client.get_cookie("livecam_session")
    assert cookie.http_only and cookie.same_site == "Strict"


def test_the_password_file_is_a_memory_hard_hash_kept_private(door):
    path = set_password(PASSWORD, door.state_dir)
    record = json.loads(path.read_text())
    assert record["kdf"] == "scrypt" and record["n"] >= 2**14 and PASSWORD not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert load_password(door.state_dir).matches(PASSWORD) and not load_password(door.state_dir).matches("x" * 14)


def test_logins_are_rate_limited(door):
    set_password(PASSWORD, door.state_dir)
    client = _client(door, load_password(door.state_dir), LoginLimiter(tries=3, window=300))
    token = _csrf(client.get("/login").data)
    codes = [client.post("/login", data={"csrf": token, "password": f"guess {i}"}).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    # even the right password waits now: guessing cannot go on
    assert client.post("/login", data={"csrf": token, "password": PASSWORD}).status_code == 429


def test_a_form_without_the_session_s_csrf_token_is_refused(door):
    client = _client(door)
    visitor = _visitors(door)[0]
    client.get("/unknown")
    for token in (None, "forged"):
        data = {"visitor": visitor} | ({"csrf": token} if token else {})
        assert client.post("/unknown/delete", data=data).status_code == 400
    assert visitor in _visitors(door)
    other = _client(door)  # another browser's token is not this one's
    other_token = _csrf(other.get("/unknown").data)
    assert client.post("/unknown/delete", data={"visitor": visitor, "csrf": other_token}).status_code == 400
    token = _csrf(client.get("/unknown").data)
    assert client.post("/unknown/delete", data={"visitor": visitor, "csrf": token}).status_code == 302
    assert visitor not in _visitors(door)


def test_without_a_password_only_a_loopback_host_is_served(door):
    client = _client(door)
    assert client.get("/unknown", headers={"Host": "127.0.0.1:8080"}).status_code == 200
    assert client.get("/unknown", headers={"Host": "localhost:8080"}).status_code == 200
    # a name that resolves to this machine (DNS rebinding) is not this machine's page
    assert client.get("/unknown", headers={"Host": "evil.example:8080"}).status_code == 403


def test_a_name_is_shown_as_text(door, data):
    folder = Path(door.known_faces) / SCRIPT_NAME
    folder.mkdir()
    shutil.copy(data / "identities" / "Laura_Bush" / "1.jpg", folder / "1.jpg")
    page = _client(door).get("/gallery").data.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and SCRIPT_NAME not in page


@pytest.mark.parametrize(
    "url",
    [
        "/gallery/George_W_Bush/..%2F..%2Fconfig.yaml",
        "/gallery/..%2Funknown/1.jpg",
        "/gallery/George_W_Bush/%2E%2E",
        "/unknown/..%2Fconfig.jpg",
        "/unknown/%2Fetc%2Fpasswd.jpg",
        "/gallery/George_W_Bush/3.jpg",
    ],
)
def test_a_path_in_a_photo_url_is_refused(door, url):
    assert _client(door).get(url).status_code == 404


def test_a_link_among_the_crops_is_not_served(door, tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8 not yours")
    (Path(door.door.unknown_dir) / "20261205-100009-000000-door-t9-abc129.jpg").symlink_to(secret)
    assert _client(door).get("/unknown/20261205-100009-000000-door-t9-abc129.jpg").status_code == 404


def test_assigning_crops_to_a_new_person_and_a_crop_nearer_someone_else_refused(door, data):
    client = _client(door)
    token = _csrf(client.get("/unknown").data)
    first, second = _visitors(door)
    response = client.post(
        "/unknown/assign", data={"csrf": token, "visitor": [first, second], "new_name": "Hugo_Chavez"},
        follow_redirects=True,
    )  # fmt: skip
    assert response.status_code == 200
    assert _visitors(door) == []
    photos = sorted(p.name for p in (Path(door.known_faces) / "Hugo_Chavez").iterdir())
    assert photos == [f"{first}.jpg", f"{second}.jpg"]
    assert f"{first} is now a photo of Hugo_Chavez" in response.data.decode()
    # George W. Bush's face offered as Colin Powell: refused, with the reason, and kept
    crop = Path(door.door.unknown_dir) / "20261205-100100-000000-door-t5-abc125.jpg"
    shutil.copy(data / "identities" / "George_W_Bush" / "3.jpg", crop)
    response = client.post(
        "/unknown/assign", data={"csrf": token, "visitor": crop.stem, "name": "Colin_Powell"}, follow_redirects=True
    )
    text = response.data.decode()
    assert crop.exists() and "George_W_Bush" in text and 'class="refused"' in text, text[-1500:]


def test_events_are_listed_newest_first_and_filtered(door):
    client = _client(door)
    rows = re.findall(r"<tr><td>([^<]+)</td><td>door</td><td>(\w+)</td><td>([^<]+)</td>", client.get("/events").text)
    assert [r[1] for r in rows] == ["recognized", "unknown", "unknown"]
    only = re.findall(r"<tr><td>", client.get("/events?person=George_W_Bush").text)
    assert len(only) == 1
    # an unknown event's crop, while it is kept, as a thumbnail; gone once the crop is deleted
    thumbs = re.findall(r'class="thumb" src="/unknown/([^"]+)\.jpg"', client.get("/events").text)
    assert sorted(thumbs) == _visitors(door)
    Path(door.door.unknown_dir, thumbs[0] + ".jpg").unlink()
    assert len(re.findall(r'class="thumb"', client.get("/events").text)) == 1


def test_web_refuses_to_listen_beyond_this_machine_without_a_password(door, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    code = main(["--config", str(config), "web", "--listen", "0.0.0.0:8080"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no password is set" in err and "Traceback" not in err


# -- in a real browser --------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    b = webdriver.Chrome(options=options, service=Service(driver))  # the system's driver: nothing downloaded
    yield b
    b.quit()


def test_in_a_browser_log_in_and_assign_a_visitor_then_names_show_as_text(door, data, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def arrived(path: str) -> None:
        WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith(path))

    folder = Path(door.known_faces) / SCRIPT_NAME
    folder.mkdir()
    shutil.copy(data / "identities" / "Laura_Bush" / "1.jpg", folder / "1.jpg")
    set_password(PASSWORD, door.state_dir)
    server = WebServer(create_app(door, load_password(door.state_dir), door.state_dir), "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        browser.get(f"{base}/unknown")
        assert browser.current_url.endswith("/login")
        browser.save_screenshot(str(tmp_path / "login.png"))
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login").click()
        arrived("/unknown")
        boxes = browser.find_elements(By.CSS_SELECTOR, "input[name=visitor]")
        assert len(boxes) == 2
        images = browser.find_elements(By.CSS_SELECTOR, ".face img")
        assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
        browser.save_screenshot(str(tmp_path / "unknown.png"))
        for box in boxes:
            box.click()
        browser.find_element(By.ID, "new_name").send_keys("Hugo_Chavez")
        browser.find_element(By.ID, "assign").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".messages"))
        assert "is now a photo of Hugo_Chavez" in browser.find_element(By.CSS_SELECTOR, ".messages").text
        assert browser.find_element(By.ID, "none").text == "No unknown visitors kept."
        browser.get(f"{base}/gallery")
        names = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "section.person h2")]
        assert "Hugo_Chavez" in names and SCRIPT_NAME in names  # the name as text...
        assert browser.execute_script("return document.querySelectorAll('img[src=x]').length") == 0  # ...no element
        browser.save_screenshot(str(tmp_path / "gallery.png"))
    finally:
        server.stop()
    assert (tmp_path / "gallery.png").stat().st_size > 10_000


# -- beside a running loop: the live view ---------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running(tmp_path, data, broker):
    """`livecam run --realtime --web` on the Hamilton clip, Lin-Manuel Miranda enrolled, events to a real MQTT
    broker; yields the page's URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    gallery = tmp_path / "known_faces" / "Lin_Manuel_Miranda"
    gallery.mkdir(parents=True)
    for p in (data / "identities_extra" / "Lin_Manuel_Miranda").iterdir():
        shutil.copy(p, gallery / p.name)
    (tmp_path / "config.yaml").write_text(
        f"state_dir: {tmp_path / 'state'}\nmqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n"
    )
    port = _free_port()
    clip = data / "videos" / "short_hamilton_clip.mp4"
    cmd = [sys.executable, "-m", "livecam", "run", "--camera", str(clip), "--realtime", "--loop", "--no-window",
           "--known-faces", str(tmp_path / "known_faces"), "--web", f"127.0.0.1:{port}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                urllib.request.urlopen(f"{base}/live.jpg", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the live view never served a frame"
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_live_view_shows_the_loop_s_frames_with_the_name(running, tmp_path, browser, broker):
    import time
    import urllib.request

    import cv2
    import numpy as np

    from livecam.live import overlay

    # the name as the overlay draws it, looked for in the frames the page serves
    height = int(overlay.LABEL_PX * 1.4)
    label = np.full((height, 300, 3), overlay.KNOWN_COLOUR, np.uint8)
    overlay.draw_text(label, "Lin_Manuel_Miranda", 0, 0, background=overlay.KNOWN_COLOUR)
    template = label[:, : overlay.text_width("Lin_Manuel_Miranda") + 4]
    best, deadline = 0.0, time.monotonic() + 60
    while best < 0.9 and time.monotonic() < deadline:
        data = urllib.request.urlopen(f"{running}/live.jpg", timeout=5).read()
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        best = max(best, cv2.minMaxLoc(cv2.matchTemplate(frame, template, cv2.TM_CCOEFF_NORMED))[1])
        time.sleep(0.2)
    assert best > 0.9
    status = json.loads(urllib.request.urlopen(f"{running}/live.json", timeout=5).read())
    assert status["fps"] > 5 and status["encoder"] == "its own process" and "plan for" in status["plan"]
    assert status["broker"] == "connected"
    browser.get(f"{running}/live")
    time.sleep(1.5)
    live = browser.find_element("id", "live")
    assert browser.execute_script("return arguments[0].naturalWidth", live) > 0  # the MJPEG stream plays
    browser.save_screenshot(str(tmp_path / "live.png"))
    broker.stop()  # the broker goes away: the page says so, and the loop goes on
    deadline = time.monotonic() + 30
    while json.loads(urllib.request.urlopen(f"{running}/live.json", timeout=5).read())["broker"] == "connected":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert json.loads(urllib.request.urlopen(f"{running}/live.json", timeout=5).read())["fps"] > 5


def test_run_refuses_a_web_page_beyond_this_machine_without_a_password(tmp_path, data, capsys):
    (tmp_path / "known_faces").mkdir()
    clip = str(data / "videos" / "short_hamilton_clip.mp4")
    code = main(["run", "--camera", clip, "--no-window", "--known-faces", "known_faces", "--web", "0.0.0.0:8080"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--web 0.0.0.0" in err and "no password" in err


def test_a_stranger_in_a_clip_is_assigned_on_the_page_and_named_by_the_next_run(tmp_path, data, browser, make_gallery):
    """The whole flow: Lin-Manuel Miranda walks by a door that does not know him, his crop appears on the
    page, he is named there, and the next run names him."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root = make_gallery({"George_W_Bush": [1, 2]})
    config = tmp_path / "config.yaml"
    config.write_text(f"known_faces: {root}\nstate_dir: {tmp_path / 'state'}\n")
    clip = str(data / "videos" / "short_hamilton_clip.mp4")

    def names_in_run(log: str) -> set:
        assert main(["--config", str(config), "run", "--camera", clip, "--no-window", "--log-json", log]) == 0
        return {f["name"] for line in open(log) for f in json.loads(line)["faces"]}

    assert names_in_run("first.jsonl") <= {None, "unknown"}
    cfg = resolved(load_config(config))
    crops = sorted(Path(cfg.door.unknown_dir).glob("*.jpg"))
    assert crops, "the stranger's crop was not kept"
    server = WebServer(create_app(cfg, None, cfg.state_dir), "127.0.0.1", 0).start()
    try:
        browser.get(f"http://127.0.0.1:{server.port}/unknown")
        assert "nearest George_W_Bush" in browser.find_element(By.CSS_SELECTOR, ".face").text
        for box in browser.find_elements(By.CSS_SELECTOR, "input[name=visitor]"):
            box.click()
        browser.find_element(By.ID, "new_name").send_keys("Lin_Manuel_Miranda")
        browser.find_element(By.ID, "assign").click()
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".messages"))
        assert "is now a photo of Lin_Manuel_Miranda" in browser.find_element(By.CSS_SELECTOR, ".messages").text
    finally:
        server.stop()
    assert "Lin_Manuel_Miranda" in names_in_run("second.jsonl")


# -- the gallery: uploads, rename, remove -----------------------------------------------------------


def _upload(client, name, files, force=False):
    from io import BytesIO

    token = _csrf(client.get("/gallery").data)
    data = {"csrf": token, "name": name, "photos": [(BytesIO(b), fn) for fn, b in files]}
    if force:
        data["force"] = "on"
    return client.post("/gallery/add", data=data, content_type="multipart/form-data", follow_redirects=True).text


def test_uploads_pass_the_enrollment_checks_and_each_rejection_says_why(door, data, tmp_path):
    client = _client(door)
    laura = (data / "identities" / "Laura_Bush" / "1.jpg").read_bytes()
    horses = (data / "negatives" / "dlib_horses.jpg").read_bytes()
    page = _upload(client, "Laura_Bush", [("laura.jpg", laura), ("horses.jpg", horses), ("notes.jpg", b"not a photo")])
    folder = Path(door.known_faces) / "Laura_Bush"
    assert len(list(folder.glob("*.jpg"))) == 1
    assert "laura.jpg: added to Laura_Bush" in page
    refused = re.findall(r'<li class="refused">([^<]+)</li>', page)
    assert any(line.startswith("horses.jpg: ") and "face" in line for line in refused), refused
    assert any(line.startswith("notes.jpg: ") for line in refused), refused
    # George W. Bush's face offered as Colin Powell: refused, with the reason
    bush = (data / "identities" / "George_W_Bush" / "3.jpg").read_bytes()
    page = _upload(client, "Colin_Powell", [("bush.jpg", bush)])
    messages = re.findall(r'<li class="(?:refused|done)">[^<]+</li>', page)
    assert len(messages) == 1 and messages[0].startswith('<li class="refused">bush.jpg: not the same face'), messages
    assert len(list((Path(door.known_faces) / "Colin_Powell").iterdir())) == 2


def test_an_upload_s_file_name_never_becomes_a_path(door, data, tmp_path):
    client = _client(door)
    laura = (data / "identities" / "Laura_Bush" / "1.jpg").read_bytes()
    _upload(client, "Laura_Bush", [("../../../escaped.jpg", laura)])
    assert not list(tmp_path.rglob("escaped*"))
    saved = list((Path(door.known_faces) / "Laura_Bush").iterdir())
    assert len(saved) == 1 and saved[0].stat().st_mode & 0o777 == 0o600
    assert _upload(client, "../outside", [("x.jpg", laura)]).count('class="refused"') == 1
    assert not (tmp_path / "outside").exists()


def test_rename_a_person_and_remove_one_photo(door):
    client = _client(door)
    token = _csrf(client.get("/gallery").data)
    client.post("/gallery/Colin_Powell/rename", data={"csrf": token, "new_name": "General_Powell"})
    root = Path(door.known_faces)
    assert not (root / "Colin_Powell").exists() and len(list((root / "General_Powell").iterdir())) == 2
    client.post("/gallery/General_Powell/1.jpg/remove", data={"csrf": token})
    assert [p.name for p in (root / "General_Powell").iterdir()] == ["2.jpg"]
    for url in ("/gallery/General_Powell/..%2F..%2Fconfig.yaml/remove", "/gallery/General_Powell/../remove"):
        response = client.post(url, data={"csrf": token}, follow_redirects=True)
        assert response.status_code == 404 or "no such photo" in response.text
    assert (root.parent / "config.yaml").exists() and (root / "General_Powell" / "2.jpg").exists()


def test_in_a_browser_an_upload_is_rejected_with_its_reason(door, data, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = WebServer(create_app(door, None, door.state_dir), "127.0.0.1", 0).start()
    try:
        browser.get(f"http://127.0.0.1:{server.port}/gallery")
        browser.find_element(By.ID, "add_name").send_keys("Laura_Bush")
        browser.find_element(By.ID, "photos").send_keys(str(data / "negatives" / "dlib_horses.jpg"))
        browser.find_element(By.ID, "upload").click()
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".messages"))
        text = browser.find_element(By.CSS_SELECTOR, ".messages li.refused").text
        assert text.startswith("dlib_horses.jpg: ") and "face" in text
        browser.save_screenshot(str(tmp_path / "upload.png"))
    finally:
        server.stop()
    assert not (Path(door.known_faces) / "Laura_Bush").exists()


def test_calibration_on_the_page_says_what_livecam_calibrate_says(door, capsys, tmp_path):
    client = _client(door)
    page = client.get("/calibration").text
    advice = re.search(r'<p id="advice"><strong>([^<]+)</strong>', page).group(1)
    assert main(["--config", str(door.source), "calibrate"]) == 0
    out = capsys.readouterr().out
    assert advice.replace("&#34;", '"').replace("&#39;", "'") in out
    png = client.get("/calibration.png")
    assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_unknown_event_says_why_it_was_not_named(door):
    page = _client(door).get("/events").text
    threshold = f"{door.matching.threshold:.2f}"
    assert page.count(f"nearest Colin_Powell at 1.200, over the threshold {threshold}") == 2


def test_behind_an_https_proxy_cookies_are_secure_and_the_limit_counts_each_client(door):
    set_password(PASSWORD, door.state_dir)
    app = create_app(door, load_password(door.state_dir), door.state_dir, tls=True, limiter=LoginLimiter(tries=2))
    client = app.test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "door.example", "X-Forwarded-For": "203.0.113.7"}
    token = _csrf(client.get("/login", headers=proxied).data)
    assert client.get_cookie("livecam_session").secure
    for _ in range(2):
        client.post("/login", data={"csrf": token, "password": "guess"}, headers=proxied)
    assert client.post("/login", data={"csrf": token, "password": "guess"}, headers=proxied).status_code == 429
    other = proxied | {"X-Forwarded-For": "198.51.100.9"}  # another client behind the same proxy is not locked out
    assert client.post("/login", data={"csrf": token, "password": PASSWORD}, headers=other).status_code == 302


def test_a_proxy_needs_a_password_even_on_loopback(door, tmp_path, capsys):
    code = main(["--config", str(door.source), "web", "--https-proxy"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--https-proxy" in err and "no password" in err


def test_the_page_comes_back_by_itself_when_its_server_dies(door, monkeypatch, caplog):
    """waitress's loop dying (a select() on a closed descriptor...) used to end the page for the rest of the run,
    with the door still going: now it is one error line and the page serves again on the same port."""
    import urllib.request

    from livecam.web import server as web_server

    monkeypatch.setattr(web_server, "RESTART_MIN", 0.2)
    server = WebServer(create_app(door, None, door.state_dir), "127.0.0.1", 0)

    def dies():
        raise RuntimeError("select() failed: Bad file descriptor")

    server._server.run = dies  # the first server's loop dies at once
    server.start()
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/unknown", timeout=2) as reply:
                    assert reply.status == 200 and b"Colin_Powell" in reply.read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the page did not come back"
                time.sleep(0.1)
        assert server.restarts == 1
        assert "web: the server stopped (select() failed: Bad file descriptor); serving again in 0.2 s" in caplog.text
    finally:
        server.stop()
    assert not server._thread.is_alive()


def test_a_new_door_starts_on_the_page_with_no_gallery_folder_yet(tmp_path, data, capsys):
    """A shop owner's first step, `livecam web`, as a real process: it crashed as soon as it served (the stop
    request had no `wait`), and with no gallery folder yet it refused ("no such gallery folder ... (enroll makes
    one)"): the page that enrolls people could not start before someone enrolled from the command line. Now it
    serves, says where the gallery will be, stops cleanly on SIGTERM, and the first photo added makes the folder
    (0700, as `enroll` does)."""
    import signal
    import subprocess
    import sys
    import urllib.request

    from broker import free_port

    config = tmp_path / "config.yaml"
    config.write_text(f"known_faces: {tmp_path / 'known_faces'}\nstate_dir: {tmp_path / 'state'}\n")
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "livecam", "--config", str(config), "web", "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/gallery", timeout=2) as reply:
                    page = reply.read().decode()
                break
            except OSError:
                assert web.poll() is None, web.stderr.read()
                assert time.monotonic() < deadline, "the page did not answer"
                time.sleep(0.2)
        assert "Nobody enrolled yet" in page and str(tmp_path / "known_faces") in page  # where photos will go
        time.sleep(1.0)  # served for a while: it used to crash on its first wait
        assert web.poll() is None
        web.send_signal(signal.SIGTERM)
        assert web.wait(timeout=15) == 0
    finally:
        web.kill()
    err = web.stderr.read()
    assert "Traceback" not in err and f"{tmp_path / 'known_faces'}: no gallery folder yet" in err, err
    assert not (tmp_path / "known_faces").exists()  # nothing made until a photo is added

    client = _client(resolved(load_config(config)))
    page = _upload(client, "Laura_Bush", [("laura.jpg", (data / "identities" / "Laura_Bush" / "1.jpg").read_bytes())])
    assert "laura.jpg: added to Laura_Bush" in page, page
    assert (tmp_path / "known_faces").stat().st_mode & 0o777 == 0o700
    assert len(list((tmp_path / "known_faces" / "Laura_Bush").glob("*.jpg"))) == 1

    # a file where the gallery should be is still refused, in one line
    (tmp_path / "known_faces.txt").write_text("not a folder\n")
    assert main(["--config", str(config), "web", "--known-faces", str(tmp_path / "known_faces.txt")]) == 2
    assert "is not a folder" in capsys.readouterr().err
