"""What a log or an error message may show: secrets are hidden wherever they appear, and
nothing else is (a user name such as `git` is no secret)."""

from __future__ import annotations

from modelci.errors import redact, redact_url, strip_userinfo

TOKEN = "glpat-Xy7_s3cr3t"


def test_a_user_name_or_a_common_word_is_left_in_the_text() -> None:
    text = "GET /git/dags.git/info/refs (user git, branch main) failed"

    assert redact(text, []) == text
    assert redact(text, [TOKEN]) == text


def test_a_secret_is_hidden_wherever_it_appears_however_short() -> None:
    text = f"remote: token {TOKEN} refused; again: {TOKEN}."

    assert redact(text, [TOKEN]) == "remote: token *** refused; again: ***."
    assert redact("password is pw, pw!", ["pw"]) == "password is ***, ***!"


def test_a_percent_encoded_secret_is_hidden_too() -> None:
    secret = "p@ss/word"

    assert redact("sent p%40ss%2Fword to the server", [secret]) == "sent *** to the server"


def test_a_secret_that_holds_another_is_hidden_whole() -> None:
    assert redact("abc-123-xyz and 123", ["123", "abc-123-xyz"]) == "*** and ***"


def test_the_user_info_of_a_url_is_hidden_and_the_rest_of_the_url_kept() -> None:
    url = f"https://git:{TOKEN}@gitlab.example.com/group/dags.git"

    assert (
        redact(f"cannot fetch {url}")
        == "cannot fetch https://***@gitlab.example.com/group/dags.git"
    )
    assert redact_url("http://u:p4ss@s3.local:9000/x") == "http://***@s3.local:9000/x"
    assert redact_url("see https://host/path@ref and ssh://git@host/x.git") == (
        "see https://host/path@ref and ssh://***@host/x.git"
    )


def test_a_password_holding_an_unescaped_at_sign_is_hidden_whole() -> None:
    assert redact_url("https://user:p@ss@host/x.git") == "https://***@host/x.git"
    assert strip_userinfo("https://user:p@ss@host/x.git") == "https://host/x.git"


def test_empty_secrets_change_nothing() -> None:
    assert redact("nothing secret here", ["", ""]) == "nothing secret here"
