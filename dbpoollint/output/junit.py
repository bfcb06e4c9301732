"""JUnit XML: one test case per finding, grouped by file, for CI systems that show test reports."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from xml.etree import ElementTree

from dbpoollint.checks.base import Finding


def format_junit(findings: Sequence[Finding]) -> str:
    suites = ElementTree.Element(
        "testsuites", name="dbpoollint", tests=str(len(findings)), failures=str(len(findings))
    )
    for path, group in groupby(findings, key=lambda f: f.path):
        items = list(group)
        suite = ElementTree.SubElement(
            suites, "testsuite", name=path, tests=str(len(items)), failures=str(len(items))
        )
        for f in items:
            case = ElementTree.SubElement(
                suite, "testcase", name=f"{f.code}:{f.span.line}:{f.span.column}", classname=path
            )
            failure = ElementTree.SubElement(case, "failure", message=f.message)
            failure.text = f"{path}:{f.span.line}:{f.span.column}: {f.code} {f.message}"
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
