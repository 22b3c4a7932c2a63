"""Cities are data: a folder with a city.yaml and program files; no code edit to add one."""

from __future__ import annotations

import shutil

import pytest
import yaml

from dopomoga.cities import load_cities
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import PROGRAMS_DIR, Catalog, ProgramError
from tests.factories import application, program_root


def test_every_city_of_the_repository_names_its_paying_department_and_districts(catalog):
    assert set(catalog.cities) == {"zhytomyr", "zaporizhzhia", "kamianske"}
    for city in catalog.cities.values():
        assert city.paying_departments["default"].name and city.paying_departments["default"].iban.startswith("UA")
        assert city.districts, city.id
    assert "Хортицький" in catalog.cities["zaporizhzhia"].district_names


def test_a_new_city_is_a_folder_with_a_city_file_and_its_programs(tmp_path):
    program_root(tmp_path)
    (tmp_path / "bucha").mkdir()
    city = yaml.safe_load((PROGRAMS_DIR / "zhytomyr" / "city.yaml").read_text())
    city.update(id="bucha", name_uk="Бучанська міська територіальна громада", council_uk="Бучанська міська рада")
    (tmp_path / "bucha" / "city.yaml").write_text(yaml.safe_dump(city, allow_unicode=True))
    program = yaml.safe_load((PROGRAMS_DIR / "zhytomyr" / "centenarians.yaml").read_text())
    program.update(id="bucha.centenarians", city="bucha")
    (tmp_path / "bucha" / "centenarians.yaml").write_text(yaml.safe_dump(program, allow_unicode=True))

    catalog = Catalog.load(tmp_path)
    decision = Engine(catalog).decide(application(
        "bucha.centenarians", {"resident_of_community": True}, submitted_on="2023-03-10", birth_date="1923-03-01"
    ))
    assert decision.eligible and decision.amount_kop == 1_000_000
    assert catalog.cities["bucha"].council_uk == "Бучанська міська рада"


def test_a_program_of_a_city_without_a_city_file_fails_at_load(tmp_path):
    program_root(tmp_path)
    (tmp_path / "zhytomyr").mkdir()
    shutil.copy(PROGRAMS_DIR / "zhytomyr" / "centenarians.yaml", tmp_path / "zhytomyr")
    with pytest.raises(ProgramError, match=r"city 'zhytomyr' has no city.yaml"):
        Catalog.load(tmp_path)


def test_a_city_file_with_an_invalid_treasury_account_names_the_file_and_the_field(tmp_path):
    program_root(tmp_path, "kamianske")
    path = tmp_path / "kamianske" / "city.yaml"
    data = yaml.safe_load(path.read_text())
    data["paying_departments"]["default"]["iban"] = "UA000000000000000000000000000"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ValueError, match=r"kamianske/city.yaml: paying_departments.default.iban"):
        load_cities(tmp_path)
