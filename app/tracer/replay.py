"""The program run again, untraced and in float64, for the numeric check (check.py).

A run is a sequence of torch calls, the same sequence every time for the same program and seed.
A place in a run is an `Event`: (call number, phase, position of the tensor among that call's
tensors). The recording run (`Record`) notes, for every tensor, the last event that gave its
memory a value (its making, or the in-place call that last changed it, through any alias); a
nudging run (`Nudge`) counts the same calls, changes one element of that tensor's memory at that
event, and stops at the backward pass it measures, with the pass's objective (the root, or its
product with the pass's `gradient`). Nothing is drawn or recorded about the program itself here.
"""

from __future__ import annotations

import math
import random
import sys
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from .calls import BACKWARD, WIDE, Backward, Geometry, backward_call, changed_count, changes, flat, inputs_of, storage_key, widen
from .module_tree import named_parameters
from .names import BIND, DISPLAY, LOOP, instrument
from .program import PROGRAM

SEED = 0  # every run of a check starts from it: a program's random draws are the same in each

Event = tuple[int, int, int]  # (call number, phase, position); phases below
BEFORE, CHANGED, MADE = 0, 1, 2  # an input before the call, an input the call changed, an output


class Stop(BaseException):
    """Raised into the program at the backward pass a nudging run measures: its objective."""

    def __init__(self, value: float) -> None:
        super().__init__(value)
        self.value = value


class Runs(TorchFunctionMode):
    """What every run does to each torch call: float64, a call count, backward calls to `on_backward`."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.passes = 0
        self.halt: Stop | None = None  # once stopped, every later call stops again (a program's `except:` caught it)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict[str, Any] | None = None) -> Any:
        if self.halt is not None:
            raise self.halt
        func, args, kwargs = widen(func, args, kwargs or {})
        call = self.calls
        self.calls += 1
        api = BACKWARD.get(func)
        if api is not None:
            b = backward_call(api, args, kwargs)
            if b is None:
                return func(*args, **kwargs)
            index = self.passes
            self.passes += 1
            return self.on_backward(index, b, func, args, kwargs)
        return self.on_call(call, func, args, kwargs)

    def on_call(self, call: int, func: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        return func(*args, **kwargs)

    def on_backward(self, index: int, b: Backward, func: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        return func(*args, **kwargs)


@dataclass
class _Seen:
    ref: weakref.ref
    event: Event
    key: int | None


class Record(Runs):
    """The recording run: for every tensor, the last event that gave its memory a value."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[int, _Seen] = {}
        self.by_memory: dict[int, list[int]] = {}

    def event_of(self, t: torch.Tensor) -> Event | None:
        s = self.seen.get(id(t))
        return s.event if s is not None and s.ref() is t else None

    def _see(self, t: torch.Tensor, event: Event) -> None:
        s = self.seen.get(id(t))
        if s is not None and s.ref() is t:
            return
        key = storage_key(t)
        self.seen[id(t)] = _Seen(weakref.ref(t), event, key)
        if key is not None:
            self.by_memory.setdefault(key, []).append(id(t))

    def _changed(self, t: torch.Tensor, event: Event) -> None:
        key = storage_key(t)
        self._see(t, event)
        mine = self.seen[id(t)]
        if mine.key != key:  # `w.data = other`: its memory is other's now
            mine.key = key
            if key is not None:
                self.by_memory.setdefault(key, []).append(id(t))
        if key is None:
            return
        alive = []
        for tid in self.by_memory.get(key, ()):
            s = self.seen.get(tid)
            if s is not None and s.key == key and s.ref() is not None:
                s.event = event
                alive.append(tid)
        self.by_memory[key] = alive

    def on_call(self, call: int, func: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        ins = inputs_of(args, kwargs)
        for pos, t in enumerate(ins):
            self._see(t, (call, BEFORE, pos))
        out = func(*args, **kwargs)
        if changes(func, args, kwargs):
            for pos in range(min(changed_count(args, kwargs), len(ins))):
                self._changed(ins[pos], (call, CHANGED, pos))
        for pos, t in enumerate(flat(out, [])):
            self._see(t, (call, MADE, pos))
        return out


@dataclass
class Target:
    """One nudge: `delta` added to one element of a tensor's memory at `event`, measured at pass `stop`."""

    event: Event
    geometry: Geometry
    index: tuple[int, ...]
    delta: float
    stop: int


class Nudge(Runs):
    """A nudging run (or, without a target, a run that only measures): stops at pass `stop` with its objective."""

    def __init__(self, target: Target | None, stop: int) -> None:
        super().__init__()
        self.target = target
        self.stop = stop
        self.objectives: list[float | None] = []
        self.done = target is None

    def _stop(self, value: float) -> Stop:
        self.halt = Stop(value)
        return self.halt

    def _nudge(self, on: torch.Tensor) -> None:
        assert self.target is not None
        view = self.target.geometry.view(on)
        if view is None:
            raise self._stop(math.nan)
        view[self.target.index] += self.target.delta
        self.done = True

    def on_call(self, call: int, func: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        t = self.target
        if t is None or call != t.event[0]:
            return func(*args, **kwargs)
        _, phase, pos = t.event
        if phase != MADE:
            ins = inputs_of(args, kwargs)
            if pos >= len(ins):
                raise self._stop(math.nan)
            if phase == BEFORE:
                self._nudge(ins[pos])
                return func(*args, **kwargs)
            out = func(*args, **kwargs)
            self._nudge(ins[pos])
            return out
        out = func(*args, **kwargs)
        made = flat(out, [])
        if pos >= len(made):
            raise self._stop(math.nan)
        self._nudge(made[pos])
        return out

    def on_backward(self, index: int, b: Backward, func: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        value = b.objective()
        self.objectives.append(value)
        if index == self.stop:
            raise self._stop(math.nan if value is None or not self.done else value)
        return func(*args, **kwargs)


class _Sink:
    """stdout and stderr of a check's runs: nobody reads them."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@dataclass
class Outcome:
    """How a run ended: at a Stop (its value), or the program's own end or exception."""

    stopped: float | None = None
    error: BaseException | None = None
    names: dict[int, tuple[weakref.ref, str]] = field(default_factory=dict)


Binder = Callable[[str, Any, int], object]  # what it returns is not used


class Program:
    """A program compiled once and run as often as a check needs, each run from the same seed."""

    def __init__(self, source: str) -> None:
        self.code = instrument(source, PROGRAM)  # raises SyntaxError like compile()

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        saved = sys.stdout, sys.stderr, torch.get_default_dtype(), torch.is_grad_enabled()
        sys.stdout = sys.stderr = _Sink()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.set_default_dtype(WIDE)
                torch.set_grad_enabled(True)
                yield
        finally:
            sys.stdout, sys.stderr = saved[0], saved[1]
            torch.set_default_dtype(saved[2])
            torch.set_grad_enabled(saved[3])

    def run(self, mode: Runs, bind: Binder | None = None) -> Outcome:
        """Run the program once under `mode`; never raises for what the program does (a Stop ends it)."""
        outcome = Outcome()

        def on_bind(line: int, *pairs: Any) -> None:
            for i in range(0, len(pairs), 2):
                name, obj = pairs[i], pairs[i + 1]
                if isinstance(obj, torch.Tensor) and id(obj) not in outcome.names:
                    outcome.names[id(obj)] = (weakref.ref(obj), name)
                elif isinstance(obj, torch.nn.Module):
                    for path, p in named_parameters(obj, name):
                        if id(p) not in outcome.names:
                            outcome.names[id(p)] = (weakref.ref(p), path)
                if bind is not None:
                    bind(name, obj, line)

        env: dict[str, Any] = {
            "__name__": "__main__",
            "__builtins__": __builtins__,
            BIND: on_bind,
            DISPLAY: _shown,
            LOOP: _no_loop,
        }
        torch.default_generator.manual_seed(SEED)  # not torch.manual_seed: its CUDA bookkeeping costs ms per run
        random.seed(SEED)
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed(SEED)
        with self._quiet():
            try:
                with mode:
                    exec(self.code, env)  # running the program is the point (in the sandbox)
            except Stop:
                pass
            except BaseException as e:  # noqa: BLE001 - the program's own failure, or the sandbox's deadline (the caller decides)
                outcome.error = e
            finally:
                env.clear()
        if mode.halt is not None:  # stopped where it should, even if the program caught it and went on
            outcome.stopped, outcome.error = mode.halt.value, None
        return outcome


def _no_loop(line: int) -> None:
    """The rewrite's loop report (names.LOOP): a replay records no iterations."""


def _shown(line: int, obj: Any) -> Any:
    return obj
