"""The search space of a sweep: which config fields to vary, over what, and under which rules.

A space is a TOML file (format in ``docs/sweep.md``)::

    constraints = ["n_embd % n_head == 0"]     # rules every trial's config must satisfy

    [fixed]                                     # set on every trial (any config field)
    eval_interval = 50

    [params]                                    # swept config fields, by name
    lr = { low = 1e-4, high = 1e-2, log = true }
    n_layer = [2, 4, 6]                         # a list is a set of choices
    n_embd = { low = 64, high = 256, step = 64 }

Any config field can be swept by its flat name (``config.all_fields``): its type decides
whether a range is sampled as int or float, and values are checked as ``minigpt train`` checks
them. Constraints are small arithmetic expressions over the resolved config's fields, evaluated
without ``eval`` (only numbers, names, arithmetic, comparisons and and/or/not).
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import math
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minigpt.config import RunConfig, all_fields, coerce, read_toml, suggest
from minigpt.errors import MiniGPTError

# The study's options, here rather than in sweep.py so that the CLI lists them without
# importing optuna.
SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("median", "halving", "hyperband", "none")
PARAM_KEYS = ("choices", "low", "high", "step", "log")
TOP_KEYS = ("params", "fixed", "constraints")
# Set by the sweep itself (per trial), so a space may not choose them.
RESERVED = ("out_dir", "max_iters", "max_minutes")


@dataclass
class Param:
    """One swept field: a list of choices, or a numeric range (optionally stepped or log)."""

    name: str
    kind: str  # "choice", "int" or "float"
    choices: list[Any] = field(default_factory=list)
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this parameter's value."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, self.choices)
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[Any]:
        """Every value, for grid search (ranges need a step)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.step is None:
            raise MiniGPTError(
                f"grid search needs a finite set of values, but param '{self.name}' is a "
                "continuous range; give it choices = [...] or a step, or use --sampler random/tpe"
            )
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        values = [self.low + i * self.step for i in range(count)]
        if self.kind == "int":
            return [int(v) for v in values]
        return [round(v, 12) for v in values]

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.name} in {self.choices}"
        extra = f" step {self.step:g}" if self.step else ""
        return f"{self.name} in [{self.low:g}, {self.high:g}]{extra}{' log' if self.log else ''}"


@dataclass
class SearchSpace:
    params: dict[str, Param]
    fixed: dict[str, Any] = field(default_factory=dict)
    constraints: list[str] = field(default_factory=list)
    source: str = "the search space"

    def suggest(self, trial: Any) -> dict[str, Any]:
        """One point of the space, sampled by the trial's sampler."""
        return {name: p.suggest(trial) for name, p in self.params.items()}

    def grid(self) -> list[dict[str, Any]]:
        """Every point of the space, in file order (the last param varies fastest)."""
        names = list(self.params)
        values = [self.params[n].grid() for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]

    def violated(self, config: RunConfig) -> str | None:
        """The first constraint the config breaks, as a readable reason; None if all hold."""
        names = {k: v for section in config.to_dict().values() for k, v in section.items()}
        for expr in self.constraints:
            tree = ast.parse(expr, mode="eval")
            try:
                ok = _evaluate(tree.body, names)
            except (ArithmeticError, TypeError, ValueError) as e:
                ok, why = False, f" ({type(e).__name__}: {e})"
            else:
                why = ""
            if not ok:
                used = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})
                values = ", ".join(f"{n}={names[n]}" for n in used)
                return f"constraint '{expr}' does not hold ({values}){why}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, stored with the study to detect a changed space on resume."""
        return {
            "params": {n: dataclasses.asdict(p) for n, p in self.params.items()},
            "fixed": self.fixed,
            "constraints": self.constraints,
        }


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a search-space TOML file."""
    return parse_space(read_toml(path, "search space"), str(path))


def parse_space(data: dict[str, Any], source: str = "the search space") -> SearchSpace:
    """Check a search space given as a dict (the TOML's contents); one-line errors."""
    for key in data:
        if key not in TOP_KEYS:
            raise MiniGPTError(
                f"unknown key '{key}' in {source}{suggest(key, TOP_KEYS)}; "
                "a space has [params], optional [fixed] and constraints = [...]"
            )
    raw = data.get("params")
    if not isinstance(raw, dict) or not raw:
        raise MiniGPTError(
            f"{source} sweeps nothing; add a [params] table, e.g. lr = {{ low = 1e-4, "
            "high = 1e-2, log = true }"
        )
    fields = all_fields()
    fixed = data.get("fixed", {})
    if not isinstance(fixed, dict):
        raise MiniGPTError(f"'fixed' in {source} must be a table like [fixed]")
    for name, value in fixed.items():
        _check_name(name, fields, source, "[fixed]")
        fixed[name] = coerce(name, value, fields[name][2])
    params = {name: _parse_param(name, spec, fields, source) for name, spec in raw.items()}
    constraints = data.get("constraints", [])
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        raise MiniGPTError(
            f"constraints in {source} must be a list of strings, e.g. "
            'constraints = ["n_embd % n_head == 0"]'
        )
    for expr in constraints:
        _check_expression(expr, fields, source)
    return SearchSpace(params=params, fixed=fixed, constraints=constraints, source=source)


def _check_name(name: str, fields: dict[str, Any], source: str, where: str) -> None:
    if name not in fields:
        raise MiniGPTError(
            f"unknown config field '{name}' in {where} of {source}{suggest(name, fields)}; "
            "`minigpt train --help` lists the fields"
        )
    if name in RESERVED:
        raise MiniGPTError(
            f"{name} cannot be set in {where} of {source}: the sweep sets it per trial "
            "(use --budget for the training length, --out for the folder)"
        )


def _parse_param(name: str, spec: Any, fields: dict[str, Any], source: str) -> Param:
    _check_name(name, fields, source, "[params]")
    where = f"param '{name}' in {source}"
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise MiniGPTError(
            f"{where} must be a list of choices or a table like {{ low = 1, high = 8 }}"
        )
    for key in spec:
        if key not in PARAM_KEYS:
            raise MiniGPTError(
                f"unknown key '{key}' for {where}{suggest(key, PARAM_KEYS)}; "
                f"use {', '.join(PARAM_KEYS)}"
            )
    tp = fields[name][2]
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
            raise MiniGPTError(f"{where}: give either a non-empty choices list or low/high")
        return Param(name, "choice", choices=[coerce(name, c, tp) for c in choices])
    return _parse_range(name, spec, tp, where)


def _parse_range(name: str, spec: dict[str, Any], tp: Any, where: str) -> Param:
    if "low" not in spec or "high" not in spec:
        raise MiniGPTError(f"{where} needs low and high (or a choices list)")
    kind = "int" if tp is int else "float" if tp is float else None
    if kind is None:
        raise MiniGPTError(f"{where}: a range needs a numeric field; give choices = [...]")
    low, high = (coerce(name, spec[k], tp) for k in ("low", "high"))
    step = coerce(name, spec["step"], tp) if "step" in spec else None
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise MiniGPTError(f"{where}: log must be true or false")
    if not low < high:
        raise MiniGPTError(f"{where}: low ({low}) must be below high ({high})")
    if step is not None and step <= 0:
        raise MiniGPTError(f"{where}: step must be positive, got {step}")
    if log and low <= 0:
        raise MiniGPTError(f"{where}: a log range needs low > 0, got {low}")
    if log and step is not None:
        raise MiniGPTError(f"{where}: use either log = true or a step, not both")
    return Param(name, kind, low=low, high=high, step=step, log=log)


# -- constraint expressions ------------------------------------------------------------------

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}


def _evaluate(node: ast.AST, names: dict[str, Any]) -> Any:
    """Evaluate a checked expression tree (see ``_check_expression``) over config values."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, names), _evaluate(node.right, names))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, names))
    if isinstance(node, ast.BoolOp):
        values = (_evaluate(v, names) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    assert isinstance(node, ast.Compare)
    left = _evaluate(node.left, names)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _evaluate(right_node, names)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def _check_expression(expr: str, fields: dict[str, Any], source: str) -> None:
    """Accept only names of config fields, literals, arithmetic, comparisons and logic."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise MiniGPTError(f"constraint '{expr}' in {source} is not a valid expression") from None
    allowed = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp)
    allowed += (ast.BoolOp, ast.And, ast.Or, ast.Compare)
    allowed += tuple(_BINARY) + tuple(_COMPARE) + tuple(_UNARY)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise MiniGPTError(
                f"constraint '{expr}' in {source} uses {type(node).__name__}, which is not "
                "allowed; use field names, numbers, + - * / // % **, comparisons, and/or/not"
            )
        if isinstance(node, ast.Name) and node.id not in fields:
            raise MiniGPTError(
                f"constraint '{expr}' in {source} names unknown field '{node.id}'"
                f"{suggest(node.id, fields)}"
            )
