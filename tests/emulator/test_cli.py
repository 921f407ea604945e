"""`connector emulator` CLI: flags, validation and --print-credentials."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from connector.emulator import cli

RUNNER = (
    "import argparse, sys\n"
    "from connector.emulator import cli\n"
    "p = argparse.ArgumentParser(); cli.add_arguments(p)\n"
    "sys.exit(cli.run(p.parse_args(sys.argv[1:])))\n"
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_and_config() -> None:
    """Defaults are loopback:8765 seed demo; quota and fault flags build configs."""
    args = parse()
    assert (args.host, args.port, args.seed) == ("127.0.0.1", 8765, "demo")
    config = cli.config_from_args(parse("--quota", "per_minute", "--error-rate", "0.1"))
    assert config.quota is not None
    assert config.quota.limit == 6000
    assert config.faults is not None
    assert config.faults.error_rate == 0.1


@pytest.mark.parametrize(
    "argv", [["--port", "70000"], ["--error-rate", "2"], ["--users", "-1"], ["--quota", "x"]]
)
def test_bad_flags_exit_non_zero(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Invalid flags print a clear message and exit with status 2."""
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_print_credentials_subprocess() -> None:
    """--print-credentials prints one authorized-user JSON per user that google-auth accepts."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUNNER,
            "--port",
            "0",
            "--users",
            "2",
            "--messages",
            "3",
            "--print-credentials",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        infos = [json.loads(line) for line in lines]
        assert [i["account"] for i in infos] == ["alice@example.com", "bob@example.com"]
        for info in infos:
            assert info["type"] == "authorized_user"
            assert info["token_uri"].endswith("/token")
            assert Credentials.from_authorized_user_info(info).refresh_token
        creds = Credentials.from_authorized_user_info(infos[0])
        assert creds.valid  # the printed access token and expiry: usable without a refresh
        assert creds.token == infos[0]["token"]
        port = int(infos[0]["token_uri"].split(":")[-1].split("/")[0])
        service = build("gmail", "v1", credentials=creds, static_discovery=True,
                        client_options={"api_endpoint": f"http://127.0.0.1:{port}/"})  # fmt: skip
        try:
            profile = service.users().getProfile(userId="me").execute()  # unmodified client
        finally:
            service.close()
        assert profile["emailAddress"] == "alice@example.com"
        assert proc.poll() is None  # still serving
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0
