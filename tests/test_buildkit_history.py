"""``created_by`` as BuildKit's Dockerfile frontend writes it (dockerfile2llb/convert.go,
v0.26.3: ``commitToHistory``, ``runCommandString``, ``dispatchCopy``, ``dispatchArg``...).

The reference cases check COPY, ENV, LABEL, WORKDIR, USER and ARG against BuildKit's own
output (tests/test_buildkit_cases.py); these check the rest of what convert.go does."""

from __future__ import annotations

from rootseed.containerfile import parse_string
from rootseed.oci.buildkit.history import stage_history
from rootseed.plan import plan


def history(text: str, **build_args: str) -> list[tuple[str, bool]]:
    p = plan(parse_string(text), build_args=build_args)
    steps = stage_history([p.target_stage], "T")  # every test's target is FROM scratch
    return [(s.entry.created_by, s.layer) for s in steps]


def test_run_lists_the_stage_build_args_before_its_argv() -> None:
    found = history("FROM scratch\nARG A=1 B\nENV A=2\nRUN echo hi\n", B="x")
    assert found[-1] == ("RUN |2 A=2 B=x /bin/sh -c echo hi # buildkit", True)
    assert found[0] == ("ARG A=1 B=x", False)


def test_run_without_build_args_and_exec_form() -> None:
    assert history('FROM scratch\nRUN ["/bin/busybox", "sh", "-c", "a b"]\n') == [
        ("RUN /bin/busybox sh -c a b # buildkit", True)]


def test_config_only_instructions_and_go_quoting() -> None:
    found = history('FROM scratch\nSHELL ["/bin/sh", "-l", "-c"]\nENTRYPOINT ["/a", "b c"]\n'
                    'CMD run "x"\nWORKDIR /\n')
    assert found == [("SHELL [/bin/sh -l -c]", False),
                     ('ENTRYPOINT ["/a" "b c"]', False),
                     ('CMD ["/bin/sh" "-l" "-c" "run \\"x\\""]', False),
                     ("WORKDIR /", False)]  # WORKDIR / makes no layer


def test_copy_keeps_chown_chmod_and_heredoc_names_but_not_from() -> None:
    found = history("FROM scratch AS a\nFROM scratch\nCOPY --from=a --chmod=644 /x /y\n"
                    "COPY <<EOF /z\nhi\nEOF\n")
    assert found == [("COPY --chmod=644 /x /y # buildkit", True),
                     ("COPY <<EOF /z # buildkit", True)]
