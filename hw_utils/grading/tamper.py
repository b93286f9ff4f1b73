"""Static scan of the student's cells for what the grading boundary cannot decide.

The tests run in a checker kernel that student code cannot reach, and only data crosses back
from the student's kernel, so most tricks can no longer earn a point. What remains is flagged
(``static:<kind>`` in grades.csv), never scored: an instructor looks. Honest homework does none
of these; the course's own solutions, ``%%time``, ``%timeit``, ``%matplotlib``, ``%%capture``,
``IPython.display``, tqdm, decorators, helpers, NumPy and prints scan clean.

- ``reference``: a course reference implementation of a function this assignment asks for is
  used (by import, attribute or alias), or hw_utils is reached by a computed name (``getattr``
  with a computed name, ``importlib``, ``sys.modules``), which hides what is used;
- ``magic``: an IPython magic or shell escape outside the allowlist (``!ls``, ``%run``,
  ``%%bash``, ``%load``...), including ``get_ipython().run_line_magic`` written out;
- ``patch``: changing what the tests' probes run on in the student's kernel: attributes of
  torch, NumPy, builtins, sys or hw_utils (``torch.backends`` settings excepted), ``setattr``,
  ``vars()``/``__dict__`` of those modules, ``sys.modules``, the IPython shell's hooks (input
  transformers, events, display formatters, exception handlers...); and the ways to do that
  without naming the target: ``__code__``/``__defaults__``/``__dict__``... of anything,
  ``setattr`` or ``vars`` as values (aliased, in ``functools.partial``), ``__builtins__``,
  ``object.__setattr__``, frames (``sys._getframe``, ``f_globals``, tracebacks), ``gc``'s object
  lists, computed names on builtins, sys or IPython;
- ``process``: process and signal tricks: ``os._exit``, ``os.kill``, ``fork``, signals,
  subprocesses, ``ctypes``, sockets;
- ``dynamic_code``: ``exec``, ``eval``, ``compile``, ``__import__``, ``importlib``, unpickling
  (``pickle.loads``, ``torch.load(weights_only=False)``), built code objects: they hide the rest.
"""

from __future__ import annotations

import ast
import threading
from typing import NamedTuple

from IPython.core.inputtransformer2 import TransformerManager

SHELL = "<shell>"
ALLOWED_MAGICS = {"matplotlib", "time", "timeit", "capture"}
PATCH_ROOTS = {"torch", "numpy", "builtins", "sys", "hw_utils", "IPython"}
ALLOWED_PATCHES = ("torch.backends.",)
GET_SHELL = {"get_ipython", "IPython.get_ipython", "IPython.core.getipython.get_ipython"}
MAGIC_RUNNERS = {"run_line_magic", "run_cell_magic", "magic"}
PROCESS_CALLS = {
    "os._exit", "os.kill", "os.killpg", "os.abort", "os.fork", "os.forkpty", "os.system",
    "os.popen", "os.execv", "os.execve", "os.execvp", "os.execl", "os.setsid", "os.setuid",
    "signal.signal", "signal.alarm", "signal.setitimer", "signal.pthread_kill",
}  # fmt: skip
PROCESS_MODULES = {"ctypes", "subprocess", "socket", "pty", "multiprocessing", "cffi", "signal"}
DYNAMIC_CALLS = {
    "exec", "eval", "compile", "__import__", "importlib.import_module", "importlib.reload",
    "importlib.__import__", "pickle.loads", "pickle.load", "marshal.loads", "types.FunctionType",
    "types.CodeType", "dill.loads", "cloudpickle.loads",
}  # fmt: skip
# Builtins that change or hide what an object is; as values (aliased, passed to partial or map)
# they are flagged too, since their later calls cannot be followed.
CHANGING_BUILTINS = {"setattr", "delattr", "vars", "exec", "eval", "compile", "__import__"}
# Attributes whose change rewires a function or object in place (honest homework never sets
# them): the tests' probes could be swapped from inside without naming them.
REWIRING_ATTRIBUTES = {
    "__code__", "__defaults__", "__kwdefaults__", "__globals__", "__dict__", "__class__",
    "__bases__", "__closure__", "__call__", "__getattribute__", "__setattr__",
}  # fmt: skip
# Reaching other code's frames, globals or every live object: the way to a probe without its name.
FRAME_ATTRIBUTES = {"f_globals", "f_locals", "f_back", "tb_frame", "gi_frame", "cr_frame"}
REACHING_CALLS = {
    "sys._getframe", "inspect.currentframe", "inspect.stack", "inspect.getouterframes",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
    "threading.settrace", "sys.addaudithook",
}  # fmt: skip
COMPUTED_NAME_ROOTS = {"hw_utils", "builtins", "sys", "IPython", "__builtins__", SHELL}


class Finding(NamedTuple):
    cell: int
    kind: str
    detail: str


# CPython 3.11's ast.parse is not thread-safe: two grading jobs (threads) parsing at once can
# fail with "SystemError: AST constructor recursion depth mismatch" (cpython gh-106905; seen
# here with --jobs 2). Every parse of this package goes through parse_python.
_PARSE_LOCK = threading.Lock()


def parse_python(code: str) -> ast.Module:
    """``ast.parse(code)``, one thread at a time."""
    with _PARSE_LOCK:
        return ast.parse(code)


def to_python(source: str) -> str | None:
    """Cell source with IPython syntax turned into Python; ``None`` when it does not parse."""
    try:
        code = TransformerManager().transform_cell(source)
        parse_python(code)
    except (SyntaxError, ValueError, IndexError):
        return None
    return code


class _Scanner(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str], cell: int, references: dict[str, str]):
        self.aliases = aliases  # local name -> dotted path it stands for
        self.cell = cell
        self.references = references  # dotted path -> graded name (this assignment's)
        self.findings: list[Finding] = []
        self._calls: list[ast.Call] = []  # the calls being visited, innermost last

    def flag(self, kind: str, node: ast.AST, detail: str) -> None:
        line = getattr(node, "lineno", "?")
        self.findings.append(Finding(self.cell, kind, f"line {line}: {detail}"))

    def dotted(self, node: ast.AST) -> str | None:
        """``a.b.c`` with the first name resolved through imports and aliases, or None; the
        IPython shell (``get_ipython()``) is ``<shell>``."""
        parts = []
        while isinstance(node, ast.Attribute | ast.Subscript):
            parts.append(node.attr if isinstance(node, ast.Attribute) else "[]")
            node = node.value
        if isinstance(node, ast.Call) and self.dotted(node.func) in GET_SHELL:
            parts.append(SHELL)
        elif isinstance(node, ast.Name):
            parts.append(self.aliases.get(node.id, node.id))
        else:
            return None
        return ".".join(reversed(parts))

    def _patchable(self, path: str | None) -> bool:
        if path is None or path.startswith(ALLOWED_PATCHES):
            return False
        return path.split(".")[0] in PATCH_ROOTS or path.startswith(SHELL)

    def _check_reference(self, path: str | None, node: ast.AST) -> None:
        if path and path in self.references:
            self.flag("reference", node, f"uses {path}, the course's {self.references[path]}")

    # imports and aliases ------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.split(".")[0]
            self.aliases[alias.asname or root] = alias.name if alias.asname else root
            self._check_module(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self._check_module(module, node)
        for alias in node.names:
            path = f"{module}.{alias.name}"
            self.aliases[alias.asname or alias.name] = path
            self._check_reference(path, node)

    def _check_module(self, module: str, node: ast.AST) -> None:
        if module.split(".")[0] in PROCESS_MODULES:
            self.flag("process", node, f"imports {module}")

    def visit_Assign(self, node: ast.Assign) -> None:
        value, source = node.value, None
        if isinstance(value, ast.Attribute):
            source = self.dotted(value)
        elif isinstance(value, ast.Name):
            source = self.aliases.get(value.id, value.id)
        elif isinstance(value, ast.Call) and self.dotted(value.func) in GET_SHELL:
            source = SHELL
        for target in node.targets:
            self._check_target(target, node)
            if isinstance(target, ast.Name):
                if source:
                    self.aliases[target.id] = source
                else:
                    self.aliases.pop(target.id, None)
        self.generic_visit(node)

    # writes to what the probes run on --------------------------------------------------------
    def _check_target(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._check_target(element, node)
        elif isinstance(target, ast.Attribute) and self._patchable(self.dotted(target)):
            self.flag("patch", node, f"changes {self.dotted(target)}")
        elif isinstance(target, ast.Attribute) and target.attr in REWIRING_ATTRIBUTES:
            self.flag("patch", node, f"sets {target.attr}")
        elif isinstance(target, ast.Subscript):
            base = self.dotted(target.value)
            if base and (base.endswith(".__dict__") or base.startswith("sys.modules")):
                self.flag("patch", node, f"changes {base}[...]")

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_target(target, node)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self.dotted(node)
        self._check_reference(path, node)
        if path and path.startswith(f"{SHELL}."):
            method = path.split(".")[1]
            if method not in MAGIC_RUNNERS and method != "user_ns":
                self.flag("patch", node, f"uses the IPython shell: {path[len(SHELL) + 1 :]}")
        if node.attr == "__dict__" and self._patchable(self.dotted(node.value)):
            self.flag("patch", node, f"uses {path}")
        if node.attr in FRAME_ATTRIBUTES or node.attr in ("__setattr__", "__delattr__"):
            self.flag("patch", node, f"uses {node.attr}")
        if path and path.startswith(("sys.modules", "sys.meta_path", "sys.path_hooks")):
            self.flag("patch", node, f"uses {path}")
        if path and path.split(".")[-1] == "__path__" and self._patchable(path):
            self.flag("patch", node, f"uses {path}")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            return
        if node.id in self.aliases:
            self._check_reference(self.aliases[node.id], node)
        resolved = self.aliases.get(node.id, node.id)
        if resolved == "__builtins__":
            self.flag("patch", node, "uses __builtins__")
        elif resolved in CHANGING_BUILTINS and not self._calling(node):
            self.flag("patch", node, f"uses {resolved} as a value")

    def _calling(self, node: ast.Name) -> bool:
        return any(call.func is node for call in self._calls)

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Call):
            self._calls.append(node)
            try:
                super().visit(node)
            finally:
                self._calls.pop()
        else:
            super().visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        first = self.dotted(node.args[0]) if node.args else None
        if name in ("setattr", "delattr", "builtins.setattr", "builtins.delattr"):
            if self._patchable(first):
                self.flag("patch", node, f"{name} on {first}")
        elif name in ("getattr", "builtins.getattr", "hasattr") and len(node.args) >= 2:
            attribute = node.args[1]
            root = first.split(".")[0] if first else None
            if isinstance(attribute, ast.Constant) and first:
                self._check_reference(f"{first}.{attribute.value}", node)
            elif root == "hw_utils":
                self.flag("reference", node, f"{name} on {first} with a computed name")
            elif root in COMPUTED_NAME_ROOTS:
                self.flag("patch", node, f"{name} on {first} with a computed name")
        elif name in ("vars", "builtins.vars") and self._patchable(first):
            self.flag("patch", node, f"vars() of {first}")
        elif name and (name.endswith(".__dict__.update") or name.startswith("sys.modules.")):
            self.flag("patch", node, f"calls {name}")
        elif name in PROCESS_CALLS:
            self.flag("process", node, f"calls {name}")
        elif name in DYNAMIC_CALLS:
            self.flag("dynamic_code", node, f"calls {name}")
        elif name in REACHING_CALLS:
            self.flag("patch", node, f"calls {name}")
        elif name == "torch.load" and any(
            k.arg == "weights_only" and not (isinstance(k.value, ast.Constant) and k.value.value)
            for k in node.keywords
        ):
            self.flag("dynamic_code", node, "torch.load without weights_only (runs pickled code)")
        method = name.split(".")[1] if name and name.startswith(f"{SHELL}.") else None
        if method in MAGIC_RUNNERS:
            self._check_magic(node)
        elif method in ("system", "getoutput"):
            self.flag("magic", node, "runs a shell command")
        self.generic_visit(node)

    def _check_magic(self, node: ast.Call) -> None:
        """An allowed magic's code (``%%time``'s cell, ``%timeit``'s statement) is scanned
        like any other; any other magic is flagged."""
        texts = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if len(texts) != len(node.args) or not texts or texts[0] not in ALLOWED_MAGICS:
            shown = texts[0] if texts and isinstance(texts[0], str) else "<computed>"
            self.flag("magic", node, f"runs the magic %{shown}")
            return
        for text in texts[1:]:
            code = to_python(text) if isinstance(text, str) else None
            if code:
                self.visit(parse_python(code))


def scan_sources(
    sources: list[tuple[int, str]], references: dict[str, str] | None = None
) -> list[Finding]:
    """Findings in ``(cell index, source)`` pairs of the student's cells, scanned in order
    (imports and aliases carry over); ``references`` maps the dotted paths of the course
    reference implementations of this assignment's graded names to those names."""
    aliases: dict[str, str] = {}
    findings: list[Finding] = []
    for index, source in sources:
        code = to_python(source)
        if code is None:
            continue
        scanner = _Scanner(aliases, index, references or {})
        scanner.visit(parse_python(code))
        findings += scanner.findings
    return findings


def flags_from(findings: list[Finding]) -> list[str]:
    return sorted({f"static:{finding.kind}" for finding in findings})


def defined_names(source: str) -> set[str]:
    """Top-level functions, classes and plain names a cell defines (a solution cell's stub
    names what the assignment asks for)."""
    code = to_python(source)
    if code is None:
        return set()
    names = set()
    for statement in parse_python(code).body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(statement.name)
        elif isinstance(statement, ast.Assign):
            names |= {t.id for t in statement.targets if isinstance(t, ast.Name)}
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            names.add(statement.target.id)
    return names


def assignment_references(graded_names: set[str], references: dict[str, str]) -> dict[str, str]:
    """The course references (``dotted.path`` -> name) of the names this assignment grades."""
    return {path: name for path, name in references.items() if name in graded_names}
