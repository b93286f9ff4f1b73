"""Static scan of student-written cells for attempts to fool the autograder.

Runs on the trusted side, on the code of every cell a student could write (solution cells, added
cells, unlocked instructor cells), after IPython syntax (magics, ``!``) is turned into Python.
Each finding becomes a flag ``static:<kind>`` in grades.csv. Honest homework code does none of
these things; the rules are narrow enough that the course's own solutions pass clean:

- ``ipython_hook``: input transformers, AST transformers, event callbacks, custom exception
  handlers, display formatters... any use of the IPython shell object beyond running magics;
- ``monkeypatch``: assigning, deleting or ``setattr`` on attributes of torch, numpy, builtins,
  sys, hw_utils and other modules the tests rely on (``torch.backends.*`` settings excepted),
  ``sys.modules`` edits, ``__builtins__`` use;
- ``process``: ``os._exit``, ``os.kill``, signals, subprocesses, ``ctypes``, sockets;
- ``dynamic_code``: ``exec``, ``eval``, ``compile``, ``__import__``;
- ``introspection``: frame and garbage-collector access (``sys._getframe``, ``inspect``
  frames, ``gc.get_referrers``);
- ``database``: sqlite/SQLAlchemy/nbgrader imports, or a literal naming the gradebook;
- ``file_write``: writing, moving or deleting files at literal paths outside the working folder;
- ``shadowing``: rebinding a name that the instructor's locked cells define and the tests use
  (e.g. redefining a test helper so that it always passes), other than re-importing the same
  module under the same name.
"""

from __future__ import annotations

import ast
import threading
from typing import NamedTuple

from IPython.core.inputtransformer2 import TransformerManager

PROTECTED_MODULES = {
    "torch", "numpy", "builtins", "sys", "hw_utils", "IPython", "math", "random", "unittest",
    "functools", "operator", "inspect", "importlib", "nbgrader", "traitlets",
}  # fmt: skip
ALLOWED_ATTRIBUTE_WRITES = ("torch.backends.",)
MAGIC_METHODS = {"run_line_magic", "run_cell_magic", "system", "getoutput", "magic"}
PROCESS_CALLS = {
    "os._exit", "os.kill", "os.killpg", "os.abort", "os.fork", "os.forkpty", "os.system",
    "os.popen", "os.execv", "os.execve", "os.execvp", "os.execl", "os.setsid", "os.setuid",
    "signal.signal", "signal.alarm", "signal.setitimer", "signal.pthread_kill",
}  # fmt: skip
PROCESS_MODULES = {"ctypes", "subprocess", "socket", "pty", "multiprocessing", "cffi"}
DATABASE_MODULES = {"sqlite3", "sqlalchemy", "nbgrader"}
DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__", "importlib.import_module"}
INTROSPECTION_CALLS = {
    "sys._getframe", "inspect.currentframe", "inspect.stack", "inspect.getouterframes",
    "gc.get_referrers", "gc.get_objects", "sys.settrace", "sys.setprofile", "globals",
}  # fmt: skip
# Reading a module's attributes by a computed name is fine for torch (``getattr(nn.init, ...)``)
# but hides what is used on these: a computed name there is flagged.
OPAQUE_READ_MODULES = PROTECTED_MODULES - {
    "torch",
    "numpy",
    "math",
    "random",
    "functools",
    "operator",
}
# Special methods that let an object answer comparisons, conversions or type checks itself.
LYING_METHODS = {
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__float__",
    "__int__", "__index__", "__abs__", "__sub__", "__rsub__", "__getattribute__",
    "__instancecheck__", "__subclasscheck__", "__torch_function__", "__torch_dispatch__",
    "__array__", "__array_ufunc__", "__array_function__",
}  # fmt: skip
SUBCLASS_CALLS = {"as_subclass", "_make_subclass", "_make_wrapper_subclass"}
# IPython's record of the executed cells (hidden tests included).
HISTORY_NAMES = {"In", "Out", "_ih", "_oh", "_dh", "_ii", "_iii"}
FILE_CALLS = {
    "os.remove", "os.unlink", "os.rename", "os.replace", "os.chmod", "os.rmdir", "os.removedirs",
    "os.symlink", "os.link", "os.truncate", "shutil.rmtree", "shutil.move", "shutil.copy",
    "shutil.copyfile", "shutil.copy2", "shutil.copytree",
}  # fmt: skip


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
    def __init__(self, aliases: dict[str, str], cell: int):
        self.aliases = aliases  # local name -> dotted module/object path
        self.cell = cell
        self.findings: list[Finding] = []
        self.shell_names = {"get_ipython"}

    def flag(self, kind: str, node: ast.AST, detail: str) -> None:
        self.findings.append(
            Finding(self.cell, kind, f"line {getattr(node, 'lineno', '?')}: {detail}")
        )

    def dotted(self, node: ast.AST) -> str | None:
        """``a.b.c`` with the first name resolved through imports, or None."""
        parts = []
        while isinstance(node, ast.Attribute | ast.Subscript):
            parts.append(node.attr if isinstance(node, ast.Attribute) else "[]")
            node = node.value
        shell_alias = isinstance(node, ast.Name) and node.id in self.shell_names - {"get_ipython"}
        if shell_alias or (isinstance(node, ast.Call) and self._is_shell_call(node)):
            parts.append("<shell>")
        elif isinstance(node, ast.Name):
            parts.append(self.aliases.get(node.id, node.id))
        else:
            return None
        return ".".join(reversed(parts))

    def _is_shell_call(self, node: ast.Call) -> bool:
        return (isinstance(node.func, ast.Name) and node.func.id in self.shell_names) or (
            isinstance(node.func, ast.Attribute) and node.func.attr == "get_ipython"
        )

    def _protected(self, path: str | None) -> bool:
        if path is None or path.startswith(ALLOWED_ATTRIBUTE_WRITES):
            return False
        return path.split(".")[0] in PROTECTED_MODULES or path.startswith("<shell>")

    # imports -------------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.split(".")[0]
            self.aliases[alias.asname or root] = alias.name if alias.asname else root
            self._check_module(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self._check_module(module, node, tuple(alias.name for alias in node.names))
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            if alias.name == "get_ipython":
                self.shell_names.add(alias.asname or alias.name)

    def _check_module(self, module: str, node: ast.AST, names: tuple[str, ...] = ()) -> None:
        root = module.split(".")[0]
        display_only = module.startswith("IPython.display") or (
            module == "IPython" and names and set(names) <= {"display"}
        )
        if root == "IPython" and not display_only:
            self.flag("ipython_hook", node, f"imports {module}")
        if root == "__main__":
            self.flag("history", node, "imports __main__")
        if root in PROCESS_MODULES:
            self.flag("process", node, f"imports {module}")
        if root in DATABASE_MODULES:
            self.flag("database", node, f"imports {module}")

    # writes to protected objects -------------------------------------------------------------
    def _check_target(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, ast.Attribute) and self._protected(self.dotted(target)):
            self.flag("monkeypatch", node, f"changes {self.dotted(target)}")
        elif isinstance(target, ast.Subscript):
            base = self.dotted(target.value)
            if base and (base.endswith(".__dict__") or base.startswith("sys.modules")):
                self.flag("monkeypatch", node, f"changes {base}[...]")
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._check_target(element, node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target, node)
            value = node.value
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Call)
                and self._is_shell_call(value)
            ):
                self.shell_names.add(target.id)
        self.generic_visit(node)

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

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__":
            self.flag("monkeypatch", node, "uses __builtins__")
        elif node.id in HISTORY_NAMES or (node.id[:2] == "_i" and node.id[2:].isdigit()):
            self.flag("history", node, f"reads {node.id}, the record of the executed cells")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in node.body:
            if (
                isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
                and statement.name in LYING_METHODS
            ):
                self.flag("special_method", statement, f"{node.name} defines {statement.name}")
        self.generic_visit(node)

    # calls ---------------------------------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self.dotted(node)
        if node.attr in SUBCLASS_CALLS:
            self.flag("special_method", node, f"uses {node.attr}")
        if node.attr == "__dict__" and self._protected(self.dotted(node.value)):
            self.flag("monkeypatch", node, f"uses {path}")
        if path and path.startswith("<shell>."):
            method = path.split(".")[1]
            if method not in MAGIC_METHODS:
                self.flag("ipython_hook", node, f"uses the IPython shell: {path[8:]}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        if name in ("setattr", "delattr", "builtins.setattr", "builtins.delattr") and node.args:
            if self._protected(self.dotted(node.args[0])):
                self.flag("monkeypatch", node, f"{name} on {self.dotted(node.args[0])}")
        elif name in ("getattr", "hasattr", "builtins.getattr") and len(node.args) >= 2:
            target = self.dotted(node.args[0])
            opaque = not isinstance(node.args[1], ast.Constant)
            if target and opaque and target.split(".")[0] in OPAQUE_READ_MODULES | {"<shell>"}:
                self.flag("obfuscation", node, f"{name} on {target} with a computed name")
        elif name in ("vars", "builtins.vars") and node.args:
            if self._protected(self.dotted(node.args[0])):
                self.flag("monkeypatch", node, f"vars() of {self.dotted(node.args[0])}")
        elif (name and name.endswith(".__dict__.update")) or name == "sys.modules.update":
            self.flag("monkeypatch", node, f"calls {name}")
        elif name in PROCESS_CALLS:
            self.flag("process", node, f"calls {name}")
        elif name in DYNAMIC_CALLS:
            self.flag("dynamic_code", node, f"calls {name}")
        elif name in INTROSPECTION_CALLS:
            self.flag("introspection", node, f"calls {name}")
        elif name in FILE_CALLS and any(_outside(a) for a in node.args):
            self.flag("file_write", node, f"{name} outside the working folder")
        elif name == "open" and len(node.args) >= 1 and _outside(node.args[0]):
            mode = node.args[1] if len(node.args) > 1 else _keyword(node, "mode")
            if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+"):
                self.flag("file_write", node, "opens a file outside the working folder for writing")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "gradebook" in node.value.lower():
            self.flag("database", node, "names the gradebook")


def _keyword(node: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _outside(node: ast.AST) -> bool:
    """A literal path that is absolute, in the home folder, or climbs out with '..'."""
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
        return False
    path = node.value
    return path.startswith(("/", "~")) or ".." in path.replace("\\", "/").split("/")


def statement_bindings(statement: ast.stmt) -> dict[str, str | None]:
    """Names a top-level statement binds: name -> imported dotted path, or None if not an import."""
    if isinstance(statement, ast.Import):
        return {
            (a.asname or a.name.split(".")[0]): (a.name if a.asname else a.name.split(".")[0])
            for a in statement.names
        }
    if isinstance(statement, ast.ImportFrom):
        return {(a.asname or a.name): f"{statement.module}.{a.name}" for a in statement.names}
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {statement.name: None}
    targets: list[ast.AST] = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
        targets = [statement.target]
    elif isinstance(statement, ast.With | ast.AsyncWith):
        targets = [item.optional_vars for item in statement.items if item.optional_vars]
    return {name: None for target in targets for name in _target_names(target)}


def _target_names(target: ast.AST) -> list[str]:
    """Names an assignment target binds (``a``, ``a, (b, *c)``); not ``a.b`` or ``a[i]``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _target_names(element)]
    return []


def protected_names(locked_sources: list[str], test_sources: list[str]) -> dict[str, str | None]:
    """Names bound by the instructor's locked cells that test cells read without binding them
    themselves (a test's own temporaries are not protected: it rebinds them before use)."""
    bound: dict[str, str | None] = {}
    for source in locked_sources:
        code = to_python(source)
        for statement in parse_python(code).body if code else ():
            bound.update(statement_bindings(statement))
    free = set()
    for source in test_sources:
        code = to_python(source)
        if code is None:
            continue
        tree = parse_python(code)
        own = {name for statement in tree.body for name in statement_bindings(statement)}
        own |= {
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        own |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
        free |= {
            node.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in own
        }
    return {name: path for name, path in bound.items() if name in free}


def shadowed(statement: ast.stmt, protected: dict[str, str | None]) -> list[str]:
    """Protected names this statement rebinds (re-importing the same module is allowed)."""
    return [
        name
        for name, path in statement_bindings(statement).items()
        if name in protected and (path is None or path != protected[name])
    ]


def scan_sources(
    sources: list[tuple[int, str]], protected: dict[str, str | None] | None = None
) -> list[Finding]:
    """Findings in ``(cell index, source)`` pairs, scanned in order (imports carry over);
    ``protected`` are the names the tests rely on (:func:`protected_names`)."""
    aliases: dict[str, str] = {}
    findings: list[Finding] = []
    protected = protected or {}
    for index, source in sources:
        code = to_python(source)
        if code is None:
            continue
        tree = parse_python(code)
        scanner = _Scanner(aliases, index)
        scanner.visit(tree)
        findings += scanner.findings
        for statement in tree.body:
            for name in shadowed(statement, protected):
                findings.append(Finding(index, "shadowing", f"rebinds the test helper {name}"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Global) and set(node.names) & set(protected):
                findings.append(Finding(index, "shadowing", "rebinds a test helper via global"))
    return findings


def flags_from(findings: list[Finding]) -> list[str]:
    return sorted({f"static:{finding.kind}" for finding in findings})
