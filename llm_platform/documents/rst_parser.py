"""docutils' reStructuredText parser, set up for many documents in one process.

`publish_doctree` as docutils ships it pays two costs on every document that
change nothing in the tree it returns:

- it builds its settings (an option parser over every component's options,
  docutils.conf files read) per call: here they are built once from docutils'
  defaults and copied per document (docutils writes into them). No config file
  is read: what a document becomes never depends on a docutils.conf lying in
  the working directory;
- each nested block (list, directive body, table cell) gets a new state machine
  that builds all 15 parser states and their transitions, though a block uses
  one or two: here a nested machine builds a state when it is first asked for.
  That was a quarter of the parse time on real READMEs.

The states are docutils' own classes, subclassed only to nest the machine
below, so the tree is the one `publish_doctree` returns (a test compares them).
docutils is imported at the top: import this module where a document is parsed.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from docutils import frontend, nodes, utils
from docutils.core import publish_doctree
from docutils.parsers.rst import Parser, states
from docutils.readers.standalone import Reader
from docutils.writers.null import Writer


def parse_rst(text: str, overrides: Mapping[str, Any]) -> nodes.document:
    """Return the docutils document tree of `text`, with settings `overrides` on docutils' defaults."""
    settings = copy.copy(_settings(tuple(sorted(overrides.items()))))
    settings.record_dependencies = utils.DependencyList()  # a list docutils appends to: one per document
    return publish_doctree(text, parser=_LazyStatesParser(), settings=settings)


@functools.lru_cache(maxsize=4)
def _settings(overrides: tuple[tuple[str, Any], ...]) -> frontend.Values:
    settings = frontend.get_default_settings(Parser, Reader, Writer)
    settings.traceback = True  # what publish_doctree sets: a parser error is raised, not printed and swallowed
    for name, value in overrides:
        setattr(settings, name, value)
    return settings


class _StatesOnFirstUse(dict):
    """A state machine's states by name, each built when first asked for."""

    def __init__(self, machine: states.NestedStateMachine, state_classes: Iterable[type]) -> None:
        super().__init__()
        self.machine = machine
        self.classes = {state_class.__name__: state_class for state_class in state_classes}
        self.running = False

    def __missing__(self, name: str) -> states.RSTState:
        state = self[name] = self.classes[name](self.machine, self.machine.debug)
        if self.running:  # the machine initialised the states it had when it started
            state.runtime_init()
        return state

    def __contains__(self, name: object) -> bool:
        return name in self.classes


class _LazyNestedStateMachine(states.NestedStateMachine):
    def add_states(self, state_classes: Iterable[type]) -> None:
        self.states = _StatesOnFirstUse(self, state_classes)

    def runtime_init(self) -> None:
        self.states.running = True
        super().runtime_init()


class _NestsLazyMachines(states.RSTState):
    nested_sm = _LazyNestedStateMachine
    nested_sm_cache: ClassVar[list[states.NestedStateMachine]] = []  # docutils' own cache holds machines of its states

    def __init__(self, state_machine: states.RSTStateMachine, debug: bool = False) -> None:
        super().__init__(state_machine, debug)
        # docutils names its module's state classes here (the indent kwargs are this same dict).
        self.nested_sm_kwargs["state_classes"] = _STATE_CLASSES


# Same names as docutils' states: a machine finds a state by its class name.
_STATE_CLASSES = tuple(type(cls.__name__, (_NestsLazyMachines, cls), {}) for cls in states.state_classes)


class _LazyStatesParser(Parser):
    def __init__(self) -> None:
        super().__init__()
        self.state_classes = _STATE_CLASSES
