"""What the ``connector`` process does to start and end quickly: every command pays for both.

:func:`begin` runs first thing in the console script, :func:`over` once the first recipe is
loaded (or never, for a command that loads none: then the collector only runs less often), and
:func:`end` when the command is done, however it ended.

- The cyclic garbage collector: importing the plugins and building pydantic's models allocates
  objects that all live as long as the process. At Python's default thresholds the collector
  would scan them about fifty times during start-up to find no garbage, a tenth of
  ``connector validate``. :func:`begin` makes it wait; :func:`over` freezes what start-up built
  (later full collections skip it) and restores the thresholds for the run.
- The collection as the process ends: Python's shutdown collects over every object still alive
  (the plugins' modules, pydantic's schemas, whatever the command built), which took 70 ms and
  more after a ``connector validate`` of 60 ms of its own work. :func:`end` freezes them, so it
  has nothing to look at; the process's end frees them all the same. Files, connections and
  logs are closed by the commands themselves (and by ``atexit``), not left to that collection.
- PyYAML's printable check: ``yaml.reader`` compiles, when it is imported, a regular expression
  of the characters a YAML stream may not hold, written as the complement of every printable
  range up to U+10FFFF; ``re`` builds such a class one code point at a time, ~5 ms of every
  start-up (yaml/pyyaml#124 and #301, open since 2018). We parse with libyaml, which never uses
  it; PyYAML's own reader (our fallback) still does. :func:`begin` puts the same set, written as
  the few ranges the printable ones leave out (compiled in a tenth of the time), in ``re``'s
  cache under PyYAML's text, where ``yaml.reader``'s compile finds it. Where ``re`` keeps no such
  cache, nothing changes but the time.
"""

from __future__ import annotations

import gc
import re
import sys

#: The characters PyYAML's reader refuses, as ``yaml.reader.Reader.NON_PRINTABLE`` writes them.
PYYAML_NON_PRINTABLE = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
#: The same characters: the C0 controls but tab and line breaks, DEL and the C1 controls but
#: NEL, the surrogates, and the two non-characters at the end of the BMP.
NON_PRINTABLE = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"

#: The collector's thresholds while a command starts, and after (Python's defaults).
_STARTING_GC = (100_000, 10, 10)
_RUNNING_GC = gc.get_threshold()


def begin() -> None:
    """Before anything is imported: let the collector wait, and spare PyYAML's compile."""
    gc.set_threshold(*_STARTING_GC)
    cache = getattr(re, "_cache", None)
    if isinstance(cache, dict) and "yaml.reader" not in sys.modules:
        cache[str, PYYAML_NON_PRINTABLE, 0] = re.compile(NON_PRINTABLE)


def over() -> None:
    """Start-up is over: collect as usual, never again looking at what start-up built (the
    modules, classes and models live as long as the process)."""
    if gc.get_threshold() == _STARTING_GC:
        gc.freeze()
        gc.set_threshold(*_RUNNING_GC)


def end() -> None:
    """The command is done: spare the shutdown its collection over everything still alive."""
    gc.freeze()
