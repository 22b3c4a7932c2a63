import json

from typer.testing import CliRunner

from dopomoga.cli import app
from tests.factories import application

runner = CliRunner()


def _valid(person: int, birth: str = "1923-03-10") -> str:
    return application(
        "zhytomyr.centenarians", {"resident_of_community": True}, birth_date=birth, person=person, channel="post"
    ).model_dump_json()


def test_a_batch_with_broken_lines_is_decided_line_by_line_with_a_clear_error_for_each(tmp_path):
    good = _valid(1)
    too_young = _valid(2, birth="1950-01-01")
    unknown = json.loads(_valid(3))
    unknown["program_id"] = "odesa.free-money"
    bad_rnokpp = json.loads(_valid(4))
    bad_rnokpp["applicant"]["id"] = "1234567890"
    lines = [good, "{not json", json.dumps(unknown), json.dumps(bad_rnokpp), too_young]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "decisions.jsonl"

    result = runner.invoke(app, ["decide", str(source), "--out", str(out)])

    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(d["eligible"], d["amount_kop"]) for d in decisions] == [(True, 1_000_000), (False, 0)]
    errors = [json.loads(line) for line in out.with_suffix(".errors.jsonl").read_text().splitlines()]
    assert [(e["line"], e["reason_code"]) for e in errors] == [
        (2, "invalid_event"),
        (3, "unknown_program"),
        (4, "invalid_event"),
    ]
    assert "РНОКПП is not valid" in errors[2]["message"]


def test_explain_shows_the_conditions_the_parameters_with_their_law_and_the_sentence(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(_valid(7) + "\n")
    out = tmp_path / "decisions.jsonl"
    assert runner.invoke(app, ["decide", str(source), "--out", str(out)]).exit_code == 0
    application_id = json.loads(out.read_text())["application_id"]

    result = runner.invoke(app, ["explain", application_id, "--decisions", str(out)], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "centenarian_payment" in result.output and "2021-01-01" in result.output
    assert "Призначено 10\u00a0000,00\u00a0грн" in result.output


def test_the_same_batch_decided_twice_gives_byte_identical_output(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(_valid(p) for p in range(1, 6)) + "\n")
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert runner.invoke(app, ["decide", str(source), "--out", str(first)]).exit_code == 0
    assert runner.invoke(app, ["decide", str(source), "--out", str(second)]).exit_code == 0
    assert first.read_bytes() == second.read_bytes()


def test_programs_lists_every_program_with_its_legal_basis():
    result = runner.invoke(app, ["programs", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    centenarians = next(r for r in rows if r["id"] == "zhytomyr.centenarians")
    assert "№ 35" in centenarians["legal_basis"] and centenarians["budget_policy"] == "first_come"
