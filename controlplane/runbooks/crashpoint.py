"""A test-only crash hook: die like `kill -9` at one exact point of an execution.

    CONTROLPLANE_TEST_HOOKS=1 CONTROLPLANE_CRASH_AT=phase:step[:when] controlplane serve

The executor (and the remediator, for approvals) calls its hook at every boundary of an
execution; the hook built from the environment kills the process (SIGKILL, no cleanup, nothing
flushed) when the point matches.
Without CONTROLPLANE_TEST_HOOKS=1 the variable is ignored, so a stray setting in production
cannot kill anything. Points (`when` defaults to `before`):

    steps:<id>:before | started | acted | after     also rollback:<id>:..., on_resolved:<id>:...
        before: nothing recorded; started: the step recorded, not sent; acted: the action
        returned, its result not recorded (the in-flight case); after: recorded and audited
    verify::before | after                           before the query; after the verdict
    approval:<n>:before | after                      around recording the n-th approval (after:
        recorded and audited; for the last one needed, not yet launched)
    state:<state>:before | after                     around an execution's move to <state>
    resolution:<resolution>:before | after           around its alert episode's move
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping

CrashHook = Callable[[str, str, str], None]  # (phase, step, when)

WHENS = ("before", "started", "acted", "after")


def no_crash(_phase: str, _step: str, _when: str) -> None:
    """The production hook: nothing."""


def parse(spec: str) -> tuple[str, str, str]:
    """`phase:step[:when]` -> (phase, step, when); ValueError names the bad part."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(f"crash point {spec!r} is not phase:step[:when]")
    when = (parts[2] if len(parts) == 3 else "") or "before"
    if when not in WHENS:
        raise ValueError(f"crash point {spec!r}: when must be one of {WHENS}, not {when!r}")
    return parts[0], parts[1], when


def from_env(environ: Mapping[str, str] | None = None) -> CrashHook:
    environ = os.environ if environ is None else environ
    spec = environ.get("CONTROLPLANE_CRASH_AT", "")
    if environ.get("CONTROLPLANE_TEST_HOOKS") != "1" or not spec:
        return no_crash
    point = parse(spec)

    def crash(phase: str, step: str, when: str) -> None:
        if (phase, step, when) == point:
            os.kill(os.getpid(), signal.SIGKILL)
            os._exit(137)  # not reached where SIGKILL exists; the same exit code elsewhere

    return crash
