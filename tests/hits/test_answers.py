"""MTurk's XML documents: ExternalQuestion and QuestionFormAnswers."""

import json

import pytest

from hits.answers import (
    XMLError,
    answers_json_from_fields,
    external_question,
    parse_external_question,
    parse_question_form_answers,
    question_form_answers,
)


def test_external_question_round_trip_escapes_the_url():
    url = "https://annotate.example.org/task/7/?a=1&b=<2>"
    assert parse_external_question(external_question(url, 600)) == (url, 600)


def test_answers_round_trip_and_the_answers_field():
    answers = json.dumps([{"item": 1, "answer": 2}, {"item": 2, "answer": 0, "note": "<&>"}])
    xml = question_form_answers({"answers": answers, "item_1": "2"})
    assert "QuestionFormAnswers.xsd" in xml
    fields = parse_question_form_answers(xml)
    assert fields == {"answers": answers, "item_1": "2"}
    assert answers_json_from_fields(fields) == answers
    assert json.loads(answers_json_from_fields({"assignmentId": "X", "result": "1"})) == {
        "result": "1"
    }


@pytest.mark.parametrize(
    "text",
    [
        '<!DOCTYPE x [<!ENTITY a "aaaa">]><QuestionFormAnswers/>',
        "<QuestionFormAnswers><Answer>",
        "<Other/>",
    ],
)
def test_bad_documents_are_refused(text):
    with pytest.raises(XMLError):
        parse_question_form_answers(text)
