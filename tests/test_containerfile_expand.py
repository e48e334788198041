from __future__ import annotations

import pytest

from rootseed.containerfile import StageScope, expand, global_arg_values, parse_string
from rootseed.containerfile.expand import ExpansionError, expand_word
from rootseed.containerfile.scope import DEFAULT_PATH

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


def test_global_args_and_build_arg_override() -> None:
    cf = parse_string("ARG B=base\nARG TAG=${B}-1\nFROM img:${TAG}\n")
    assert global_arg_values(cf.global_args, {})["TAG"] == "base-1"
    assert global_arg_values(cf.global_args, {"B": "x"})["TAG"] == "x-1"
    assert global_arg_values(cf.global_args, {"TAG": "y"})["TAG"] == "y"
    assert cf.image_references() == ("img:base-1",)
    assert cf.image_references({"TAG": "2"}) == ("img:2",)


def test_stage_scope_arg_visibility() -> None:
    scope = StageScope({"G": "global", "H": "h"}, {"B": "from-cli", "U": "undeclared"})
    assert scope.expand("$G$U") == ""  # globals and build args need a declaration
    scope.declare_arg("G", None)
    scope.declare_arg("B", "default")
    scope.declare_arg("D", "${G}-d")
    scope.declare_arg("N", None)
    assert scope.expand("$G|$B|$D|${N-unset}|$U") == "global|from-cli|global-d|unset|"


def test_stage_scope_env_sees_old_values_and_wins_over_arg() -> None:
    scope = StageScope({}, {}, env=[("A", "old")])
    scope.set_env([("A", "new"), ("B", "$A"), ("C", '"x y"')])
    assert scope.env == {"A": "new", "B": "old", "C": "x y"}
    scope.declare_arg("A", "from-arg")
    assert scope.expand("$A") == "new"


def test_run_environment_default_path() -> None:
    scope = StageScope({}, {"V": "1"})
    scope.declare_arg("V", None)
    assert scope.run_environment() == {"V": "1", "PATH": DEFAULT_PATH}
    scope.set_env([("PATH", "/bin")])
    assert scope.run_environment()["PATH"] == "/bin"
