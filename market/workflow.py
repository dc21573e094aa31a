"""One small mechanism for every state machine: its changes, its states' names, and the refusal of a change it lacks.

A package describes its machine once (`Workflow(...)` in its `workflow.py`) and every change of state goes
through `check`. A change not in the table is a 409 whose message names both states in the reader's language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from market.errors import Conflict
from market.i18n import _


@dataclass(frozen=True)
class Workflow:
    """`transitions` maps (from, to) to the change's name (used in audit events); `labels` maps each state to
    its untranslated name (marked with `N_`); `refusal` is the untranslated message for a missing change, with
    `%(current)s` and `%(target)s`."""

    transitions: Mapping[tuple[str, str], str]
    labels: Mapping[str, str]
    refusal: str
    states: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        states = frozenset(state for pair in self.transitions for state in pair)
        missing = states - set(self.labels)
        if missing:
            raise ValueError(f"states without a label: {sorted(missing)}")
        object.__setattr__(self, "states", frozenset(self.labels))

    def label(self, state: str) -> str:
        """The state's name in the reader's language; an unknown value is shown as it is."""
        message = self.labels.get(state)
        return _(message) if message else str(state)

    def allows(self, current: str, target: str) -> bool:
        return (current, target) in self.transitions

    def check(self, current: str, target: str) -> str:
        """The change's name, or Conflict naming both states."""
        name = self.transitions.get((current, target))
        if name is None:
            raise Conflict(_(self.refusal, current=self.label(current).lower(), target=self.label(target).lower()))
        return name

    def named(self, states: Iterable[str]) -> frozenset[str]:
        """A named set of this machine's states, checked when the module loads."""
        chosen = frozenset(states)
        unknown = chosen - self.states
        if unknown:
            raise ValueError(f"not states of this workflow: {sorted(unknown)}")
        return chosen
