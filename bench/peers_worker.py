"""The peers' side of bench/peers.py. Runs in the peers' own venv (var/peers-venv), never the project's.

Reads the cases (JSON file: the two programs' application lines, and the subsistence minimum's
dated values), then answers commands on stdin, one JSON line each:

- ``{"cmd": "check"}``: every mode's (eligible, amount in kopiyky) per case, for the equality check;
- ``{"cmd": "round"}``: each mode timed once over every case, CPU seconds of this process per mode.

Modes: OpenFisca (openfisca-core + country-template, the two programs as variables added by a
reform) one situation at a time through its Web API handlers (``handlers.calculate`` untraced,
``handlers.trace`` traced), and vectorised (one simulation per program and month, arrays in);
GoRules ZEN (``zen-engine``): JSON line in -> decision with trace -> JSON out. Each mode starts
from the application's JSON line, as Dopomoga's end-to-end path does.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections import defaultdict

import numpy as np
import zen
from openfisca_core.parameters import ParameterNode
from openfisca_core.periods import ETERNITY, MONTH
from openfisca_core.reforms import Reform
from openfisca_core.simulation_builder import SimulationBuilder
from openfisca_core.variables import Variable
from openfisca_country_template import CountryTaxBenefitSystem
from openfisca_country_template.entities import Person
from openfisca_web_api import handlers

CENT, KAM = "zhytomyr.centenarians", "kamianske.fallen-ato-family-monthly"


def _ymd(dates):
    y = dates.astype("datetime64[Y]").astype(int) + 1970
    m = dates.astype("datetime64[M]").astype(int) % 12 + 1
    d = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    return y, m, d


def _variable(name, value_type, label, formula=None):
    """An OpenFisca variable of a person per month (what a class statement would declare)."""
    attributes = {"value_type": value_type, "entity": Person, "definition_period": MONTH, "label": label}
    if formula is not None:
        attributes["formula"] = formula
    return type(name, (Variable,), attributes)


def _centenarian_eligible(person, period, parameters):
    by, bm, bd = _ymd(person("birth", period))
    sy, sm, sd = _ymd(person("submitted_on", period))
    age = sy - by - ((sm < bm) | ((sm == bm) & (sd < bd)))
    return (age >= 100) & person("resident_of_community", period)


def _centenarian_amount(person, period, parameters):
    pay = int(parameters(period).dopomoga.centenarian_payment)
    return np.where(person("centenarian_eligible", period), pay, 0)


def _kam_eligible(person, period, parameters):
    month = period.start.year * 100 + period.start.month
    return person("kam_resident", period) * person("kam_family", period) * (month >= 202105)


def _kam_amount(person, period, parameters):
    pm = int(parameters(period).dopomoga.pm_general)
    return np.where(person("kam_eligible", period), (pm * 125 + 50) // 100, 0)


VARIABLES = [
    _variable("submitted_on", dt.date, "application date"),
    _variable("resident_of_community", bool, "Zhytomyr: resident of the community"),
    _variable("kam_resident", bool, "Kamianske: resident of the city"),
    _variable("kam_family", bool, "Kamianske: family member of a fallen ATO serviceman"),
    _variable("centenarian_eligible", bool, "Zhytomyr 1.1.12: aged 100 or more on the application date, resident",
              _centenarian_eligible),
    _variable("centenarian_amount", int, "Zhytomyr 1.1.12 payment, kopiyky", _centenarian_amount),
    _variable("kam_eligible", bool, "Kamianske: resident, family of a fallen ATO serviceman, from May 2021",
              _kam_eligible),
    _variable("kam_amount", int, "Kamianske: subsistence minimum + 25 %, kopiyky (half up)", _kam_amount),
]


def system(pm: dict[str, int]):
    class Programs(Reform):
        def apply(self):
            for variable in VARIABLES:
                self.add_variable(variable)

            def modify(parameters):
                parameters.add_child("dopomoga", ParameterNode("dopomoga", data={
                    "centenarian_payment": {"values": {"2021-01-01": 1_000_000}},
                    "pm_general": {"values": dict(pm)},
                }))
                return parameters

            self.modify_parameters(modifier_function=modify)

    return Programs(CountryTaxBenefitSystem())


def _facts(line: str):
    app = json.loads(line)
    period = app["period"] or app["submitted_on"][:7]
    return app, period


def situation(line: str):
    app, period = _facts(line)
    facts = app["facts"]
    person: dict = {"birth": {"ETERNITY": app["applicant"]["birth_date"] or "1900-01-01"}}
    if app["program_id"] == CENT:
        person["submitted_on"] = {period: app["submitted_on"]}
        person["resident_of_community"] = {period: facts.get("resident_of_community", False)}
        person["centenarian_eligible"] = {period: None}
        person["centenarian_amount"] = {period: None}
        wanted = ("centenarian_eligible", "centenarian_amount")
    else:
        person["kam_resident"] = {period: facts.get("resident_of_city", False)}
        person["kam_family"] = {period: facts.get("family_member_of_fallen_ato_serviceman", False)}
        person["kam_eligible"] = {period: None}
        person["kam_amount"] = {period: None}
        wanted = ("kam_eligible", "kam_amount")
    return {"persons": {"p": person}, "households": {"h": {"adults": ["p"]}}}, period, wanted


def web(tbs, lines, traced):
    out = []
    for line in lines:
        data, period, (eligible, amount) = situation(line)
        result = (handlers.trace if traced else handlers.calculate)(tbs, data)
        if traced:
            values = result["trace"]
            out.append((bool(values[f"{eligible}<{period}>"]["value"][0]), int(values[f"{amount}<{period}>"]["value"][0])))
        else:
            person = result["persons"]["p"]
            out.append((bool(person[eligible][period]), int(person[amount][period])))
    return out


def vectorised(tbs, lines):
    groups = defaultdict(list)
    for index, line in enumerate(lines):
        app, period = _facts(line)
        groups[(app["program_id"], period)].append((index, app))
    out = [None] * len(lines)
    for (program, period), rows in groups.items():
        n = len(rows)
        builder = SimulationBuilder()
        builder.create_entities(tbs)
        builder.declare_person_entity("person", [f"p{i}" for i in range(n)])
        household = builder.declare_entity("household", [f"h{i}" for i in range(n)])
        builder.join_with_persons(household, [f"h{i}" for i in range(n)], ["adult"] * n)
        sim = builder.build(tbs)
        sim.set_input("birth", ETERNITY, np.array([a["applicant"]["birth_date"] or "1900-01-01" for _, a in rows],
                                                  dtype="datetime64[D]"))
        facts = [a["facts"] for _, a in rows]
        if program == CENT:
            sim.set_input("submitted_on", period, np.array([a["submitted_on"] for _, a in rows], dtype="datetime64[D]"))
            sim.set_input("resident_of_community", period,
                          np.array([f.get("resident_of_community", False) for f in facts]))
            eligible, amount = sim.calculate("centenarian_eligible", period), sim.calculate("centenarian_amount", period)
        else:
            sim.set_input("kam_resident", period, np.array([f.get("resident_of_city", False) for f in facts]))
            sim.set_input("kam_family", period,
                          np.array([f.get("family_member_of_fallen_ato_serviceman", False) for f in facts]))
            eligible, amount = sim.calculate("kam_eligible", period), sim.calculate("kam_amount", period)
        for (index, _), e, a in zip(rows, eligible, amount, strict=True):
            out[index] = (bool(e), int(a))
    return out


def zen_graph(pm: dict[str, int]) -> dict:
    dated = sorted(((int(d.replace("-", "")), v) for d, v in pm.items()), reverse=True)
    pm_expr = "0"
    for since, value in reversed(dated):  # the latest date first in the nested conditions
        pm_expr = f"(period_start >= {since} ? {value} : {pm_expr})"
    cent = "resident and floor((submitted_on - birth_date) / 10000) >= 100"
    kam = "kam_resident and kam_family and period >= 202105"
    expressions = [
        {"id": "1", "key": "eligible", "value": f"program == 'c' ? ({cent}) : ({kam})"},
        {"id": "2", "key": "amount_kop",
         "value": f"program == 'c' ? (({cent}) ? 1000000 : 0) : (({kam}) ? floor(({pm_expr} * 125 + 50) / 100) : 0)"},
    ]
    return {"nodes": [
        {"id": "in", "type": "inputNode", "name": "application", "position": {"x": 0, "y": 0}},
        {"id": "rules", "type": "expressionNode", "name": "rules", "position": {"x": 200, "y": 0},
         "content": {"expressions": expressions}},
        {"id": "out", "type": "outputNode", "name": "decision", "position": {"x": 400, "y": 0}},
    ], "edges": [
        {"id": "a", "sourceId": "in", "targetId": "rules", "type": "edge"},
        {"id": "b", "sourceId": "rules", "targetId": "out", "type": "edge"},
    ]}


def _int(date: str | None) -> int:
    return int(date.replace("-", "")) if date else 0


def zen_traced(decision, lines, check=False):
    out = []
    for line in lines:
        app, period = _facts(line)
        facts = app["facts"]
        month = int(period.replace("-", ""))
        data = {
            "program": "c" if app["program_id"] == CENT else "k",
            "birth_date": _int(app["applicant"]["birth_date"]), "submitted_on": _int(app["submitted_on"]),
            "resident": facts.get("resident_of_community", False), "period": month, "period_start": month * 100 + 1,
            "kam_resident": facts.get("resident_of_city", False),
            "kam_family": facts.get("family_member_of_fallen_ato_serviceman", False),
        }
        result = decision.evaluate(data, {"trace": True})
        encoded = json.dumps({"application_id": app["application_id"], **result["result"], "trace": result["trace"]})
        if check:
            decided = json.loads(encoded)
            out.append((bool(decided["eligible"]), int(decided["amount_kop"])))
    return out


def main() -> None:
    cases = json.loads(open(sys.argv[1], encoding="utf-8").read())
    lines, pm = cases["lines"], cases["pm_general"]
    tbs = system(pm)
    decision = zen.ZenEngine().create_decision(json.dumps(zen_graph(pm)))
    modes = {
        "openfisca_web_untraced": lambda: web(tbs, lines, False),
        "openfisca_web_traced": lambda: web(tbs, lines, True),
        "openfisca_vectorised": lambda: vectorised(tbs, lines),
        "zen_traced_json": lambda: zen_traced(decision, lines),
    }
    checks = {**modes, "zen_traced_json": lambda: zen_traced(decision, lines, check=True)}
    print(json.dumps({"ready": True}), flush=True)
    for command in sys.stdin:
        cmd = json.loads(command)["cmd"]
        if cmd == "check":
            print(json.dumps({name: run() for name, run in checks.items()}), flush=True)
        elif cmd == "round":
            seconds = {}
            for name, run in modes.items():
                started = time.process_time()
                run()
                seconds[name] = time.process_time() - started
            print(json.dumps(seconds), flush=True)
        else:
            break


if __name__ == "__main__":
    main()
