from __future__ import annotations

import pytest

from rootseed.containerfile import expand
from rootseed.containerfile.expand import ExpansionError, expand_word

ENV = {"A": "one", "EMPTY": "", "P": "/usr/bin", "SPACE": "a b"}


@pytest.mark.parametrize(("word", "expected"), [
    ("$A", "one"),
    ("${A}", "one"),
    ("x${A}y", "xoney"),
    ("$A/bin", "one/bin"),
    ("$UNSET", ""),
    ("${UNSET}", ""),
    ("${UNSET:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${UNSET-dflt}", "dflt"),
    ("${A:-dflt}", "one"),
    ("${A:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET:+alt}", ""),
    ("${UNSET:-$A}", "one"),
    ("${UNSET:-${P}/x}", "/usr/bin/x"),
    ("\\$A", "$A"),
    ("\\${A}", "${A}"),
    ("a\\ b", "a b"),
    ("'$A'", "$A"),
    ('"$A"', "one"),
    ('"a\\"b"', 'a"b'),
    ('"a\\$A"', "a$A"),
    ('"a\\nb"', "a\\nb"),
    ('"a\\\\b"', "a\\b"),
    ("\"it's\"", "it's"),
    ("'say \"hi\"'", 'say "hi"'),
    ("$", "$"),
    ("a$", "a$"),
    ("$-", ""),
    ("$1x", "x"),
    ("trailing\\", "trailing"),
    ("$SPACE", "a b"),
    ("", ""),
])
def test_expand(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


@pytest.mark.parametrize(("word", "expected"), [
    ("echo \"$A\" '$A'", "echo \"one\" 'one'"),
    ("cost \\$5", "cost $5"),
    ("keep 'q'", "keep 'q'"),
])
def test_expand_raw_heredoc_mode_keeps_quotes(word: str, expected: str) -> None:
    assert expand(word, ENV, quotes=False) == expected


@pytest.mark.parametrize("word", ["${", "${A", "${A:-x", "${}", "'open", '"open', "${A:#x}",
                                  "${A:%x}", "${A!x}", "${A/x", "${A#\\x}",
                                  "${UNSET:?need it}", "${EMPTY:?}", "${UNSET?}"])
def test_expand_errors(word: str) -> None:
    with pytest.raises(ExpansionError):
        expand(word, ENV)


# BuildKit frontend/dockerfile/shell/lex.go processDollar: '#', '%' (shortest/longest
# prefix/suffix removal with * and ? patterns) and '/' (replace first / all); the cases
# follow BuildKit's shell/lex_test.go (TestProcessWithMatches-style words).
@pytest.mark.parametrize(("word", "expected"), [
    ("${V#*.}", "2.3-rc1"),
    ("${V##*.}", "3-rc1"),
    ("${V%.*}", "1.2"),
    ("${V%%.*}", "1"),
    ("${V%-*}", "1.2.3"),
    ("${V#1}", ".2.3-rc1"),
    ("${V#x}", "1.2.3-rc1"),
    ("${V#?.}", "2.3-rc1"),
    ("${V/./_}", "1_2.3-rc1"),
    ("${V//./_}", "1_2_3-rc1"),
    ("${V//x/_}", "1.2.3-rc1"),
    ("${UNSET#x}", ""),
    ("${V//[0-9]/n}", "1.2.3-rc1"),  # no bracket expressions: '[' is literal
    ("${image#idle}", "box"),  # dockerfile_args_test.go testDefaultEnvWithArgs
])
def test_expand_pattern_modifiers(word: str, expected: str) -> None:
    assert expand(word, {"V": "1.2.3-rc1", "image": "idlebox"}) == expected


def test_expand_word_reports_unmatched_names() -> None:
    result = expand_word("${A}-$UNSET-${OTHER:-x}", ENV)
    assert result.text == "one--x"
    assert result.unmatched == {"UNSET", "OTHER"}
    assert result.matched == {"A"}


def test_question_modifier_passes_when_set() -> None:
    assert expand("${A:?msg}", ENV) == "one"
    assert expand("${EMPTY?msg}", ENV) == ""
