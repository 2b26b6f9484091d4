"""MTurk's XML documents: the ExternalQuestion a HIT points with, and the QuestionFormAnswers an
assignment's answer comes back as. Shared by the MTurk provider and the local endpoint."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # noqa: S405 - DTDs are refused before parsing (_parse)
from xml.sax.saxutils import escape

EXTERNAL_QUESTION_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
ANSWERS_NS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/"
    "QuestionFormAnswers.xsd"
)
# The field the task page posts its answers in, as JSON (see annotation.kinds).
ANSWERS_FIELD = "answers"


class XMLError(ValueError):
    """A document is not well-formed or not the MTurk schema it claims to be."""


def _parse(text: str) -> ET.Element:
    # No DTD can enter: that shuts out entity expansion and external entities in one step.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise XMLError("document type declarations are not allowed")
    try:
        return ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise XMLError(f"not well-formed XML: {exc}") from None


def external_question(url: str, frame_height: int = 0) -> str:
    """The ExternalQuestion XML for a task URL (frame height 0 = the whole window)."""
    return (
        f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_NS}">'
        f"<ExternalURL>{escape(url)}</ExternalURL>"
        f"<FrameHeight>{int(frame_height)}</FrameHeight>"
        "</ExternalQuestion>"
    )


def parse_external_question(text: str) -> tuple[str, int]:
    """(ExternalURL, FrameHeight) of an ExternalQuestion; XMLError if it is not one."""
    root = _parse(text)
    if root.tag != f"{{{EXTERNAL_QUESTION_NS}}}ExternalQuestion":
        raise XMLError(f"root element must be ExternalQuestion in {EXTERNAL_QUESTION_NS}")
    url_el = root.find(f"{{{EXTERNAL_QUESTION_NS}}}ExternalURL")
    height_el = root.find(f"{{{EXTERNAL_QUESTION_NS}}}FrameHeight")
    if url_el is None or not (url_el.text or "").strip():
        raise XMLError("ExternalQuestion has no ExternalURL")
    if height_el is None:
        raise XMLError("ExternalQuestion has no FrameHeight")
    try:
        height = int((height_el.text or "").strip())
    except ValueError:
        raise XMLError(f"FrameHeight {height_el.text!r} is not an integer") from None
    return url_el.text.strip(), height


def question_form_answers(fields: dict[str, str]) -> str:
    """The QuestionFormAnswers XML MTurk stores for the fields a worker's form posted."""
    parts = [f'<?xml version="1.0" encoding="UTF-8"?><QuestionFormAnswers xmlns="{ANSWERS_NS}">']
    for name, value in fields.items():
        parts.append(
            f"<Answer><QuestionIdentifier>{escape(name)}</QuestionIdentifier>"
            f"<FreeText>{escape(value)}</FreeText></Answer>"
        )
    parts.append("</QuestionFormAnswers>")
    return "".join(parts)


def parse_question_form_answers(text: str) -> dict[str, str]:
    """Field name -> value of a QuestionFormAnswers document (FreeText answers)."""
    root = _parse(text)
    if root.tag != f"{{{ANSWERS_NS}}}QuestionFormAnswers":
        raise XMLError("root element must be QuestionFormAnswers")
    out: dict[str, str] = {}
    for answer in root.findall(f"{{{ANSWERS_NS}}}Answer"):
        name = answer.findtext(f"{{{ANSWERS_NS}}}QuestionIdentifier", default="")
        out[name] = answer.findtext(f"{{{ANSWERS_NS}}}FreeText", default="")
    return out


def answers_json_from_fields(fields: dict[str, str]) -> str:
    """The answers JSON the task page submitted, from the fields it posted to externalSubmit.

    The page posts its answers in one ``answers`` field; a page that posts plain fields
    instead gets them as a JSON object.
    """
    if ANSWERS_FIELD in fields:
        return fields[ANSWERS_FIELD]
    return json.dumps({k: v for k, v in fields.items() if k != "assignmentId"})
