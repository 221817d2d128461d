"""The console script's own messages: a database it cannot open, help screens, `serve`'s address.

Every case runs `python -m gateway` in a process of its own, as a user would.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cli import graphql_url
from tests.conftest import _free_port

PASSWORD = "s3cret-pw"  # must never be echoed back
REPO = Path(__file__).resolve().parents[1]


def gateway(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the console script with GATEWAY_DATABASE_URL=`url` in `cwd`."""
    env = {**os.environ, "GATEWAY_DATABASE_URL": url, "PYTHONPATH": str(REPO)}
    return subprocess.run(  # noqa: S603  # our own interpreter and arguments
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def started(database: Path, cwd: Path, *args: str, stdout: int = subprocess.PIPE) -> Any:
    """The console script started with `args` on the SQLite file `database`, in `cwd` (its
    standard error piped, as text)."""
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "PYTHONPATH": str(REPO),
    }
    return subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


# (GATEWAY_DATABASE_URL, command, what the message must say)
UNOPENABLE = {
    "unparsable-url": (
        "nonsense",
        ["sources", "list"],
        [
            "GATEWAY_DATABASE_URL=nonsense is not a database URL",
            "Set GATEWAY_DATABASE_URL",
            "sqlite+aiosqlite:///gateway.db",
            "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE",
        ],
    ),
    "sqlite-folder-missing": (
        "sqlite+aiosqlite:////nonexistent/dir/g.db",
        ["demo"],
        [
            "cannot open the SQLite database /nonexistent/dir/g.db",
            "unable to open database file",
            "Check that the folder /nonexistent/dir exists",
            "set GATEWAY_DATABASE_URL to another file",
        ],
    ),
    "sqlite-not-a-database": (
        "sqlite+aiosqlite:///notes.txt",
        ["admin-key", "list"],
        ["cannot open the SQLite database", "notes.txt", "file is not a database"],
    ),
    "postgres-refused": (
        f"postgresql+asyncpg://reader:{PASSWORD}@127.0.0.1:1/roster",
        ["integrations", "list"],
        [
            "cannot connect to the database roster at 127.0.0.1:1 as reader",
            "postgresql+asyncpg://reader:***@127.0.0.1:1/roster",
            "Connect call failed",
            "set GATEWAY_DATABASE_URL to another server",
        ],
    ),
    "driver-not-installed": (
        f"mysql://reader:{PASSWORD}@127.0.0.1/roster",
        ["audit"],
        [
            "GATEWAY_DATABASE_URL=mysql://reader:***@127.0.0.1/roster cannot be used",
            "No module named",
            "SQLite through aiosqlite and PostgreSQL through asyncpg",
        ],
    ),
    "sync-driver": (
        "sqlite:///roster.db",
        ["integrations", "show", "00000000-0000-4000-8000-000000000000"],
        [
            "requires an async driver",
            "set GATEWAY_DATABASE_URL to the same URL with the driver aiosqlite: "
            "sqlite+aiosqlite:///roster.db",
        ],
    ),
    "password-in-a-parameter": (
        f"postgresql+asyncpg://reader@127.0.0.1:1/roster?password={PASSWORD}",
        ["sources", "create", "North"],
        ["roster?password=***", "Connect call failed"],
    ),
    "serve-refuses-before-listening": (
        f"postgresql+asyncpg://reader:{PASSWORD}@127.0.0.1:1/roster",
        ["serve", "--port", "1"],
        ["cannot connect to the database roster at 127.0.0.1:1"],
    ),
}


@pytest.mark.parametrize("case", list(UNOPENABLE))
def test_a_database_that_cannot_be_opened_is_one_message_and_exit_code_1(
    case: str, tmp_path: Path
) -> None:
    url, args, expected = UNOPENABLE[case]
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    done = gateway(url, tmp_path, *args)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert done.stderr.count("\n") == 1, done.stderr
    for fragment in expected:
        assert fragment in done.stderr
    assert PASSWORD not in done.stderr
    assert "Serving" not in done.stderr


def test_serve_on_a_port_in_use_is_one_message_and_exit_code_2_before_anything(
    tmp_path: Path,
) -> None:
    # Found by a review: it said "Serving http://…" and then uvicorn's own error, exit 3.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = gateway(
            f"sqlite+aiosqlite:///{tmp_path / 'g.db'}",
            tmp_path,
            "serve",
            "--demo",
            "--port",
            str(port),
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Serving" not in done.stderr
    assert not (tmp_path / "g.db").exists()  # checked before the database is opened


def test_serve_says_where_it_listens(tmp_path: Path) -> None:
    port = _free_port()
    server = started(tmp_path / "g.db", tmp_path, "serve", "--port", str(port))
    try:
        # Read on a thread: a server that never writes the line must fail the test, not hang it.
        first_line: queue.Queue[str] = queue.Queue()
        stderr = server.stderr
        assert stderr is not None
        threading.Thread(target=lambda: first_line.put(stderr.readline()), daemon=True).start()
        line = first_line.get(timeout=60)
        assert line.startswith(f"Serving http://127.0.0.1:{port}/graphql (GraphiQL in a browser)")
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not answer in 30 s"
                time.sleep(0.1)
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_serve_demo_prints_the_address_it_serves_and_a_curl_line_that_works(
    tmp_path: Path,
) -> None:
    """`--host` and `--port` are in the printed URL and the demo's curl line, and the line,
    run as it is printed, answers from the server just started."""
    host, port = "127.0.0.2", _free_port()  # loopback, but not the default address
    server = started(
        tmp_path / "g.db",
        tmp_path,
        *("serve", "--demo", "--host", host, "--port", str(port)),
        stdout=subprocess.DEVNULL,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        stderr = server.stderr
        assert stderr is not None
        threading.Thread(target=lambda: [lines.put(line) for line in stderr], daemon=True).start()
        printed = []
        while not printed or not printed[-1].startswith("Serving"):
            printed.append(lines.get(timeout=120))
        url = f"http://{host}:{port}/graphql"
        assert printed[-1].startswith(f"Serving {url} (GraphiQL in a browser)")
        (curl,) = [line for line in printed if line.startswith("curl ")]
        assert f" {url} " in curl
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://{host}:{port}/healthz").status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not answer in 30 s"
                time.sleep(0.1)
        answered = subprocess.run(  # noqa: S603  # the line the gateway printed, as a user runs it
            shlex.split(curl), capture_output=True, text=True, timeout=60, check=True
        )
        assert json.loads(answered.stdout)["data"]["schools"]["nodes"]
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8100/graphql"),
        ("localhost", "http://localhost:8100/graphql"),
        ("::1", "http://[::1]:8100/graphql"),
        # Every interface: the URL a browser on this machine can open.
        ("0.0.0.0", "http://127.0.0.1:8100/graphql"),  # noqa: S104  # an address, not a bind
        ("::", "http://[::1]:8100/graphql"),
    ],
)
def test_the_printed_url_is_one_a_client_on_this_machine_can_open(host: str, url: str) -> None:
    assert graphql_url(host, 8100) == url


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            ["integrations", "create"],
            ["--source ID", "--scope SCOPE", "--permission SLUG_OR_UUID", "--target ID"],
        ),
        (["integrations", "update"], ["--permission SLUG_OR_UUID", "--no-permissions  "]),
        (["serve"], ["--host HOST", "--port PORT", "--workers N", "--demo  "]),
        (["demo"], ["--people N", "--json  "]),
        (["import", "oneroster"], ["--source-name NAME", "--provider-name NAME"]),
        (["audit"], ["--integration ID", "--limit N", "--after CURSOR"]),
    ],
    ids=["integrations-create", "integrations-update", "serve", "demo", "import", "audit"],
)
def test_help_names_option_values_not_python_types(
    command: list[str], expected: list[str], tmp_path: Path
) -> None:
    done = gateway("sqlite+aiosqlite:///unused.db", tmp_path, *command, "--help")
    assert done.returncode == 0, done.stderr
    options = done.stdout.split("Options:", 1)[1]
    for fragment in expected:
        assert fragment in options
    assert re.findall(r"<[a-z][a-z\[\] ]*>", options) == [], options  # <bool>, <list[str]>…
    assert "╭" not in done.stdout  # no rich boxes either


def test_a_bad_setting_is_one_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_MAX_DEPTH", "deep")
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    for command in (["sources", "list"], ["serve", "--port", "1"], ["events", "prune"]):
        done = gateway(url, tmp_path, *command)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("error: bad setting: GATEWAY_MAX_DEPTH='deep': ")
        assert "valid integer" in done.stderr


def _children(pid: int) -> list[str]:
    """The command lines of the processes whose parent is `pid` (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return found


def test_an_import_interrupted_says_nothing_was_written_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """Ctrl-C (SIGINT) in the middle of `gateway import oneroster` exits 130 with a message
    that says the import did not commit and how to go on, and the database holds none of it
    (it was a silent exit 130 before). The moment is found, not guessed: the process that
    parses a large enrollments.csv runs only while the import does (between orgs.csv and the
    enrollments)."""
    if not Path("/proc/self/stat").exists() or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the moment is found from the parsing process, started on 2+ cores (Linux)")
    from benchmarks.import_oneroster import generate

    export = tmp_path / "export"
    export.mkdir()
    generate(export, 20_000, 200_000, "1.2")
    database = tmp_path / "gateway.db"
    command = ("import", "oneroster", str(export), "--source-name", "Interrupted")
    importing = started(database, tmp_path, *command)
    try:
        deadline = time.monotonic() + 60
        while not any("gateway.importers.apart" in c for c in _children(importing.pid)):
            assert importing.poll() is None, importing.communicate()
            assert time.monotonic() < deadline, "the import never started its parsing process"
            time.sleep(0.01)
        importing.send_signal(signal.SIGINT)
        out, err = importing.communicate(timeout=60)
    finally:
        importing.kill()
    assert importing.returncode == 130, (out, err)
    assert out == ""
    assert err.strip() == (
        f"error: interrupted: the import of {export} stopped before it committed, so none of "
        "it was written. Run the command again to import it."
    )
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM sources").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM people").fetchone() == (0,)


def test_ctrl_c_while_the_commands_load_is_one_line_and_exit_code_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C in the first second of any command, while its modules load, printed a stack trace
    through the imports and exited with -2 (found by a review)."""
    from gateway import cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_register", interrupted)
    with pytest.raises(SystemExit) as exited:
        cli.main()

    assert exited.value.code == 130
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        "error: interrupted before the command started; nothing was done.\n",
    )


@pytest.mark.parametrize("module", ["typer", "gateway.errors"])
def test_ctrl_c_while_the_command_line_itself_loads_is_one_line_and_exit_code_130(
    tmp_path: Path, module: str
) -> None:
    """Ctrl-C before `gateway.cli` had loaded (a tenth of a second of imports) still printed a
    stack trace: the console script imported it before any handler ran. Here the interrupt
    comes while the process imports `module`, one of those `gateway.cli` imports."""
    script = (
        "import builtins, runpy, sys\n"
        "real = builtins.__import__\n"
        "def interrupting(name, *args, **kwargs):\n"
        f"    if name == {module!r}:\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = interrupting\n"
        "sys.argv = ['gateway', '--help']\n"
        "runpy.run_module('gateway', run_name='__main__')\n"
    )
    done = subprocess.run(  # noqa: S603  # our own interpreter and arguments
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (done.returncode, done.stdout, done.stderr) == (
        130,
        "",
        "error: interrupted before the command started; nothing was done.\n",
    )
